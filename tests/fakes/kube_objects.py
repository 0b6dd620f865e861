"""Kubernetes objects for the kinds the fixtures lack (PersistentVolumeClaims, StorageClasses,
HPAs, Jobs, CronJobs, StatefulSets, DaemonSets, more pods, nodes and events), in the shapes
the API serves them. Pods and nodes start from the real k3s fixture objects and are
rewritten; the others follow the API reference field by field (core/v1, apps/v1, batch/v1,
autoscaling/v2, storage.k8s.io/v1).

`shop_cluster()` is one consistent cluster with the faults of issue 15.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.kube_api import FakeKubeApi, items_of

Obj = dict[str, Any]

NAMESPACE = "shop"
CREATED = "2025-09-11T20:00:00Z"
ALERT_TIME_TEXT = "2025-09-11T20:54:00Z"


def meta(name: str, namespace: str | None = NAMESPACE, **extra: Any) -> Obj:
    found: Obj = {
        "name": name,
        "uid": f"uid-{namespace or 'cluster'}-{name}",
        "resourceVersion": "4711",
        "creationTimestamp": CREATED,
        **extra,
    }
    if namespace is not None:
        found["namespace"] = namespace
    return found


def owner(kind: str, name: str, api_version: str = "apps/v1", namespace: str = NAMESPACE) -> Obj:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": f"uid-{namespace}-{name}",
        "controller": True,
        "blockOwnerDeletion": True,
    }


# ---- pods and nodes, rewritten from the real k3s objects -----------------------------------------


def _k3s_pod() -> Obj:
    pods = items_of("k8s_podlist_crashloopbackoff_k3s.json")
    return copy.deepcopy(next(p for p in pods if p["status"]["phase"] == "Running"))


def pod(
    name: str,
    *,
    node: str | None,
    labels: dict[str, str],
    owned_by: Obj | None,
    image: str = "registry.example.com/shop/app:1.0.0",
    requests: dict[str, str] | None = None,
    claims: tuple[str, ...] = (),
    phase: str = "Running",
    ready: bool = True,
    waiting: tuple[str, str] | None = None,  # (reason, message)
    terminated: tuple[str, int] | None = None,  # (reason, exit code)
    unschedulable: str | None = None,
    container: str = "app",
    namespace: str = NAMESPACE,
) -> Obj:
    obj = _k3s_pod()
    obj["metadata"] = meta(name, namespace, labels=labels, ownerReferences=[owned_by] if owned_by else [])
    spec = obj["spec"]
    (template,) = spec["containers"][:1]
    template.update(name=container, image=image)
    for unused in ("command", "args", "env", "livenessProbe", "readinessProbe"):
        template.pop(unused, None)
    template["resources"] = {"requests": requests or {"cpu": "100m", "memory": "128Mi"}}
    spec["containers"] = [template]
    spec["volumes"] = [v for v in spec["volumes"] if "projected" in v] + [
        {"name": f"vol-{c}", "persistentVolumeClaim": {"claimName": c}} for c in claims
    ]
    if node is None:
        spec.pop("nodeName", None)
    else:
        spec["nodeName"] = node
    obj["status"] = _pod_status(phase, ready, container, image, waiting, terminated, unschedulable, node)
    return obj


def _pod_status(
    phase: str,
    ready: bool,
    container: str,
    image: str,
    waiting: tuple[str, str] | None,
    terminated: tuple[str, int] | None,
    unschedulable: str | None,
    node: str | None,
) -> Obj:
    condition = "True" if ready else "False"
    conditions: list[Obj] = [
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": CREATED}
    ]
    if unschedulable is not None:
        conditions = [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": CREATED,
                "reason": "Unschedulable",
                "message": unschedulable,
            }
        ]
        return {"phase": "Pending", "conditions": conditions, "qosClass": "Burstable"}
    conditions += [
        {"type": t, "status": condition, "lastProbeTime": None, "lastTransitionTime": CREATED}
        for t in ("Initialized", "ContainersReady", "Ready")
    ]
    state: Obj = {"running": {"startedAt": CREATED}}
    if waiting is not None:
        state = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    if terminated is not None:
        state = {
            "terminated": {
                "exitCode": terminated[1],
                "reason": terminated[0],
                "startedAt": CREATED,
                "finishedAt": "2025-09-11T20:50:00Z",
                "containerID": "containerd://0123",
            }
        }
    status = {
        "name": container,
        "state": state,
        "lastState": {},
        "ready": ready,
        "restartCount": 0,
        "image": image,
        "imageID": "" if waiting else f"{image.rsplit(':', 1)[0]}@sha256:0123",
        "started": ready,
    }
    return {
        "phase": phase,
        "conditions": conditions,
        "hostIP": "10.0.0.12" if node else None,
        "startTime": CREATED,
        "containerStatuses": [status],
        "qosClass": "Burstable",
    }


def node(name: str, *, ready: bool = True, cpu: str = "4", memory: str = "16Gi", taints: tuple[Obj, ...] = ()) -> Obj:
    obj = copy.deepcopy(items_of("k8s_nodelist_k3s.json")[0])
    obj["kind"] = "Node"
    obj["metadata"] = meta(name, None, labels={"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"})
    obj["spec"] = {"podCIDR": "10.42.1.0/24", "taints": list(taints)} if taints else {"podCIDR": "10.42.1.0/24"}
    obj["status"]["allocatable"] = {**obj["status"]["allocatable"], "cpu": cpu, "memory": memory, "pods": "110"}
    if not ready:
        for condition in obj["status"]["conditions"]:
            condition.update(
                status="Unknown",
                reason="NodeStatusUnknown",
                message="Kubelet stopped posting node status.",
            )
    return obj


UNREACHABLE_TAINTS = (
    {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": "2025-09-11T20:48:00Z"},
    {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "2025-09-11T20:48:05Z"},
)


def event(
    name: str,
    involved: tuple[str, str],
    reason: str,
    message: str,
    *,
    count: int = 1,
    last_seen: str = "2025-09-11T20:52:00Z",
    namespace: str | None = NAMESPACE,
    component: str = "kubelet",
) -> Obj:
    kind, involved_name = involved
    involved_object: Obj = {"kind": kind, "name": involved_name, "uid": f"uid-{namespace}-{involved_name}"}
    if namespace is not None and kind != "Node":
        involved_object["namespace"] = namespace
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": meta(f"{involved_name}.{name}", namespace or "default"),
        "involvedObject": {"apiVersion": "v1", **involved_object},
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "firstTimestamp": "2025-09-11T20:40:00Z",
        "lastTimestamp": last_seen,
        "count": count,
        "type": "Warning",
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": "",
    }


# ---- storage -------------------------------------------------------------------------------------


def storage_class(name: str, *, expandable: bool | None) -> Obj:
    obj: Obj = {
        "kind": "StorageClass",
        "apiVersion": "storage.k8s.io/v1",
        "metadata": meta(name, None),
        "provisioner": "rancher.io/local-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    if expandable is not None:
        obj["allowVolumeExpansion"] = expandable
    return obj


def claim(name: str, *, storage_class: str, size: str = "10Gi", volume: str | None) -> Obj:
    status: Obj = {"phase": "Pending"}
    if volume is not None:
        status = {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": size}}
    return {
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "metadata": meta(name, finalizers=["kubernetes.io/pvc-protection"]),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": size}},
            "storageClassName": storage_class,
            "volumeMode": "Filesystem",
            **({"volumeName": volume} if volume else {}),
        },
        "status": status,
    }


def volume(name: str, *, claim_name: str, storage_class: str, size: str = "10Gi", phase: str = "Bound") -> Obj:
    return {
        "kind": "PersistentVolume",
        "apiVersion": "v1",
        "metadata": meta(name, None),
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": storage_class,
            "volumeMode": "Filesystem",
            "claimRef": {"kind": "PersistentVolumeClaim", "namespace": NAMESPACE, "name": claim_name},
            "hostPath": {"path": f"/var/lib/rancher/k3s/storage/{name}", "type": "DirectoryOrCreate"},
        },
        "status": {"phase": phase},
    }


# ---- workloads ------------------------------------------------------------------------------------


def _template(labels: dict[str, str], image: str, claims: tuple[str, ...] = ()) -> Obj:
    return {
        "metadata": {"labels": labels},
        "spec": {
            "containers": [{"name": "app", "image": image, "resources": {"requests": {"cpu": "100m"}}}],
            "volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims],
        },
    }


def statefulset(name: str, *, replicas: int, ready: int, claim_template: str | None = None) -> Obj:
    labels = {"app": name}
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "serviceName": name,
        "podManagementPolicy": "OrderedReady",
        "template": _template(labels, f"registry.example.com/shop/{name}:3.6"),
    }
    if claim_template is not None:
        spec["volumeClaimTemplates"] = [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim_template},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
            }
        ]
    return {
        "kind": "StatefulSet",
        "apiVersion": "apps/v1",
        "metadata": meta(name, labels=labels),
        "spec": spec,
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "readyReplicas": ready,
            "currentReplicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": ready,
        },
    }


def daemonset(name: str, *, desired: int, scheduled: int, ready: int) -> Obj:
    labels = {"app": name}
    return {
        "kind": "DaemonSet",
        "apiVersion": "apps/v1",
        "metadata": meta(name, labels=labels),
        "spec": {
            "selector": {"matchLabels": labels},
            "template": _template(labels, f"registry.example.com/{name}:2.1"),
        },
        "status": {
            "currentNumberScheduled": scheduled,
            "desiredNumberScheduled": desired,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
            "numberUnavailable": desired - ready,
            "updatedNumberScheduled": scheduled,
            "observedGeneration": 1,
        },
    }


def deployment(name: str, *, replicas: int, ready: int, image: str) -> Obj:
    labels = {"app": name}
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": meta(name, labels=labels, annotations={"deployment.kubernetes.io/revision": "1"}),
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": _template(labels, image)},
        "status": {
            "replicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": replicas,
        },
    }


def hpa(name: str, *, target: str, current: int, desired: int, minimum: int, maximum: int, cpu: tuple[int, int]) -> Obj:
    now, goal = cpu
    return {
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v2",
        "metadata": meta(name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": goal}},
                }
            ],
        },
        "status": {
            "lastScaleTime": "2025-09-11T20:30:00Z",
            "currentReplicas": current,
            "desiredReplicas": desired,
            "currentMetrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": now, "averageValue": "950m"}},
                }
            ],
            "conditions": [
                {
                    "type": "AbleToScale",
                    "status": "True",
                    "lastTransitionTime": CREATED,
                    "reason": "ReadyForNewScale",
                    "message": "recommended size matches current size",
                },
                {
                    "type": "ScalingActive",
                    "status": "True",
                    "lastTransitionTime": CREATED,
                    "reason": "ValidMetricFound",
                    "message": "the HPA was able to successfully calculate a replica count from cpu resource "
                    "utilization (percentage of request)",
                },
                {
                    "type": "ScalingLimited",
                    "status": "True" if desired >= maximum else "False",
                    "lastTransitionTime": "2025-09-11T20:30:00Z",
                    "reason": "TooManyReplicas" if desired >= maximum else "DesiredWithinRange",
                    "message": "the desired replica count is more than the maximum replica count"
                    if desired >= maximum
                    else "the desired count is within the acceptable range",
                },
            ],
        },
    }


def job(name: str, *, cronjob: str | None, failed: int, reason: str | None, created: str = CREATED) -> Obj:
    uid = f"uid-{NAMESPACE}-{name}"
    labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name, "job-name": name}
    status: Obj = {"startTime": created, "failed": failed, "ready": 0, "terminating": 0}
    if reason is not None:
        messages = {
            "BackoffLimitExceeded": "Job has reached the specified backoff limit",
            "DeadlineExceeded": "Job was active longer than specified deadline",
        }
        status["conditions"] = [
            {
                "type": "FailureTarget",
                "status": "True",
                "lastProbeTime": "2025-09-11T20:51:00Z",
                "lastTransitionTime": "2025-09-11T20:51:00Z",
                "reason": reason,
                "message": messages.get(reason, reason),
            },
            {
                "type": "Failed",
                "status": "True",
                "lastProbeTime": "2025-09-11T20:51:00Z",
                "lastTransitionTime": "2025-09-11T20:51:00Z",
                "reason": reason,
                "message": messages.get(reason, reason),
            },
        ]
    template = _template(labels, "registry.example.com/shop/report:1.4")
    template["spec"]["restartPolicy"] = "Never"
    return {
        "kind": "Job",
        "apiVersion": "batch/v1",
        "metadata": meta(
            name,
            labels=labels,
            creationTimestamp=created,
            ownerReferences=[owner("CronJob", cronjob, "batch/v1")] if cronjob else [],
        ),
        "spec": {
            "parallelism": 1,
            "completions": 1,
            "backoffLimit": 3,
            "activeDeadlineSeconds": 600,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
            "template": template,
        },
        "status": status,
    }


def cronjob(name: str, *, last_schedule: str, last_successful: str | None) -> Obj:
    status: Obj = {"lastScheduleTime": last_schedule}
    if last_successful is not None:
        status["lastSuccessfulTime"] = last_successful
    return {
        "kind": "CronJob",
        "apiVersion": "batch/v1",
        "metadata": meta(name),
        "spec": {
            "schedule": "0 * * * *",
            "concurrencyPolicy": "Forbid",
            "suspend": False,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {
                "spec": {"backoffLimit": 3, "template": _template({}, "registry.example.com/shop/report:1.4")}
            },
        },
        "status": status,
    }


# ---- the cluster of issue 15 ----------------------------------------------------------------------

WORKER_DOWN = "worker-3"
WORKER_FULL = "worker-2"
BAD_IMAGE = "registry.example.com/shop/checkout:2.14.1"
REGISTRY_ANSWER = (
    f'Failed to pull image "{BAD_IMAGE}": rpc error: code = NotFound desc = failed to pull and unpack image '
    f'"{BAD_IMAGE}": failed to resolve reference "{BAD_IMAGE}": {BAD_IMAGE}: not found'
)
UNBOUND_MESSAGE = (
    "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
    "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
)
NO_MEMORY_MESSAGE = (
    "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node affinity/selector. "
    "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
    "2 Preemption is not helpful for scheduling."
)
JOB = "report-29290000"
JOB_POD = f"{JOB}-x8k2f"
JOB_LOG = 'starting report for 2025-09-11\nquerying orders\nERROR: relation "orders_2025" does not exist\n'


def shop_cluster() -> FakeKubeApi:
    """Three workers; worker-3 NotReady with pods on it; a PVC filling up on worker-2; an
    HPA at its maximum; a failed Job of a CronJob; a StatefulSet with an unbound volume; a
    DaemonSet pod that fits nowhere; a Deployment whose image tag does not exist."""
    fake = FakeKubeApi()
    fake.add(
        node("worker-1"),
        node(WORKER_FULL),
        node(WORKER_DOWN, ready=False, taints=UNREACHABLE_TAINTS),
        storage_class("standard", expandable=True),
        claim("data-postgres-0", storage_class="standard", volume="pvc-7c1e"),
        volume("pvc-7c1e", claim_name="data-postgres-0", storage_class="standard"),
        statefulset("postgres", replicas=1, ready=1, claim_template="data"),
        pod(
            "postgres-0",
            node=WORKER_FULL,
            labels={"app": "postgres"},
            owned_by=owner("StatefulSet", "postgres"),
            claims=("data-postgres-0",),
            requests={"cpu": "1", "memory": "4Gi"},
        ),
        deployment("frontend", replicas=10, ready=10, image="registry.example.com/shop/frontend:5.2"),
        hpa("frontend", target="frontend", current=10, desired=10, minimum=2, maximum=10, cpu=(95, 60)),
        cronjob("report", last_schedule="2025-09-11T20:00:00Z", last_successful="2025-09-11T18:00:05Z"),
        job("report-29289940", cronjob="report", failed=0, reason=None, created="2025-09-11T19:00:00Z"),
        job(JOB, cronjob="report", failed=4, reason="BackoffLimitExceeded", created="2025-09-11T20:00:00Z"),
        pod(
            JOB_POD,
            node="worker-1",
            labels={"batch.kubernetes.io/controller-uid": f"uid-{NAMESPACE}-{JOB}", "job-name": JOB},
            owned_by=owner("Job", JOB, "batch/v1"),
            image="registry.example.com/shop/report:1.4",
            phase="Failed",
            ready=False,
            terminated=("Error", 1),
            container="report",
        ),
        statefulset("kafka", replicas=3, ready=2, claim_template="data"),
        claim("data-kafka-0", storage_class="standard", volume="pvc-k0"),
        claim("data-kafka-1", storage_class="standard", volume="pvc-k1"),
        claim("data-kafka-2", storage_class="fast-ssd", volume=None),
        *(
            pod(
                f"kafka-{i}",
                node="worker-1",
                labels={"app": "kafka"},
                owned_by=owner("StatefulSet", "kafka"),
                claims=(f"data-kafka-{i}",),
            )
            for i in (0, 1)
        ),
        pod(
            "kafka-2",
            node=None,
            labels={"app": "kafka"},
            owned_by=owner("StatefulSet", "kafka"),
            claims=("data-kafka-2",),
            phase="Pending",
            ready=False,
            unschedulable=UNBOUND_MESSAGE,
        ),
        daemonset("log-agent", desired=3, scheduled=3, ready=2),
        pod("log-agent-a1", node="worker-1", labels={"app": "log-agent"}, owned_by=owner("DaemonSet", "log-agent")),
        pod("log-agent-b2", node=WORKER_FULL, labels={"app": "log-agent"}, owned_by=owner("DaemonSet", "log-agent")),
        pod(
            "log-agent-c3",
            node=None,
            labels={"app": "log-agent"},
            owned_by=owner("DaemonSet", "log-agent"),
            phase="Pending",
            ready=False,
            unschedulable=NO_MEMORY_MESSAGE,
            requests={"cpu": "100m", "memory": "2Gi"},
        ),
        deployment("checkout", replicas=1, ready=0, image=BAD_IMAGE),
        pod(
            "checkout-5c9d-x2x7q",
            node="worker-1",
            labels={"app": "checkout"},
            owned_by=None,
            image=BAD_IMAGE,
            phase="Pending",
            ready=False,
            waiting=("ImagePullBackOff", f'Back-off pulling image "{BAD_IMAGE}"'),
        ),
        *(
            pod(
                f"web-{i}",
                node=WORKER_DOWN,
                labels={"app": "web"},
                owned_by=None,
                requests={"cpu": "500m", "memory": "1Gi"},
                ready=False,
            )
            for i in range(3)
        ),
        event(
            "1", ("Pod", "checkout-5c9d-x2x7q"), "Failed", REGISTRY_ANSWER, count=4, last_seen="2025-09-11T20:45:00Z"
        ),
        event(
            "2",
            ("Pod", "checkout-5c9d-x2x7q"),
            "Failed",
            "Error: ErrImagePull",
            count=4,
            last_seen="2025-09-11T20:45:00Z",
        ),
        event("3", ("Pod", "checkout-5c9d-x2x7q"), "Failed", "Error: ImagePullBackOff", count=30),
        event("4", ("Pod", "kafka-2"), "FailedScheduling", UNBOUND_MESSAGE, count=12, component="default-scheduler"),
        event(
            "5",
            ("PersistentVolumeClaim", "data-kafka-2"),
            "ProvisioningFailed",
            'storageclass.storage.k8s.io "fast-ssd" not found',
            count=9,
            component="persistentvolume-controller",
        ),
        event(
            "6", ("Pod", "log-agent-c3"), "FailedScheduling", NO_MEMORY_MESSAGE, count=7, component="default-scheduler"
        ),
        event(
            "7",
            ("Job", JOB),
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
            component="job-controller",
        ),
        event("8", ("HorizontalPodAutoscaler", "frontend"), "FailedGetResourceMetric", "no recent metrics", count=1),
        event(
            "9",
            ("Node", WORKER_DOWN),
            "NodeNotReady",
            f"Node {WORKER_DOWN} status is now: NodeNotReady",
            namespace=None,
            component="node-controller",
        ),
    )
    fake.add_log(NAMESPACE, JOB_POD, "report", JOB_LOG)
    return fake
