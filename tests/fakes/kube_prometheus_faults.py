"""The twelve fault classes of the kube-prometheus end-to-end run, one row each, and how
to find each row's alert in what the run left behind (Prometheus, Alertmanager, kubebot's
API and its pages). Shared by tests/test_e2e_kube_prometheus.py (what main does) and
tests/test_e2e_kube_prometheus_pending.py (the rest of each row, after issue 15's parts)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.kube_cluster import build
from tests.fakes.kube_prometheus_stack import StackResult, run_stack

SETTLE_TIMEOUT = 75.0


@dataclass(frozen=True)
class Fault:
    fault: str
    alert: dict[str, str]  # alertname and the labels that pick this instance
    kind: str  # the subject: the broken object
    namespace: str | None
    name: str
    fact: str  # what an engineer looks up first, somewhere in the page/facts
    cause: str  # among the incident's top 3 causes (name or evidence)
    advice: str  # in what the page says to do

    @property
    def alertname(self) -> str:
        return self.alert["alertname"]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.alert.items())


FAULTS = (
    Fault(
        "crash loop after a rollout",
        {"alertname": "KubePodCrashLooping", "pod": "checkout-6f7c9d8b5-2xq7w"},
        "Pod",
        "shop",
        "checkout-6f7c9d8b5-2xq7w",
        "PAYMENTS_GRPC_ADDR",
        "checkout",
        "rollout undo deployment/checkout --to-revision=3",
    ),
    Fault(
        "OOMKilled",
        {"alertname": "KubePodCrashLooping", "pod": "cart-7b5d9c6f8-lq2vn"},
        "Pod",
        "shop",
        "cart-7b5d9c6f8-lq2vn",
        "OOMKilled",
        "cart",
        "kubectl -n shop set resources deployment/cart",
    ),
    Fault(
        "image pull failure",
        {"alertname": "KubeContainerWaiting", "pod": "payments-84c6d9f7b-tw5rx"},
        "Pod",
        "shop",
        "payments-84c6d9f7b-tw5rx",
        "payments:2.14.1: not found",
        "payments",
        "rollout undo deployment/payments --to-revision=6",
    ),
    Fault(
        "replicas mismatch, insufficient capacity",
        {"alertname": "KubeDeploymentReplicasMismatch", "deployment": "search"},
        "Deployment",
        "shop",
        "search",
        "Insufficient cpu",
        "search",
        "requests",
    ),
    Fault(
        "NotReady node with pods",
        {"alertname": "KubeNodeNotReady", "node": "worker-3"},
        "Node",
        None,
        "worker-3",
        "Kubelet stopped posting node status",
        "worker-3",
        "drain worker-3",
    ),
    Fault(
        "PVC filling up",
        {
            "alertname": "KubePersistentVolumeFillingUp",
            "persistentvolumeclaim": "data-orders-db-0",
            "severity": "critical",
        },
        "PersistentVolumeClaim",
        "shop",
        "data-orders-db-0",
        "gp3",
        "data-orders-db-0",
        "kubectl -n shop patch pvc data-orders-db-0",
    ),
    Fault(
        "failed Job",
        {"alertname": "KubeJobFailed", "job_name": "nightly-report-28571520"},
        "Job",
        "batch",
        "nightly-report-28571520",
        "BackoffLimitExceeded",
        "nightly-report",
        "kubectl -n batch logs",
    ),
    Fault(
        "HPA maxed out",
        {"alertname": "KubeHpaMaxedOut", "horizontalpodautoscaler": "frontend"},
        "HorizontalPodAutoscaler",
        "shop",
        "frontend",
        "TooManyReplicas",
        "frontend",
        "maxReplicas",
    ),
    Fault(
        "StatefulSet with an unbound volume",
        {"alertname": "KubeStatefulSetReplicasMismatch", "statefulset": "postgres"},
        "StatefulSet",
        "data",
        "postgres",
        "unbound",
        "data-postgres-1",
        "fast-ssd",
    ),
    Fault(
        "DaemonSet not scheduled",
        {"alertname": "KubeDaemonSetNotScheduled", "daemonset": "fluent-bit"},
        "DaemonSet",
        "logging",
        "fluent-bit",
        "exceeded quota",
        "fluent-bit",
        "resourcequota logging-quota",
    ),
    Fault(
        "node filesystem filling",
        {"alertname": "NodeFilesystemAlmostOutOfSpace", "mountpoint": "/var/log", "severity": "critical"},
        "Node",
        None,
        "worker-2",
        "/var/log",
        "worker-2",
        "kubectl debug node/worker-2",
    ),
    Fault(
        "TargetDown",
        {"alertname": "TargetDown", "service": "checkout"},
        "Service",
        "shop",
        "checkout",
        "0/2 endpoints ready",
        "checkout",
        "runbooks/general/targetdown",
    ),
)
INHIBITED = (  # critical inhibits warning on the same namespace and alertname
    {"alertname": "KubePersistentVolumeFillingUp", "persistentvolumeclaim": "data-orders-db-0", "severity": "warning"},
    {"alertname": "NodeFilesystemAlmostOutOfSpace", "mountpoint": "/var/log", "severity": "warning"},
)
NOT_READY_NODE = "worker-3"


def received(result: StackResult, fault: Fault) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(incident, alert) of each firing alert of this row kubebot received."""
    return [(i, a) for i, a in result.received() if a["status"] == "firing" and fault.matches(a["labels"])]


def per_alert(incident: dict[str, Any], alert: dict[str, Any], part: str) -> dict[str, Any]:
    """The incident's `decisions` or `enrichments` entry for one of its alerts."""
    return next(e for e in incident[part] if e["alert_id"] == alert["alert_id"])


def decided(result: StackResult, fault: Fault) -> bool:
    found = received(result, fault)
    return bool(found) and all(per_alert(i, a, "decisions")["decision"] != "hold" for i, a in found)


def settled(result: StackResult) -> bool:
    """Every row decided, every notification sent, the inhibited warnings seen by Alertmanager."""
    inhibited = [a for a in result.alertmanager_alerts if a["status"]["inhibitedBy"]]
    return (
        all(decided(result, f) for f in FAULTS)
        and all(n["state"] == "delivered" for i in result.incidents for n in i["notifications"])
        and all(any(_subset(want, a["labels"]) for a in inhibited) for want in INHIBITED)
    )


def _subset(want: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in want.items())


_RUNS: dict[str, StackResult] = {}


def the_run(workdir: Path) -> StackResult:
    """One run of the whole stack per test session, shared by every test that reads it."""
    if "run" not in _RUNS:
        _RUNS["run"] = asyncio.run(run_stack(workdir, build(), settled, SETTLE_TIMEOUT))
    return _RUNS["run"]


def diagnose(result: StackResult) -> str:
    """What each part ended with, for a failure message."""
    firing = sorted(a["labels"]["alertname"] for a in result.prometheus_alerts if a["state"] == "firing")
    got = sorted(f"{a['labels']['alertname']}:{per_alert(i, a, 'decisions')['decision']}" for i, a in result.received())
    logs = "\n".join(f"--- {name}.log\n{text[-1500:]}" for name, text in result.logs.items())
    return f"Prometheus firing: {firing}\nkubebot received: {got}\n{logs}"
