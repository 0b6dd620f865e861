"""Causes scoped to the incident: each fault class ranks the broken object (or what broke
it) among its top causes, from the incident's own neighbourhood, not the busiest services
of the whole cluster. Kubernetes facts are built as the enricher builds them (report.facts
over the facts.py shapes of API objects) or read through the fake API server."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from enrichers.base import Enrichment
from enrichers.kubernetes.facts import OwnerRef, node_facts, pod_facts, warning_events, workload_facts
from enrichers.kubernetes.report import Findings, facts, summary_lines
from enrichers.kubernetes.subject import resolve
from rca.model import Edge, RootCause, SignalTable
from rca.suspects import ALERT, Clue
from receiver.models import Alert, Group
from receiver.pipeline.graph import GraphCache
from receiver.pipeline.neighbourhood import Neighbourhood, joined, neighbourhood
from receiver.pipeline.outcome import decode_outcome
from receiver.pipeline.rank import Evidence, RankStage, own_first
from receiver.pipeline.stage import Work
from tests.fakes.kube_api import K3S_CRASHLOOP_POD, OOM_NAMESPACE, OOM_POD, minikube_oom_cluster
from tests.fakes.kube_api import k3s_cluster as k3s
from tests.test_kubernetes_enricher import K3S_ALERT_TIME, OOM_ALERT_TIME, alert, context, serving

T0 = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)
ALERT_AT = T0 + timedelta(minutes=40)
STEP = 60
# Scrape labels kube-state-metrics puts on every series it exposes (kube-prometheus).
KSM = {
    "job": "kube-state-metrics",
    "service": "kube-state-metrics",
    "namespace": "monitoring",
    "pod": "kube-state-metrics-6b8f9c7d5-q2x4z",
    "container": "kube-rbac-proxy-main",
    "instance": "10.244.1.12:8443",
    "endpoint": "https-main",
}
BUSY = ("checkout", "kube-state-metrics", "coredns")  # busy all over the cluster


def _table(jumps: Mapping[str, float], began: datetime = ALERT_AT) -> SignalTable:
    """cpu and memory per service over an hour; each service's series jump by its factor
    when the trouble begins (1.0: steady). A little noise keeps the spreads honest."""
    rng = np.random.default_rng(7)
    times = [(T0 + timedelta(seconds=i * STEP)).timestamp() for i in range(60)]
    series: dict[str, list[float]] = {}
    for service, jump in jumps.items():
        for metric in ("cpu", "mem"):
            values = 100 + rng.normal(0, 1, len(times))
            values[np.asarray(times) >= began.timestamp()] *= jump
            series[f"{service}_{metric}"] = values.tolist()
    return SignalTable.from_series(times, series)


# The whole cluster: three busy services everywhere, the rest steady.
CLUSTER = {
    **dict.fromkeys(BUSY, 8.0),
    "frontend": 1.3,
    "cart": 1.0,
    "redis": 1.0,
    "api": 1.0,
    "backend-api": 1.0,
    "postgres": 1.0,
    "db-migrate": 1.0,
}
EDGES = (
    Edge("frontend", "checkout", "static"),
    Edge("frontend", "cart", "static"),
    Edge("cart", "redis", "static"),
    Edge("checkout", "api", "static"),
    Edge("api", "postgres", "static"),
)


def _stage() -> RankStage:
    return RankStage(
        None,
        GraphCache(None, None, (), refresh_seconds=60, timeout_seconds=1),
        window_seconds=1800,
        step_seconds=STEP,
        timeout_seconds=5,
        max_causes=5,
        clock=lambda: ALERT_AT,
    )


def _work(
    labels: Mapping[str, str],
    kubernetes: Mapping[str, Any] | None = None,
    *,
    description: str = "",
    at: datetime = ALERT_AT,
) -> Work:
    firing = Alert(
        fingerprint=labels["alertname"],
        status="firing",
        labels=dict(labels),
        annotations={"description": description} if description else {},
        starts_at=at,
        ends_at=None,
        generator_url="",
    )
    enrichment = {"kubernetes": Enrichment.found("kubernetes", dict(kubernetes), ())} if kubernetes else {}
    return Work(firing, Group(labels["alertname"], "kubebot", "firing"), at, enrichment=enrichment)


async def _causes(*batch: Work, jumps: Mapping[str, float] = CLUSTER, began: datetime = ALERT_AT) -> list[RootCause]:
    evidence = Evidence(_table(jumps, began), EDGES, began)
    ranked = await _stage().rank(list(batch), evidence)
    return list(ranked[0].root_causes)


def _names(causes: list[RootCause]) -> list[tuple[str | None, str]]:
    return [(c.kind, c.service) for c in causes]


def _findings(labels: Mapping[str, str], at: datetime = ALERT_AT, **found: Any) -> dict[str, Any]:
    """The facts the Kubernetes enricher records for an alert with these labels."""
    subject = resolve(labels).subject
    result = Findings(subject=subject, alert_time=at, now=at + timedelta(minutes=1), **found)
    assert summary_lines(result)  # the same Findings render as the enricher's summary
    return facts(result)


def _node(name: str, *, ready: bool) -> dict[str, Any]:
    status = "True" if ready else "Unknown"
    reason = "KubeletReady" if ready else "NodeStatusUnknown"
    return {
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": status, "reason": reason}]},
    }


def _pod(name: str, node: str, *, owner: str = "ReplicaSet", ready: bool = True) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "ownerReferences": [{"kind": owner, "name": "x"}]},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "shop/main:1"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def _warning(reason: str, kind: str, name: str, message: str, at: datetime = ALERT_AT) -> dict[str, Any]:
    return {
        "type": "Warning",
        "reason": reason,
        "message": message,
        "involvedObject": {"kind": kind, "name": name, "namespace": "shop"},
        "lastTimestamp": at.isoformat(),
        "count": 1,
    }


# ---- per fault class ----------------------------------------------------------------------


NODE_LABELS = {**KSM, "alertname": "KubeNodeNotReady", "node": "worker-3", "condition": "Ready", "status": "true"}


def _node_incident() -> Work:
    on_node = (_pod("cart-5c7d9f8b6d-k2m4n", "worker-3", ready=False), _pod("redis-0", "worker-3", owner="StatefulSet"))
    kubernetes = _findings(
        NODE_LABELS,
        node=node_facts(_node("worker-3", ready=False)),
        pods=tuple(pod_facts(p) for p in on_node),
    )
    return _work(NODE_LABELS, kubernetes, description="worker-3 has been unready for more than 15 minutes.")


async def test_a_notready_node_is_among_the_top_three_causes_of_its_incident() -> None:
    causes = await _causes(_node_incident())

    assert ("Node", "worker-3") in _names(causes)[:3]
    node = next(c for c in causes if c.service == "worker-3")
    assert "node worker-3 NotReady (NodeStatusUnknown)" in node.evidence
    assert node.to_json()["kind"] == "Node"
    assert "namespace" not in node.to_json()
    # The pods on it are its neighbourhood; the busy services elsewhere are not.
    assert not {c.service for c in causes} & set(BUSY)


PVC_LABELS = {
    "alertname": "KubePersistentVolumeFillingUp",
    "namespace": "shop",
    "persistentvolumeclaim": "data-postgres-0",
    "node": "worker-1",
    "job": "kubelet",
    "service": "kube-prometheus-stack-kubelet",
    "metrics_path": "/metrics",
    "instance": "192.168.1.21:10250",
}


async def test_a_filling_claim_is_its_incidents_top_cause_with_the_fill_level_in_words() -> None:
    # No lookups for a claim yet: the alert's own labels and words are enough.
    work = _work(
        PVC_LABELS,
        {"subject": resolve(PVC_LABELS).subject.to_json()},
        description="The PersistentVolume claimed by data-postgres-0 in Namespace shop is only 2.1% free.",
    )
    causes = await _causes(work)

    top = causes[0]
    assert (top.kind, top.namespace, top.service) == ("PersistentVolumeClaim", "shop", "data-postgres-0")
    assert "only 2.1% free" in top.evidence[0]
    assert "kube-state-metrics" not in {c.service for c in causes}
    assert "kube-prometheus-stack-kubelet" not in {c.service for c in causes}


JOB_LABELS = {**KSM, "alertname": "KubeJobFailed", "namespace": "shop", "job_name": "db-migrate", "condition": "true"}


def _job_incident() -> Work:
    job = {
        "kind": "Job",
        "metadata": {"name": "db-migrate", "namespace": "shop"},
        "spec": {"completions": 1, "template": {"spec": {"containers": [{"name": "m", "image": "shop/migrate:3"}]}}},
        "status": {
            "failed": 7,
            "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
        },
    }
    events = [_warning("BackoffLimitExceeded", "Job", "db-migrate", "Job has reached the specified backoff limit")]
    kubernetes = _findings(
        JOB_LABELS,
        workload=workload_facts("Job", job),
        events=warning_events(events, ALERT_AT - timedelta(hours=1)),
    )
    return _work(JOB_LABELS, kubernetes, description="Job shop/db-migrate failed to complete.")


async def test_a_failed_job_is_its_incidents_top_cause_and_says_why() -> None:
    causes = await _causes(_job_incident())

    top = causes[0]
    assert (top.kind, top.namespace, top.service) == ("Job", "shop", "db-migrate")
    assert top.evidence[0].startswith("Job db-migrate failed: BackoffLimitExceeded")


HPA_LABELS = {**KSM, "alertname": "KubeHpaMaxedOut", "namespace": "shop", "horizontalpodautoscaler": "frontend"}


async def test_an_hpa_at_its_maximum_ranks_the_hpa_with_its_targets_metrics() -> None:
    work = _work(
        HPA_LABELS,
        {"subject": resolve(HPA_LABELS).subject.to_json()},
        description="HPA shop/frontend has been running at max replicas for longer than 15 minutes.",
    )
    causes = await _causes(work)

    top = causes[0]
    assert (top.kind, top.service) == ("HorizontalPodAutoscaler", "frontend")
    assert any("max replicas" in line for line in top.evidence)
    assert any(line.startswith("frontend: cpu") for line in top.evidence), "its target's metrics join it"
    assert "kube-state-metrics" not in {c.service for c in causes}


async def test_a_crash_loop_minutes_after_a_rollout_names_the_rollout() -> None:
    fake = k3s()
    replicaset = fake.find("replicasets", "backend-api-75fb46b7bd")
    replicaset["metadata"]["creationTimestamp"] = (K3S_ALERT_TIME - timedelta(minutes=4)).isoformat()
    replicaset["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "7"
    labels = {**KSM, "alertname": "KubePodCrashLooping", "namespace": "default", "pod": K3S_CRASHLOOP_POD}
    labels.update(container="api-server", reason="CrashLoopBackOff")
    async with serving(fake) as enricher:
        found = await enricher.enrich(alert(labels), context())
    work = _work(labels, found.facts, at=K3S_ALERT_TIME)

    causes = await _causes(work, jumps={**CLUSTER, "backend-api": 1.5}, began=K3S_ALERT_TIME)

    top = causes[0]
    assert (top.kind, top.namespace, top.service) == ("Deployment", "default", "backend-api")
    assert any(line.startswith("rolled out 4 min before the alert (revision 7") for line in top.evidence)
    assert any("CrashLoopBackOff" in line for line in top.evidence)
    assert ("Pod", K3S_CRASHLOOP_POD) in _names(causes)[:3]


async def test_an_oomkilled_pod_names_its_owner_and_the_memory_limit() -> None:
    labels = {**KSM, "alertname": "KubePodCrashLooping", "namespace": OOM_NAMESPACE, "pod": OOM_POD}
    async with serving(minikube_oom_cluster()) as enricher:
        found = await enricher.enrich(alert(labels, OOM_ALERT_TIME), context(OOM_ALERT_TIME))
    work = _work(labels, found.facts, at=OOM_ALERT_TIME)

    causes = await _stage().rank([work], None)  # no Prometheus: the facts alone rank

    top = causes[0].root_causes[0]
    assert (top.kind, top.service) == ("Job", "oom-kill-job3")
    assert any("OOMKilled (exit 137) at its memory limit" in line for line in top.evidence)


async def test_an_image_the_registry_did_not_find_is_named_on_its_deployment() -> None:
    pod = _pod("api-7d9f7c8b4d-x2x7k", "worker-1", ready=False)
    pod["status"]["containerStatuses"] = [
        {"name": "main", "image": "shop/api:2.14.1", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
    ]
    message = 'Failed to pull image "shop/api:2.14.1": rpc error: code = NotFound desc = shop/api:2.14.1: not found'
    labels = {**KSM, "alertname": "KubePodNotReady", "namespace": "shop", "pod": "api-7d9f7c8b4d-x2x7k"}
    kubernetes = _findings(
        labels,
        pod=pod_facts(pod),
        owners=(OwnerRef("ReplicaSet", "api-7d9f7c8b4d"), OwnerRef("Deployment", "api")),
        events=warning_events([_warning("Failed", "Pod", "api-7d9f7c8b4d-x2x7k", message)], None),
    )
    causes = await _causes(_work(labels, kubernetes))

    top = causes[0]
    assert (top.kind, top.service) == ("Deployment", "api")
    assert top.evidence[0] == "image shop/api:2.14.1 not found in registry"


async def test_pods_that_cannot_be_scheduled_name_the_missing_capacity() -> None:
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"replicas": 3},
        "status": {"readyReplicas": 1, "conditions": [{"type": "Available", "status": "False"}]},
    }
    message = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available."
    labels = {**KSM, "alertname": "KubeDeploymentReplicasMismatch", "namespace": "shop", "deployment": "api"}
    kubernetes = _findings(
        labels,
        workload=workload_facts("Deployment", deployment),
        events=warning_events([_warning("FailedScheduling", "Pod", "api-7d9f7c8b4d-p9q8r", message)], None),
    )
    causes = await _causes(_work(labels, kubernetes))

    top = causes[0]
    assert (top.kind, top.service) == ("Deployment", "api")
    wanted = "insufficient capacity: 0/3 nodes are available: 3 Insufficient cpu"
    assert any(line.startswith(wanted) for line in top.evidence)


# ---- scoped to the incident -------------------------------------------------------------------


async def test_two_unrelated_incidents_do_not_share_their_top_causes() -> None:
    node = await _causes(_node_incident())
    job = await _causes(_job_incident())

    assert node[0].service != job[0].service
    assert set(_names(node)[:3]).isdisjoint(_names(job)[:3])
    for causes in (node, job):
        assert not {c.service for c in causes[:3]} & set(BUSY)


async def test_in_a_group_of_unrelated_faults_each_alert_names_its_own_cause_first() -> None:
    """kube-prometheus groups by namespace: one batch can hold a failed Job and an HPA at its
    maximum; each alert's causes lead with its own object, then the rest of the batch's."""
    hpa = _work(HPA_LABELS, {"subject": resolve(HPA_LABELS).subject.to_json()})
    batch = [_job_incident(), hpa]
    evidence = Evidence(_table(CLUSTER), EDGES, ALERT_AT)
    job_causes, hpa_causes = (w.root_causes for w in await _stage().rank(batch, evidence))

    assert (job_causes[0].kind, job_causes[0].service) == ("Job", "db-migrate")
    assert (hpa_causes[0].kind, hpa_causes[0].service) == ("HorizontalPodAutoscaler", "frontend")
    assert ("HorizontalPodAutoscaler", "frontend") in _names(list(job_causes)), "the batch's other causes follow"


def test_an_alert_s_own_service_whose_signals_stayed_normal_does_not_go_ahead_of_another_s_facts() -> None:
    own = Neighbourhood()
    own.add("PersistentVolumeClaim", "data", "shop", Clue(ALERT, "KubePersistentVolumeFillingUp firing"))
    own.services.add("orders-db")
    batch = [
        RootCause("cart", 3.5, ("OOMKilled",), kind="Deployment", namespace="shop"),
        RootCause("data", 1.0, ("only 2% free",), kind="PersistentVolumeClaim", namespace="shop"),
        RootCause("orders-db", 0.0, ("orders-db: no signal left its normal range",)),
    ]

    ordered = own_first(batch, own, {"orders-db", "cart"}, ())

    assert [c.service for c in ordered] == ["data", "cart", "orders-db"]


async def test_the_metric_ranking_names_only_the_incidents_services_and_their_dependencies() -> None:
    labels = {"alertname": "CartLatencyHigh", "service": "cart", "severity": "warning"}
    causes = await _causes(_work(labels), jumps={**CLUSTER, "redis": 4.0})

    assert [c.service for c in causes][:1] == ["redis"]  # cart -> redis
    assert {c.service for c in causes} <= {"cart", "redis", "frontend"}
    assert all(c.kind is None for c in causes)


async def test_an_alert_naming_no_service_ranks_the_cluster_but_never_the_exporter_that_reported_it() -> None:
    labels = {**KSM, "alertname": "KubeNodeNotReady", "node": "worker-3"}
    causes = await _causes(_work(labels, description="worker-3 has been unready for more than 15 minutes."))

    assert _names(causes)[0] == ("Node", "worker-3")
    assert "kube-state-metrics" not in {c.service for c in causes}
    assert "checkout" in {c.service for c in causes}, "today's cluster-wide ranking fills the rest"


async def test_without_signals_an_alert_with_nothing_found_gets_no_causes() -> None:
    labels = {"alertname": "KubeNodeNotReady", "node": "worker-3"}
    ranked = await _stage().rank([_work(labels)], None)

    assert ranked[0].root_causes == ()


async def test_a_kubernetes_cause_is_recorded_with_its_kind_and_a_service_cause_as_before() -> None:
    ranked = await _stage().rank([_node_incident()], Evidence(_table(CLUSTER), EDGES, ALERT_AT))
    stored = ranked[0].outcome()
    assert decode_outcome(stored.encode()) == stored
    outcome = stored.to_json()

    node = outcome["root_causes"][0]
    assert (node["kind"], node["service"]) == ("Node", "worker-3")
    assert "namespace" not in node
    service = next(c for c in outcome["root_causes"] if "kind" not in c)
    assert set(service) == {"service", "score", "evidence"}


def test_a_batch_s_neighbourhood_is_its_alerts_own_neighbourhoods_joined() -> None:
    """The ranking builds each alert's neighbourhood once and joins them for the batch."""
    batch = [_node_incident(), _node_incident(), _work(PVC_LABELS, _findings(PVC_LABELS))]
    whole = neighbourhood(batch)
    parts = joined([neighbourhood(batch[:1]), neighbourhood(batch[1:])])
    assert (parts.suspects, parts.services, parts.about) == (whole.suspects, whole.services, whole.about)
    assert whole.suspects, "the node and the claim are suspects"
