"""Facts for each kind an alert can be about, read through the real kubernetes-asyncio
client from the stand-in API: what an engineer would look up first for that kind."""

from __future__ import annotations

from collections import Counter

import pytest

from enrichers.base import Enrichment, enrich_batch
from enrichers.kubernetes.api import RESOURCE_GROUPS
from enrichers.kubernetes.kinds import hpa_facts, job_facts, quantity
from enrichers.kubernetes.report import read_facts, read_verdict
from enrichers.kubernetes.subject import resolve_subject
from receiver.pipeline.advice import advice
from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.kube_objects import (
    BAD_IMAGE,
    JOB,
    JOB_POD,
    UNBOUND_MESSAGE,
    WORKER_DOWN,
    WORKER_FULL,
    claim,
    hpa,
    job,
    pod,
    shop_cluster,
)
from tests.test_kubernetes_cache import SHOP_TIME, cached, ctx, reading_directly
from tests.test_kubernetes_enricher import alert, context, serving

KUBE_STATE_METRICS = {"job": "kube-state-metrics", "instance": "10.244.1.12:8443", "endpoint": "http"}


async def enrich(labels: dict[str, str], fake: FakeKubeApi | None = None) -> Enrichment:
    async with serving(fake or shop_cluster()) as enricher:
        return await enricher.enrich(alert(labels), context())


async def test_a_filling_claim_names_its_pod_size_class_and_whether_it_can_grow() -> None:
    labels = {
        "alertname": "KubePersistentVolumeFillingUp",
        "namespace": "shop",
        "persistentvolumeclaim": "data-postgres-0",
        "node": WORKER_FULL,
        "job": "kubelet",
        "metrics_path": "/metrics",
        "instance": "10.0.0.12:10250",
    }
    result = await enrich(labels)

    assert (result.status, result.reason) == ("ok", None)
    assert result.summary[0] == (
        "PersistentVolumeClaim data-postgres-0: Bound to pvc-7c1e, 10Gi, class standard (expandable)"
    )
    assert f"mounted by: postgres-0 on node {WORKER_FULL}" in result.summary
    pvc = result.facts["pvc"]
    assert (pvc["requested"], pvc["capacity"], pvc["storage_class"]) == ("10Gi", "10Gi", "standard")
    assert (pvc["allow_volume_expansion"], pvc["expandable"]) == (True, True)
    assert [p["name"] for p in result.facts["pods"]] == ["postgres-0"]
    assert result.facts["node"]["name"] == WORKER_FULL
    verdict = read_verdict(result.facts)
    assert verdict.pvc_expandable
    assert verdict.subject is not None
    assert verdict.subject.kind == "PersistentVolumeClaim"


async def test_a_claim_whose_class_cannot_be_read_says_expansion_is_unknown() -> None:
    fake = shop_cluster()
    fake.fail("storageclasses", "forbidden")
    labels = {
        "alertname": "KubePersistentVolumeFillingUp",
        "namespace": "shop",
        "persistentvolumeclaim": "data-postgres-0",
    }
    result = await enrich(labels, fake)

    assert result.status == "partial"
    assert "forbidden (RBAC): needs get on storageclasses (cluster-wide)" in (result.reason or "")
    assert result.facts["pvc"]["allow_volume_expansion"] is None
    assert "(expansion unknown)" in result.summary[0]


async def test_an_hpa_at_its_maximum_shows_metric_against_target_replicas_and_why_it_is_limited() -> None:
    labels = {"alertname": "KubeHpaMaxedOut", "namespace": "shop", "horizontalpodautoscaler": "frontend"}
    result = await enrich({**KUBE_STATE_METRICS, **labels})

    assert result.summary[0] == (
        "HorizontalPodAutoscaler frontend: 10 replicas (desired 10, min 2, max 10), at maximum; "
        "cpu 95% (target 60%); ScalingLimited: TooManyReplicas: the desired replica count is more "
        "than the maximum replica count"
    )
    hpa = result.facts["hpa"]
    assert (hpa["current_replicas"], hpa["desired_replicas"], hpa["min_replicas"], hpa["max_replicas"]) == (
        10,
        10,
        2,
        10,
    )
    assert hpa["metrics"] == [{"name": "cpu", "current": "95%", "target": "60%"}]
    assert hpa["target"] == {"kind": "Deployment", "name": "frontend", "exists": True}
    assert "Deployment frontend: 10/10 ready" in result.summary
    verdict = read_verdict(result.facts)
    assert verdict.hpa_at_max
    assert verdict.hpa is not None
    assert (verdict.hpa.scaling_limited or "").startswith("TooManyReplicas")


async def test_a_failed_job_names_the_reason_its_failed_pod_and_that_pods_last_log_lines() -> None:
    labels = {"alertname": "KubeJobFailed", "namespace": "shop", "job_name": JOB, "condition": "true"}
    result = await enrich({**KUBE_STATE_METRICS, **labels})

    assert result.summary[0] == (
        f"Job {JOB}: failed, BackoffLimitExceeded: Job has reached the specified backoff limit; "
        "4 failed (backoff limit 3), 0 succeeded of 1, 0 active"
    )
    job = result.facts["job"]
    assert (job["failed_reason"], job["failed_pods"]) == ("BackoffLimitExceeded", [JOB_POD])
    assert job["owner"] == {"kind": "CronJob", "name": "report", "exists": True}
    (log,) = result.facts["logs"]
    assert log["lines"][-1] == 'ERROR: relation "orders_2025" does not exist'
    assert read_verdict(result.facts).job_failed_reason == "BackoffLimitExceeded"


async def test_a_cronjob_shows_its_last_schedule_last_success_and_most_recent_job() -> None:
    result = await enrich({"alertname": "CronJobLate", "namespace": "shop", "cronjob": "report"})

    assert result.summary[0] == (
        "CronJob report: schedule 0 * * * *, last scheduled 57m ago, last successful 2h ago; "
        f"most recent Job {JOB}: failed, BackoffLimitExceeded: Job has reached the specified backoff limit; "
        "4 failed (backoff limit 3), 0 succeeded of 1, 0 active"
    )
    cronjob = result.facts["cronjob"]
    assert (cronjob["last_schedule"], cronjob["last_successful"]) == ("2025-09-11T20:00:00Z", "2025-09-11T18:00:05Z")
    assert cronjob["last_job"] == JOB
    assert "BackoffLimitExceeded" in {e["reason"] for e in result.facts["events"]}
    assert result.facts["logs"], "the most recent Job's failed pod gets a closer look"


async def test_a_statefulset_short_of_replicas_names_the_pod_and_the_unbound_claim_it_waits_for() -> None:
    labels = {"alertname": "KubeStatefulSetReplicasMismatch", "namespace": "shop", "statefulset": "kafka"}
    result = await enrich({**KUBE_STATE_METRICS, **labels})

    assert result.summary[0] == "StatefulSet kafka: 2/3 ready"
    workload = result.facts["workload"]
    assert workload["unbound_claims"] == ["data-kafka-2"]
    (why,) = workload["not_running"]
    assert why.startswith("kafka-2 unschedulable: 0/3 nodes are available: pod has unbound immediate")
    assert why.endswith("unbound claim data-kafka-2 (Pending)")
    reasons = [e["reason"] for e in result.facts["events"]]
    assert reasons[0] == "FailedScheduling"
    verdict = read_verdict(result.facts)
    assert verdict.workload is not None
    assert verdict.workload.unbound_claims == ("data-kafka-2",)


async def test_a_statefulset_s_unbound_claim_says_why_it_does_not_bind() -> None:
    labels = {"alertname": "KubeStatefulSetReplicasMismatch", "namespace": "shop", "statefulset": "kafka"}
    result = await enrich({**KUBE_STATE_METRICS, **labels})

    provisioning = [e for e in result.facts["events"] if e["reason"] == "ProvisioningFailed"]
    assert provisioning
    assert provisioning[0]["objects"] == ["PersistentVolumeClaim/data-kafka-2"]
    assert 'storageclass.storage.k8s.io "fast-ssd" not found' in provisioning[0]["message"]


def pod_not_ready(name: str) -> dict[str, str]:
    return {**KUBE_STATE_METRICS, "alertname": "KubePodNotReady", "namespace": "shop", "pod": name}


def claim_reads(fake: FakeKubeApi) -> list[str]:
    """The stand-in's requests about PersistentVolumeClaims: lists of them, and their events."""
    return [
        f"{r.path}?{r.query.get('fieldSelector', '')}"
        for r in fake.requests
        if "persistentvolumeclaims" in r.path or "PersistentVolumeClaim" in r.query.get("fieldSelector", "")
    ]


@pytest.mark.parametrize("watch", [True, False], ids=["watch cache", "direct reads"])
async def test_a_pod_pending_on_an_unbound_claim_says_why_the_claim_does_not_bind_and_what_to_do(watch: bool) -> None:
    labels = pod_not_ready("kafka-2")
    fake = shop_cluster()
    async with cached(fake) if watch else reading_directly(fake) as enricher:
        result = await enricher.enrich(alert(labels, SHOP_TIME), ctx(SHOP_TIME))

    assert (result.status, result.reason) == ("ok", None)
    assert result.summary[0].startswith("kafka-2: Pending, unschedulable: 0/3 nodes are available: pod has unbound")
    pvc = result.facts["pvc"]
    assert (pvc["name"], pvc["phase"], pvc["storage_class"], pvc["exists"]) == (
        "data-kafka-2",
        "Pending",
        "fast-ssd",
        True,
    )
    assert "PersistentVolumeClaim data-kafka-2: Pending, 10Gi, class fast-ssd (expansion unknown)" in result.summary
    assert result.facts["workload"]["unbound_claims"] == ["data-kafka-2"]
    assert not [line for line in result.summary if line.startswith("unbound claims:")], "said once, by the claim's line"
    (provisioning,) = [e for e in result.facts["events"] if e["reason"] == "ProvisioningFailed"]
    assert provisioning["objects"] == ["PersistentVolumeClaim/data-kafka-2"]
    assert any(line.endswith('storageclass.storage.k8s.io "fast-ssd" not found') for line in result.summary)
    subject = resolve_subject(labels)
    assert subject is not None
    assert advice(subject, read_facts(result.facts), labels, {})[0] == (
        "Its claims ask for StorageClass fast-ssd, which does not exist: create it, or give the claims a class"
        " that exists: kubectl get storageclass"
    )


def without_claims(fake: FakeKubeApi, *pods: str) -> FakeKubeApi:
    for name in pods:
        spec = fake.find("pods", name)["spec"]
        spec["volumes"] = [v for v in spec["volumes"] if "persistentVolumeClaim" not in v]
    return fake


async def test_a_storm_of_alerts_about_healthy_pods_with_claims_reads_nothing_more() -> None:
    """Running pods' claims are bound: their alerts read what they would without claims."""
    healthy = ("kafka-0", "kafka-1", "postgres-0") * 5
    alerts = tuple(alert(pod_not_ready(name), SHOP_TIME) for name in healthy)
    reads: list[Counter[str]] = []
    for fake in (shop_cluster(), without_claims(shop_cluster(), *set(healthy))):
        async with reading_directly(fake) as enricher:
            batch = ctx(SHOP_TIME)
            batch.alerts = alerts
            await enrich_batch([enricher], alerts, batch)
        assert claim_reads(fake) == []
        reads.append(Counter(f"{r.path}?{sorted(r.query.items())}" for r in fake.requests))
    assert reads[0] == reads[1]


async def test_pods_of_one_batch_pending_on_claims_share_the_claim_reads() -> None:
    fake = shop_cluster()
    fake.add(
        claim("uploads", storage_class="fast-ssd", volume=None),
        *(
            pod(
                f"uploads-{i}",
                node=None,
                labels={"app": "uploads"},
                owned_by=None,
                claims=("uploads",),
                phase="Pending",
                ready=False,
                unschedulable=UNBOUND_MESSAGE,
            )
            for i in range(2)
        ),
    )
    alerts = tuple(alert(pod_not_ready(name), SHOP_TIME) for name in ("kafka-2", "uploads-0", "uploads-1"))
    async with reading_directly(fake) as enricher:
        alone = [await enricher.enrich(one, ctx(SHOP_TIME)) for one in alerts]
        fake.requests.clear()
        batch = ctx(SHOP_TIME)
        batch.alerts = alerts
        together = [found["kubernetes"] for found in await enrich_batch([enricher], alerts, batch)]

    assert [(r.status, r.facts, r.summary) for r in together] == [(r.status, r.facts, r.summary) for r in alone]
    assert [r.facts["pvc"]["name"] for r in together] == ["data-kafka-2", "uploads", "uploads"]
    assert "workload" not in together[1].facts, "a pod without an owner has its claim all the same"
    assert Counter(claim_reads(fake)) == {
        "/api/v1/namespaces/shop/persistentvolumeclaims?": 1,
        "/api/v1/namespaces/shop/events?involvedObject.kind=PersistentVolumeClaim,"
        "involvedObject.name=data-kafka-2,type=Warning": 1,
        "/api/v1/namespaces/shop/events?involvedObject.kind=PersistentVolumeClaim,"
        "involvedObject.name=uploads,type=Warning": 1,
    }


async def test_a_daemonset_not_scheduled_says_which_pod_fits_nowhere_and_why() -> None:
    labels = {"alertname": "KubeDaemonSetRolloutStuck", "namespace": "shop", "daemonset": "log-agent"}
    result = await enrich({**KUBE_STATE_METRICS, **labels})

    assert result.summary[0] == "DaemonSet log-agent: 2/3 ready"
    (why,) = result.facts["workload"]["not_running"]
    assert why.startswith("log-agent-c3 unschedulable: 0/3 nodes are available: 1 Insufficient memory")
    assert any(line.startswith("not running: log-agent-c3 unschedulable") for line in result.summary)
    assert result.facts["events"][0]["reason"] == "FailedScheduling"


async def test_a_notready_node_shows_conditions_taints_capacity_against_requests_and_its_pods() -> None:
    result = await enrich({"alertname": "KubeNodeNotReady", "node": WORKER_DOWN, "condition": "Ready"})

    assert result.summary[0] == f"node {WORKER_DOWN}: NotReady: NodeStatusUnknown, 3 pods, 3 not ready"
    node = result.facts["node"]
    assert node["conditions"]["Ready"] == "Unknown"
    assert node["taints"] == ["node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"]
    assert node["allocatable"] == {"cpu": "4", "memory": "16Gi", "pods": "110"}
    assert node["requested"] == {"cpu": "1500m", "memory": "3Gi", "pods": "3"}
    assert f"node {WORKER_DOWN} requested: cpu 1500m of 4 (38%), memory 3Gi of 16Gi (19%), pods 3 of 110 (3%)" in (
        result.summary
    )
    assert result.facts["pods_total"] == 3
    assert [e["reason"] for e in result.facts["events"]] == ["NodeNotReady"]
    assert read_verdict(result.facts).node_not_ready


async def test_a_filesystem_alert_names_the_node_and_the_mount_point() -> None:
    labels = {
        "alertname": "NodeFilesystemAlmostOutOfSpace",
        "job": "node-exporter",
        "instance": WORKER_FULL,
        "namespace": "monitoring",
        "pod": "node-exporter-7xk2p",
        "container": "node-exporter",
        "mountpoint": "/var/lib/containerd",
        "device": "/dev/sda1",
        "fstype": "ext4",
    }
    result = await enrich(labels)

    assert result.facts["subject"]["kind"] == "Node"
    assert result.facts["filesystem"] == {
        "node": WORKER_FULL,
        "mountpoint": "/var/lib/containerd",
        "device": "/dev/sda1",
        "fstype": "ext4",
    }
    assert result.summary[1] == f"filesystem /var/lib/containerd (ext4, /dev/sda1) on node {WORKER_FULL}"
    assert result.facts["node"]["requested"]["pods"] == "2"


async def test_an_image_pull_failure_keeps_the_registry_answer_and_names_the_image() -> None:
    labels = {"alertname": "KubePodNotReady", "namespace": "shop", "pod": "checkout-5c9d-x2x7q"}
    result = await enrich({**KUBE_STATE_METRICS, **labels})

    assert result.summary[0] == "checkout-5c9d-x2x7q: ImagePullBackOff"
    assert result.summary[1].startswith(f"image {BAD_IMAGE} not found in the registry: Failed to pull image")
    (failed,) = result.facts["events"]
    assert failed["message"].endswith(f"{BAD_IMAGE}: not found")
    assert [(m["message"][:20], m["count"]) for m in failed["messages"]] == [
        ("Failed to pull image", 4),
        ("Error: ImagePullBack", 30),
        ("Error: ErrImagePull", 4),
    ]
    assert result.facts["image_pull"]["not_found"] is True
    assert read_verdict(result.facts).image_not_found == BAD_IMAGE


async def test_a_volume_alert_shows_the_volume_and_the_claim_bound_to_it() -> None:
    result = await enrich(
        {"alertname": "KubePersistentVolumeErrors", "persistentvolume": "pvc-7c1e", "phase": "Failed"}
    )

    assert (
        result.summary[0] == "PersistentVolume pvc-7c1e: Bound, claimed by shop/data-postgres-0, 10Gi, class standard"
    )
    assert result.facts["pvc"]["name"] == "data-postgres-0"


def resource_of(path: str) -> str:
    """The RBAC resource of a request path: /api/v1/namespaces/ns/pods/x/log -> pods/log."""
    parts = [p for p in path.split("/") if p]
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if rest[0] == "namespaces" and len(rest) > 2:
        rest = rest[2:]
    return "/".join(rest[0:1] + rest[2:3])


async def test_every_read_for_every_kind_is_one_the_cluster_role_grants() -> None:
    fake = shop_cluster()
    alerts = [
        {"namespace": "shop", "persistentvolumeclaim": "data-postgres-0"},
        {"persistentvolume": "pvc-7c1e"},
        {"namespace": "shop", "horizontalpodautoscaler": "frontend"},
        {"namespace": "shop", "cronjob": "report"},
        {"namespace": "shop", "statefulset": "kafka"},
        {"namespace": "shop", "daemonset": "log-agent"},
        {"node": WORKER_DOWN},
        {"namespace": "shop", "pod": JOB_POD},
    ]
    async with serving(fake) as enricher:
        for labels in alerts:
            await enricher.enrich(alert({"alertname": "A", **labels}), context())

    read = {resource_of(r.path) for r in fake.requests}
    assert read <= set(RESOURCE_GROUPS)
    assert {"persistentvolumeclaims", "storageclasses", "horizontalpodautoscalers", "jobs", "cronjobs"} <= read


def test_facts_written_before_these_kinds_existed_still_read() -> None:
    old = {
        "subject": {"kind": "Node", "namespace": None, "name": "n1", "container": None},
        "verdict": "node n1: NotReady: NodeStatusUnknown",
        "node": {"name": "n1", "exists": True, "ready": False, "problems": ["NotReady"], "unschedulable": False},
        "rollout": {"deployment": "d", "revision": 3, "replicaset": "d-1", "images": ["i:1"], "started_at": None},
        "events": [{"reason": "NodeNotReady", "count": 1, "last_seen": None, "message": "m", "objects": []}],
    }
    verdict = read_verdict(old)

    assert verdict.node_not_ready
    assert verdict.rollout is not None
    assert (verdict.rollout.revision, verdict.rollout.previous_revision) == (3, None)
    assert (verdict.pvc, verdict.hpa, verdict.job, verdict.image_not_found) == (None, None, None, None)


@pytest.mark.parametrize(
    ("text", "value"),
    [("250m", 0.25), ("2", 2.0), ("1.5Gi", 1.5 * 2**30), ("8146056Ki", 8146056 * 1024), ("1e3", 1000.0), ("x", None)],
)
def test_quantities_read_as_the_api_writes_them(text: str, value: float | None) -> None:
    assert quantity(text) == value


def test_hpa_metrics_of_every_source_pair_current_with_target() -> None:
    obj = hpa("api", target="api", current=4, desired=6, minimum=1, maximum=6, cpu=(80, 50))
    obj["spec"]["metrics"].append(
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "http_requests_per_second"},
                "target": {"type": "AverageValue", "averageValue": "100"},
            },
        }
    )
    obj["spec"]["metrics"].append(
        {
            "type": "External",
            "external": {"metric": {"name": "queue_depth"}, "target": {"type": "Value", "value": "30"}},
        }
    )
    obj["status"]["currentMetrics"].append(
        {"type": "Pods", "pods": {"metric": {"name": "http_requests_per_second"}, "current": {"averageValue": "150"}}}
    )
    facts = hpa_facts(obj)

    assert [m.describe() for m in facts.metrics] == [
        "cpu 80% (target 50%)",
        "http_requests_per_second 150 (target 100)",
        "queue_depth unknown (target 30)",
    ]
    assert facts.at_max  # desired reached max, current not yet
    assert facts.scaling_limited is not None


def test_a_job_past_its_deadline_says_so_with_the_deadline() -> None:
    facts = job_facts(job("slow", cronjob=None, failed=0, reason="DeadlineExceeded"))
    assert facts.failed_reason == "DeadlineExceeded"
    assert facts.verdict().endswith("activeDeadlineSeconds 600")


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (
            {
                "alertname": "KubePersistentVolumeFillingUp",
                "namespace": "shop",
                "persistentvolumeclaim": "data-postgres-0",
                "node": WORKER_FULL,
                "job": "kubelet",
            },
            "patch pvc data-postgres-0",
        ),
        ({"alertname": "KubeJobFailed", "namespace": "shop", "job_name": JOB, **KUBE_STATE_METRICS}, f"logs job/{JOB}"),
    ],
)
async def test_the_advice_reads_the_facts_the_enricher_writes_for_each_kind(
    labels: dict[str, str], expected: str
) -> None:
    from enrichers.kubernetes.subject import resolve
    from receiver.pipeline.advice import advice

    result = await enrich(labels)
    lines = advice(resolve(labels).subject, read_facts(result.facts), labels, {})
    assert any(expected in line for line in lines), lines
