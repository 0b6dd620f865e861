"""The Kubernetes enricher end to end: the real kubernetes-asyncio client against a fake API
server on 127.0.0.1 that serves the real fixture objects."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kubernetes_asyncio import client

from enrichers.base import EnrichContext, Enrichment, run_enrichers
from enrichers.kubernetes import report
from enrichers.kubernetes.api import KubeApi, Request
from enrichers.kubernetes.enricher import KubernetesEnricher, KubernetesSettings, connect_kubernetes
from enrichers.kubernetes.report import KubernetesVerdict, read_facts, read_verdict
from receiver.models import Alert, Group
from tests.conftest import free_port
from tests.fakes.kube_api import (
    K3S_CRASHLOOP_POD,
    K3S_NODE,
    OOM_NAMESPACE,
    OOM_POD,
    FakeKubeApi,
    Fault,
    k3s_cluster,
    minikube_oom_cluster,
)

K3S_ALERT_TIME = datetime(2025, 9, 11, 20, 54, tzinfo=UTC)
OOM_ALERT_TIME = datetime(2023, 7, 11, 4, 44, tzinfo=UTC)
POD_PATH = f"/api/v1/namespaces/default/pods/{K3S_CRASHLOOP_POD}"
CRASHLOOP_LABELS = {
    "alertname": "KubePodCrashLooping",
    "namespace": "default",
    "pod": K3S_CRASHLOOP_POD,
    "container": "api-server",
    "job": "kube-state-metrics",
    "reason": "CrashLoopBackOff",
    "severity": "warning",
}

DEFAULT_SETTINGS = KubernetesSettings()


def alert(labels: dict[str, str], at: datetime = K3S_ALERT_TIME) -> Alert:
    return Alert(
        fingerprint=labels.get("alertname", "a"),
        status="firing",
        labels=labels,
        annotations={},
        starts_at=at,
        ends_at=None,
        generator_url="",
    )


def context(at: datetime = K3S_ALERT_TIME, timeout_seconds: float = 5.0) -> EnrichContext:
    group = Group(group_key='{}:{namespace="default"}', receiver="kubebot", status="firing")
    return EnrichContext(group=group, now=at + timedelta(minutes=3), timeout_seconds=timeout_seconds)


@asynccontextmanager
async def serving(
    fake: FakeKubeApi, token: str | None = None, settings: KubernetesSettings = DEFAULT_SETTINGS
) -> AsyncIterator[KubernetesEnricher]:
    url = await fake.start()
    enricher = await connect_kubernetes("auto", None, url, token, settings=settings)
    assert enricher is not None
    try:
        yield enricher
    finally:
        await enricher.close()
        await fake.close()


async def enrich_k3s(labels: dict[str, str], fake: FakeKubeApi | None = None) -> Enrichment:
    async with serving(fake or k3s_cluster()) as enricher:
        return await enricher.enrich(alert(labels), context())


def k3s_failing(resource: str, how: Fault) -> FakeKubeApi:
    """The k3s cluster, every request for `resource` ("*": any) failing `how`."""
    fake = k3s_cluster()
    fake.fail(resource, how)
    return fake


async def enrich_while_hanging(resource: str, *, budget_seconds: float) -> Enrichment:
    """The crash-looping pod's alert through the runner while `resource` hangs, the
    client's own call timeout longer than the budget."""
    fake = k3s_failing(resource, "hang")
    async with serving(fake, settings=KubernetesSettings(call_timeout_seconds=30)) as enricher:
        results = await run_enrichers([enricher], alert(CRASHLOOP_LABELS), context(timeout_seconds=budget_seconds))
    return results["kubernetes"]


async def test_crashlooping_pod_shows_restarts_waiting_reason_previous_log_and_events() -> None:
    result = await enrich_k3s(CRASHLOOP_LABELS)

    assert (result.status, result.reason) == ("ok", None)
    expected_verdict = f"{K3S_CRASHLOOP_POD}: CrashLoopBackOff, 5 restarts, last Error (exit 1) 3m ago"
    assert expected_verdict == result.summary[0]
    (container,) = result.facts["pod"]["containers"]
    assert (container["restarts"], container["waiting_reason"]) == (5, "CrashLoopBackOff")
    assert {k: container["last_termination"][k] for k in ("reason", "exit_code")} == {
        "reason": "Error",
        "exit_code": 1,
    }
    (log,) = result.facts["logs"]
    assert (log["previous"], log["lines"][-1]) == (
        True,
        "Database connection failed after 3 retries",
    )
    events = {e["reason"]: e for e in result.facts["events"]}
    assert events["BackOff"]["count"] == 25
    assert result.facts["owners"] == [
        {"kind": "ReplicaSet", "name": "backend-api-75fb46b7bd", "exists": True},
        {"kind": "Deployment", "name": "backend-api", "exists": True},
    ]
    assert "alpine:latest" in result.facts["rollout"]["images"]
    assert "node c9b7eea91: Ready" in result.summary
    json.dumps(result.to_json())


async def test_summary_reads_verdict_then_events_then_log() -> None:
    result = await enrich_k3s(CRASHLOOP_LABELS)
    first_event = next(i for i, s in enumerate(result.summary) if s.startswith("event BackOff"))
    log_header = next(i for i, s in enumerate(result.summary) if s.startswith("log api-server"))
    assert 0 < first_event < log_header
    assert "! ERROR: Failed to connect to database: connection refused" in result.summary


async def test_oomkilled_pod_names_reason_exit_code_and_memory_limit() -> None:
    labels = {"alertname": "KubeJobFailed", "namespace": OOM_NAMESPACE, "pod": OOM_POD}
    async with serving(minikube_oom_cluster()) as enricher:
        result = await enricher.enrich(alert(labels, OOM_ALERT_TIME), context(OOM_ALERT_TIME))

    assert f"{OOM_POD}: Failed, OOMKilled (exit 137) 3m ago, memory limit 100Mi" == result.summary[0]
    terminated = result.facts["pod"]["containers"][0]["terminated"]
    assert (terminated["reason"], terminated["exit_code"]) == ("OOMKilled", 137)
    assert [e["reason"] for e in result.facts["events"]] == ["BackoffLimitExceeded"]
    # The Job itself was not in the source bundle: named, marked gone, not a failure.
    assert result.facts["owners"] == [{"kind": "Job", "name": "oom-kill-job3", "exists": False}]
    assert result.status == "ok"


async def test_deployment_alert_resolves_to_its_pods_and_rollout() -> None:
    labels = {
        "alertname": "KubeDeploymentReplicasMismatch",
        "namespace": "default",
        "deployment": "cpu-intensive-app",
    }
    result = await enrich_k3s(labels)

    assert result.summary[0].startswith("Deployment cpu-intensive-app: 1/3 ready")
    assert result.facts["pods_total"] == 3
    assert result.facts["pods"][0]["phase"] == "Pending"
    assert "FailedScheduling" in {e["reason"] for e in result.facts["events"]}
    assert result.facts["rollout"]["replicaset"] == "cpu-intensive-app-7bcfc5d944"


async def test_service_alert_resolves_to_pods_through_its_selector() -> None:
    labels = {
        "alertname": "TargetDown",
        "namespace": "default",
        "service": "backend-api-service",
        "job": "backend-api",
    }
    result = await enrich_k3s(labels)

    assert "service backend-api-service: 0/1 endpoints ready" in result.summary[0]
    assert [p["name"] for p in result.facts["pods"]] == [K3S_CRASHLOOP_POD]
    assert result.facts["logs"], "the worst pod behind the service gets a closer look"


async def test_node_alert_reports_conditions_and_the_pods_on_it() -> None:
    result = await enrich_k3s({"alertname": "KubeNodeNotReady", "node": K3S_NODE})

    assert f"node {K3S_NODE}: Ready, 4 pods, 1 not ready" == result.summary[0]
    assert result.facts["node"]["conditions"]["Ready"] == "True"
    assert [e["reason"] for e in result.facts["events"]] == ["InvalidDiskCapacity"]


async def test_a_pod_that_is_gone_is_a_fact_not_an_error() -> None:
    fake = k3s_cluster()
    fake.remove("pods", K3S_CRASHLOOP_POD)
    result = await enrich_k3s(CRASHLOOP_LABELS, fake)

    assert result.status == "ok"
    assert f"{K3S_CRASHLOOP_POD}: pod no longer exists" == result.summary[0]
    assert result.facts["pod"]["exists"] is False
    assert [e["reason"] for e in result.facts["events"]] == ["BackOff"]  # events outlive it


async def test_the_verdict_suppression_and_ranking_read_is_typed_from_the_facts() -> None:
    result = await enrich_k3s(CRASHLOOP_LABELS)
    verdict = read_verdict(result.facts)

    assert verdict.verdict == result.summary[0]
    pod = verdict.pod
    assert pod is not None
    assert (pod.name, pod.exists, pod.phase, pod.node) == (K3S_CRASHLOOP_POD, True, "Running", K3S_NODE)


async def test_a_gone_pod_of_a_healthy_workload_reads_as_such() -> None:
    fake = k3s_cluster()
    fake.remove("pods", K3S_CRASHLOOP_POD)
    verdict = read_verdict((await enrich_k3s(CRASHLOOP_LABELS, fake)).facts)

    assert verdict.pod is not None
    assert (verdict.pod.name, verdict.pod.exists) == (K3S_CRASHLOOP_POD, False)


def test_facts_without_a_verdict_or_of_another_shape_read_as_an_empty_verdict() -> None:
    empty = KubernetesVerdict()
    assert read_verdict({"subject": None}) == empty
    assert read_verdict({"verdict": "x", "pod": ["not", "a", "pod"]}) == empty


def test_each_facts_object_is_read_once_and_the_readings_kept_stay_bounded() -> None:
    # Suppression, ranking and advice read the same facts: one reading serves them all.
    facts = {"verdict": "CrashLoopBackOff", "pod": {"name": "web-1", "restarts": 3}}
    first = read_facts(facts)

    assert read_facts(facts) is first
    assert read_facts(dict(facts)) == first  # an equal copy reads alike, on its own
    for n in range(3 * report.READINGS_KEPT):
        read_facts({"verdict": f"v{n}"})
    assert len(report._readings) <= report.READINGS_KEPT


async def test_forbidden_subject_is_unavailable_naming_the_missing_permission() -> None:
    fake = k3s_failing("pods", "forbidden")
    result = await enrich_k3s(CRASHLOOP_LABELS, fake)

    assert result.status == "unavailable"
    assert result.reason is not None
    assert result.reason.startswith("forbidden (RBAC)")
    assert "get on pods in namespace default" in result.reason


async def test_forbidden_logs_give_a_partial_result() -> None:
    fake = k3s_failing("pods/log", "forbidden")
    result = await enrich_k3s(CRASHLOOP_LABELS, fake)

    assert result.status == "partial"
    assert "forbidden (RBAC): needs get on pods/log in namespace default" in (result.reason or "")
    assert result.summary[0].startswith(f"{K3S_CRASHLOOP_POD}: CrashLoopBackOff")
    assert result.summary[-1].startswith("kubernetes: partial")


async def test_a_hanging_api_is_unavailable_within_the_budget() -> None:
    result = await enrich_while_hanging("*", budget_seconds=0.5)
    assert result.status == "unavailable"
    assert "timed out" in (result.reason or "")


async def test_hanging_log_reads_still_return_the_pod_on_time() -> None:
    result = await enrich_while_hanging("pods/log", budget_seconds=1.0)
    assert result.status == "partial"
    assert "get pods/log in namespace default: timed out" in (result.reason or "")
    assert result.summary[0].startswith(f"{K3S_CRASHLOOP_POD}: CrashLoopBackOff")
    assert result.facts["events"][0]["count"] == 25


async def test_garbage_from_the_api_is_a_classified_failure() -> None:
    fake = k3s_failing("events", "garbage")
    result = await enrich_k3s(CRASHLOOP_LABELS, fake)

    assert result.status == "partial"
    assert "bad response (not JSON)" in (result.reason or "")


async def test_secret_looking_tokens_in_logs_never_reach_the_result() -> None:
    fake = k3s_cluster()
    fake.add_log(
        "default",
        K3S_CRASHLOOP_POD,
        "api-server",
        "\x1b[31mERROR\x1b[0m upstream said 401 for Authorization: Bearer abcdef0123456789xyz\n"
        "retrying with DATABASE_URL=postgres://api:hunter2@db:5432/app\n",
        previous=True,
    )
    result = await enrich_k3s(CRASHLOOP_LABELS, fake)

    text = json.dumps(result.to_json())
    assert "abcdef0123456789xyz" not in text
    assert "hunter2" not in text
    assert "\\u001b" not in text
    assert "[REDACTED]" in text


async def test_alerts_of_one_group_for_one_pod_share_lookups() -> None:
    fake = k3s_cluster()
    not_ready = {**CRASHLOOP_LABELS, "alertname": "KubePodNotReady"}
    async with serving(fake) as enricher:
        ctx = context()
        first, second = await asyncio.gather(
            enricher.enrich(alert(CRASHLOOP_LABELS), ctx), enricher.enrich(alert(not_ready), ctx)
        )

    assert fake.count(POD_PATH) == 1
    assert fake.count(f"{POD_PATH}/log") == 1
    assert first.summary[0] == second.summary[0]


async def test_each_group_reads_afresh() -> None:
    fake = k3s_cluster()
    async with serving(fake) as enricher:
        await enricher.enrich(alert(CRASHLOOP_LABELS), context())
        await enricher.enrich(alert(CRASHLOOP_LABELS), context())

    assert fake.count(POD_PATH) == 2


async def test_the_bearer_token_reaches_the_api() -> None:
    fake = k3s_cluster()
    async with serving(fake, token="s3cret-token") as enricher:
        await enricher.enrich(alert(CRASHLOOP_LABELS), context())

    assert {"Bearer s3cret-token"} == fake.authorizations


async def test_a_kubeconfig_file_connects_with_its_token(tmp_path: Path) -> None:
    fake = k3s_cluster()
    url = await fake.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
        f"clusters: [{{name: fake, cluster: {{server: '{url}'}}}}]\n"
        "users: [{name: bot, user: {token: from-kubeconfig}}]\n"
        "contexts: [{name: test, context: {cluster: fake, user: bot}}]\n"
    )
    try:
        enricher = await connect_kubernetes("kubeconfig", str(kubeconfig), None)
        assert enricher is not None
        result = await enricher.enrich(alert(CRASHLOOP_LABELS), context())
        await enricher.close()
    finally:
        await fake.close()

    assert result.status == "ok"
    assert {"Bearer from-kubeconfig"} == fake.authorizations


async def test_a_netrc_entry_for_the_api_host_does_not_break_the_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kubernetes-asyncio's own session reads .netrc; with a bearer token as well, aiohttp
    # then refused every request ("Cannot combine AUTHORIZATION header with AUTH argument").
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    fake = k3s_cluster()
    async with serving(fake, token="s3cret-token") as enricher:
        result = await enricher.enrich(alert(CRASHLOOP_LABELS), context())

    assert result.status == "ok"
    assert {"Bearer s3cret-token"} == fake.authorizations


async def test_the_proxy_from_the_environment_carries_the_requests_with_its_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The stand-in API answers as the forward proxy; the API server's own address is closed.
    fake = k3s_cluster()
    proxy_url = await fake.start()
    monkeypatch.setenv("HTTP_PROXY", proxy_url.replace("http://", "http://ops:pa%3Ass@"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    enricher = await connect_kubernetes("auto", None, f"http://127.0.0.1:{free_port()}", "s3cret-token")
    assert enricher is not None
    try:
        result = await enricher.enrich(alert(CRASHLOOP_LABELS), context())
    finally:
        await enricher.close()
        await fake.close()

    assert result.status == "ok"
    assert {r.proxy_authorization for r in fake.requests} == {"Basic " + base64.b64encode(b"ops:pa:ss").decode()}


async def test_no_proxy_names_the_api_hosts_reached_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nobody there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    fake = k3s_cluster()
    async with serving(fake) as enricher:
        result = await enricher.enrich(alert(CRASHLOOP_LABELS), context())

    assert result.status == "ok"
    assert {r.proxy_authorization for r in fake.requests} == {None}


async def test_log_reads_have_slots_of_their_own_beside_the_api_reads() -> None:
    # A storm's log reads (long-running requests to the API server, served by kubelets)
    # neither exceed their own cap nor take the slots the other reads need.
    fake = k3s_cluster()
    fake.delay_seconds = 0.05  # so that the reads overlap
    url = await fake.start()
    api = KubeApi(
        client.ApiClient(client.Configuration(host=url)), call_timeout_seconds=5, max_concurrency=2, max_log_reads=3
    )
    log = Request("get", "pods/log", "default", K3S_CRASHLOOP_POD, (("container", "api-server"), ("previous", True)))
    pod = Request("get", "pods", "default", K3S_CRASHLOOP_POD)
    try:
        await asyncio.gather(*(api.fetch(r, 5.0) for r in [log, pod] * 10))
    finally:
        await api.close()
        await fake.close()

    assert fake.most_in_flight == {"log": 3, "api": 2}


async def test_an_alert_without_kubernetes_labels_reads_nothing() -> None:
    fake = k3s_cluster()
    async with serving(fake) as enricher:
        result = await enricher.enrich(alert({"alertname": "Watchdog"}), context())

    assert (result.status, result.summary, result.facts["subject"]) == ("ok", (), None)
    assert fake.requests == []


async def test_a_kind_not_looked_up_yet_is_named_without_reading_the_cluster() -> None:
    fake = k3s_cluster()
    labels = {"alertname": "KubePdbNotEnoughHealthyPods", "namespace": "shop", "poddisruptionbudget": "frontend"}
    async with serving(fake) as enricher:
        result = await enricher.enrich(alert(labels), context())

    assert result.status == "ok"
    assert result.facts["subject"] == {
        "kind": "PodDisruptionBudget",
        "namespace": "shop",
        "name": "frontend",
        "container": None,
    }
    assert fake.requests == []


@pytest.mark.parametrize("mode", ["off", "auto"])
async def test_no_cluster_means_no_enricher(mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert await connect_kubernetes(mode, str(tmp_path / "missing"), None) is None


async def test_a_node_that_is_gone_is_a_fact_about_the_pod() -> None:
    fake = k3s_failing("nodes", "not_found")
    result = await enrich_k3s(CRASHLOOP_LABELS, fake)

    assert result.status == "ok"
    assert f"node {K3S_NODE}: no longer exists" in result.summary


async def test_a_job_alert_for_a_deleted_job_still_shows_its_events() -> None:
    labels = {
        "alertname": "KubeJobFailed",
        "namespace": OOM_NAMESPACE,
        "job_name": "oom-kill-job3",
        "job": "kube-state-metrics",
    }
    async with serving(minikube_oom_cluster()) as enricher:
        result = await enricher.enrich(alert(labels, OOM_ALERT_TIME), context(OOM_ALERT_TIME))

    assert result.summary[0] == "Job oom-kill-job3: no longer exists"
    assert [e["reason"] for e in result.facts["events"]] == ["BackoffLimitExceeded"]


async def test_alerts_for_two_pods_of_one_deployment_share_the_owner_lookups() -> None:
    fake = k3s_cluster()
    pods = ["memory-hungry-app-59c695fbfb-4vnq4", "memory-hungry-app-59c695fbfb-xsvn8"]
    alerts = [alert({"alertname": "KubePodNotReady", "namespace": "default", "pod": p}) for p in pods]
    async with serving(fake) as enricher:
        ctx = context()
        await asyncio.gather(*(enricher.enrich(a, ctx) for a in alerts))

    apps = "/apis/apps/v1/namespaces/default"
    assert fake.count(f"{apps}/replicasets/memory-hungry-app-59c695fbfb") == 1
    assert fake.count(f"{apps}/deployments/memory-hungry-app") == 1
    assert fake.count(f"{apps}/replicasets") == 1
    assert fake.count(f"/api/v1/nodes/{K3S_NODE}") == 1


async def test_a_token_file_supplies_the_bearer_token(tmp_path: Path) -> None:
    fake = k3s_cluster()
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    url = await fake.start()
    enricher = await connect_kubernetes("auto", None, url, token_file=str(token_file))
    assert enricher is not None
    try:
        await enricher.enrich(alert(CRASHLOOP_LABELS), context())
    finally:
        await enricher.close()
        await fake.close()

    assert fake.authorizations == {"Bearer from-file"}


async def test_dependency_edges_come_from_endpoint_slices_and_pods() -> None:
    async with serving(k3s_cluster()) as enricher:
        edges = await enricher.dependency_edges()

    assert ("backend-api-service", "backend-api") in {(e.caller, e.callee) for e in edges}
    assert {e.source for e in edges} == {"kubernetes"}
