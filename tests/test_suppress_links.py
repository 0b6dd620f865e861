"""Symptoms only along causal links it can name: a pod alert folds under a node incident
only when its pod runs on that node and the node is down or under pressure; volume,
filesystem and exporter alerts never swallow anything. Where unsure, page.

Labels are the ones kube-prometheus' rules leave on their alerts (series labels plus the
scrape target's), so the exporter's own `pod`, `namespace` and `node` are in them too.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from enrichers.base import Enrichment
from receiver.config import SuppressionConfig
from receiver.models import Group, parse_webhook
from receiver.pipeline.stage import Work
from receiver.pipeline.suppress import Suppressor, SuppressStage

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

KSM = {
    "job": "kube-state-metrics",
    "instance": "10.244.1.12:8080",
    "endpoint": "http",
    "service": "kube-prometheus-stack-kube-state-metrics",
    "namespace": "monitoring",
    "pod": "kube-prometheus-stack-kube-state-metrics-6f8b9d7c4-x2xkq",
    "container": "kube-state-metrics",
}
KUBELET = {
    "job": "kubelet",
    "instance": "172.18.0.4:10250",
    "endpoint": "https-metrics",
    "service": "kube-prometheus-stack-kubelet",
    "namespace": "kube-system",
    "node": "worker-3",
    "metrics_path": "/metrics",
}
NODE_EXPORTER = {
    "job": "node-exporter",
    "instance": "worker-3",
    "endpoint": "http-metrics",
    "service": "kube-prometheus-stack-prometheus-node-exporter",
    "namespace": "monitoring",
    "pod": "kube-prometheus-stack-prometheus-node-exporter-x7k2p",
    "container": "node-exporter",
}


def labels(alertname: str, target: dict[str, str], **series: str) -> dict[str, str]:
    return {**target, **series, "alertname": alertname, "severity": "warning"}


PVC_FILLING = labels("KubePersistentVolumeFillingUp", KUBELET, namespace="shop", persistentvolumeclaim="data-db-0")
NODE_NOT_READY = labels("KubeNodeNotReady", KSM, node="worker-3", condition="Ready", status="true")
FILESYSTEM_FULL = labels(
    "NodeFilesystemAlmostOutOfSpace", NODE_EXPORTER, device="/dev/sda1", fstype="ext4", mountpoint="/"
)


def crash_loop(pod: str) -> dict[str, str]:
    return labels("KubePodCrashLooping", KSM, namespace="shop", pod=pod, container="app", reason="CrashLoopBackOff")


def throttling(pod: str) -> dict[str, str]:
    # cAdvisor series aggregated by (container, pod, namespace), with a node a user kept
    return {"alertname": "CPUThrottlingHigh", "namespace": "shop", "pod": pod, "container": "app", "node": "worker-3"}


def on_node(pod: str, node: str, node_facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Kubernetes facts of a pod alert: the pod runs on `node`."""
    facts: dict[str, Any] = {"pod": {"name": pod, "exists": True, "phase": "Running", "node": node}}
    if node_facts is not None:
        facts["node"] = node_facts
    return facts


def work(item: dict[str, str], fingerprint: str, k8s: dict[str, Any] | None = None, group: str = "g") -> Work:
    body = {"alerts": [{"status": "firing", "labels": item, "startsAt": T0.isoformat(), "fingerprint": fingerprint}]}
    alert = parse_webhook(body).alerts[0]
    enrichment = {"kubernetes": Enrichment("kubernetes", "ok", k8s)} if k8s is not None else {}
    return Work(alert=alert, group=Group(group, "kubebot", "firing"), received_at=T0, enrichment=enrichment)


async def decide(*batch: Work) -> dict[str, tuple[str, str | None, str | None]]:
    stage = SuppressStage(Suppressor(SuppressionConfig(), lambda: T0))
    decided = await stage.exec(list(batch))
    return {w.alert.fingerprint: (w.decision.action, w.decision.reason, w.decision.rule) for w in decided}


async def test_a_filling_volume_on_a_node_swallows_nothing_on_that_node() -> None:
    """The issue's case: kubelet volume stats carry `node` and no pod; the crash loop, the
    failed Job, the replicas mismatch and the throttling on the same node all page."""
    decided = await decide(
        work(PVC_FILLING, "pvc"),
        work(crash_loop("api-7d9f-x2"), "crash", k8s=on_node("api-7d9f-x2", "worker-3")),
        work(labels("KubeJobFailed", KSM, namespace="shop", job_name="backup-29012"), "job"),
        work(labels("KubeDeploymentReplicasMismatch", KSM, namespace="shop", deployment="web"), "mismatch"),
        work(throttling("api-7d9f-x2"), "throttle-1"),
        work(throttling("web-5c4f-abcde"), "throttle-2", k8s=on_node("web-5c4f-abcde", "worker-3")),
    )
    assert decided == dict.fromkeys(decided, ("notify", None, None))
    assert len(decided) == 6


async def test_a_pod_on_a_not_ready_node_is_its_symptom_and_says_so() -> None:
    decided = await decide(
        work(crash_loop("api-7d9f-x2"), "crash", k8s=on_node("api-7d9f-x2", "worker-3")),
        work(NODE_NOT_READY, "node", group="node-group"),
    )
    assert decided["node"] == ("notify", None, None)
    assert decided["crash"] == ("suppress", "symptom", "on node worker-3, which is NotReady")


async def test_the_symptom_joins_the_nodes_incident() -> None:
    stage = SuppressStage(Suppressor(SuppressionConfig(), lambda: T0))
    node, pod = await stage.exec(
        [
            work(NODE_NOT_READY, "node", group="node-group"),
            work(crash_loop("api-7d9f-x2"), "crash", k8s=on_node("api-7d9f-x2", "worker-3")),
        ]
    )
    assert (node.incident_key, pod.incident_key) == (None, "node-group")


async def test_a_pod_on_another_node_pages() -> None:
    decided = await decide(
        work(NODE_NOT_READY, "node"),
        work(crash_loop("api-7d9f-x2"), "crash", k8s=on_node("api-7d9f-x2", "worker-1")),
        work(throttling("web-1") | {"node": "worker-1"}, "throttle"),
    )
    assert decided["crash"] == decided["throttle"] == ("notify", None, None)


async def test_a_pod_whose_node_facts_say_ready_pages() -> None:
    ready = {"name": "worker-3", "exists": True, "ready": True, "problems": []}
    decided = await decide(
        work(NODE_NOT_READY, "node"),
        work(crash_loop("api-7d9f-x2"), "crash", k8s=on_node("api-7d9f-x2", "worker-3", ready)),
    )
    assert decided["crash"] == ("notify", None, None)


async def test_a_pod_known_only_by_its_labels_node_follows_the_link_too() -> None:
    decided = await decide(work(NODE_NOT_READY, "node"), work(throttling("web-1"), "throttle"))
    assert decided["throttle"] == ("suppress", "symptom", "on node worker-3, which is NotReady")


async def test_node_trouble_is_read_from_what_the_labels_mean_not_the_alert_name() -> None:
    """A user's own rules on kube-state-metrics' node series: pressure by condition,
    unreachable by the taint the node lifecycle controller sets."""
    pressure = labels("MyNodeIsStruggling", KSM, node="worker-3", condition="MemoryPressure", status="true")
    taint = labels("NodeGone", KSM, node="worker-4", key="node.kubernetes.io/unreachable", effect="NoSchedule")
    decided = await decide(
        work(pressure, "pressure"),
        work(taint, "taint"),
        work(crash_loop("a-1"), "on-3", k8s=on_node("a-1", "worker-3")),
        work(crash_loop("b-1"), "on-4", k8s=on_node("b-1", "worker-4")),
    )
    assert decided["on-3"] == ("suppress", "symptom", "on node worker-3, which is under MemoryPressure")
    assert decided["on-4"] == ("suppress", "symptom", "on node worker-4, which is unreachable")


async def test_a_node_alert_that_says_nothing_is_wrong_with_the_node_swallows_nothing() -> None:
    too_many_pods = labels("KubeletTooManyPods", {}, node="worker-3", instance="172.18.0.4:10250")
    decided = await decide(
        work(too_many_pods, "busy"),
        work(crash_loop("api-7d9f-x2"), "crash", k8s=on_node("api-7d9f-x2", "worker-3")),
    )
    assert decided["crash"] == ("notify", None, None)


async def test_the_kubernetes_verdict_can_say_the_node_is_not_ready() -> None:
    not_ready = {"name": "worker-3", "exists": True, "ready": False, "problems": ["NotReady: KubeletNotReady"]}
    flapping = labels("KubeNodeReadinessFlapping", {}, node="worker-3")
    decided = await decide(
        work(flapping, "flapping", k8s={"node": not_ready}),
        work(crash_loop("api-7d9f-x2"), "crash", k8s=on_node("api-7d9f-x2", "worker-3")),
    )
    assert decided["crash"] == ("suppress", "symptom", "on node worker-3, which is NotReady")


async def test_a_filesystem_alert_never_swallows_pods_even_on_a_not_ready_node() -> None:
    not_ready = {"name": "worker-3", "exists": True, "ready": False, "problems": ["NotReady"]}
    decided = await decide(
        work(FILESYSTEM_FULL, "fs", k8s={"node": not_ready}),
        work(crash_loop("api-7d9f-x2"), "crash", k8s=on_node("api-7d9f-x2", "worker-3")),
    )
    assert decided == {"fs": ("notify", None, None), "crash": ("notify", None, None)}


async def test_after_the_node_resolves_its_pods_page_again() -> None:
    suppressor = Suppressor(SuppressionConfig(), lambda: T0)
    stage = SuppressStage(suppressor)
    await stage.exec([work(NODE_NOT_READY, "node")])
    resolved = dataclasses.replace(
        work(NODE_NOT_READY, "node"),
        alert=dataclasses.replace(work(NODE_NOT_READY, "node").alert, status="resolved"),
    )
    await stage.exec([resolved])
    [pod] = await stage.exec([work(crash_loop("api-7d9f-x2"), "crash", k8s=on_node("api-7d9f-x2", "worker-3"))])
    assert pod.decision.action == "notify"


async def test_after_a_restart_a_pod_on_the_down_node_is_still_its_symptom() -> None:
    before = Suppressor(SuppressionConfig(), lambda: T0)
    [node] = await SuppressStage(before).exec([work(NODE_NOT_READY, "node", group="node-group")])
    after = Suppressor(SuppressionConfig(), lambda: T0)
    after.recall(node.outcome(), T0)
    [pod] = await SuppressStage(after).exec(
        [work(crash_loop("api-7d9f-x2"), "crash", k8s=on_node("api-7d9f-x2", "worker-3"))]
    )
    assert (pod.decision.rule, pod.incident_key) == ("on node worker-3, which is NotReady", "node-group")
