"""A small cluster with twelve faults at once, as Kubernetes objects in the API's own JSON
shapes, and what the real exporters expose for that state (kube-state-metrics, the
kubelet's volume stats, node-exporter's filesystems), derived from the same objects.

Three nodes: worker-1 and worker-2 Ready, worker-3 NotReady (its kubelet stopped posting
status four minutes ago, its pods are Running but not Ready). The faults:

- shop/checkout: rolled out (revision 4) twenty minutes ago, both new pods crash loop;
  the rollout is past its progress deadline.
- shop/cart: the container is OOMKilled against its 256Mi limit, and crash loops.
- shop/payments: revision 7 names an image tag the registry does not have.
- shop/search: two of three replicas Pending, "Insufficient cpu".
- shop/frontend: its HPA is at maxReplicas, CPU far above target.
- shop/orders-db: its claim data-orders-db-0 is 98% full and filling.
- data/postgres: replica postgres-1 Pending, its claim bound to no volume (no such class).
- batch/nightly-report: the Job failed, BackoffLimitExceeded.
- logging/fluent-bit: the DaemonSet cannot create its pod on worker-2 (quota).
- worker-2's /var/log filesystem is 98% full and filling.
- shop/checkout's metrics targets are down (its pods crash loop): TargetDown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Obj = dict[str, Any]
GiB = 1024**3
MiB = 1024**2
HISTORY_SECONDS = 3600  # backfilled: long enough for changes()[10m] and predict_linear()[6h]

READY_NODES = ("worker-1", "worker-2")
NOT_READY_NODE = "worker-3"
NODE_IPS = {"worker-1": "10.0.0.11", "worker-2": "10.0.0.12", "worker-3": "10.0.0.13"}
KSM_INSTANCE = "10.244.1.12:8443"  # kube-state-metrics' own address: never a subject
FULL_CLAIM_CAPACITY = 20 * GiB
FILLING_FS_SIZE = 50 * GiB


def uid(*parts: str) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Series:
    """One exposed series; `value` maps a unix time to the value then (history and now)."""

    name: str
    labels: dict[str, str]
    value: Callable[[float], float]


def const(v: float) -> Callable[[float], float]:
    return lambda _t: v


@dataclass
class Cluster:
    now: datetime
    objects: list[Obj] = field(default_factory=list)
    logs: dict[tuple[str, str, str, bool], str] = field(default_factory=dict)
    # node -> (namespace, claim, capacity, available(t)) for the kubelet's volume stats
    volumes: dict[str, list[tuple[str, str, float, Callable[[float], float]]]] = field(default_factory=dict)
    # node -> (device, mountpoint, fstype, size, available(t)) for node-exporter
    filesystems: dict[str, list[tuple[str, str, str, float, Callable[[float], float]]]] = field(default_factory=dict)

    def ago(self, **delta: float) -> str:
        return iso(self.now - timedelta(**delta))

    def of_kind(self, kind: str) -> Iterator[Obj]:
        return (o for o in self.objects if o["kind"] == kind)

    def find(self, kind: str, name: str) -> Obj:
        return next(o for o in self.of_kind(kind) if o["metadata"]["name"] == name)


# ---- object builders (the API's JSON shapes) ------------------------------------------------


def meta(kind: str, name: str, namespace: str | None, created: str, **extra: Any) -> Obj:
    found: Obj = {
        "name": name,
        "uid": uid(kind, namespace or "", name),
        "resourceVersion": "4242",
        "creationTimestamp": created,
        **extra,
    }
    if namespace is not None:
        found["namespace"] = namespace
    return found


def owner_ref(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def condition(kind: str, status: str, at: str, reason: str | None = None, message: str | None = None) -> Obj:
    found: Obj = {"type": kind, "status": status, "lastTransitionTime": at}
    if reason:
        found["reason"] = reason
    if message:
        found["message"] = message
    return found


def node(c: Cluster, name: str, *, ready: bool) -> Obj:
    heartbeat = c.ago(seconds=20) if ready else c.ago(minutes=4, seconds=40)
    since = c.ago(days=30) if ready else c.ago(minutes=4)
    stopped = "Kubelet stopped posting node status."

    def pressure(kind: str, reason: str) -> Obj:
        if ready:
            return {
                **condition(kind, "False", since, f"KubeletHas{reason}", f"kubelet has {reason}"),
                "lastHeartbeatTime": heartbeat,
            }
        return {**condition(kind, "Unknown", since, "NodeStatusUnknown", stopped), "lastHeartbeatTime": heartbeat}

    ready_condition = (
        condition("Ready", "True", since, "KubeletReady", "kubelet is posting ready status")
        if ready
        else condition("Ready", "Unknown", since, "NodeStatusUnknown", stopped)
    )
    taints = (
        []
        if ready
        else [
            {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": since},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": since},
        ]
    )
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": meta(
            "Node",
            name,
            None,
            c.ago(days=30),
            labels={
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m5.xlarge",
            },
        ),
        "spec": {
            "podCIDR": f"10.244.{name[-1]}.0/24",
            "providerID": f"aws:///eu-west-1a/i-0{name[-1]}",
            "taints": taints,
        },
        "status": {
            "capacity": {"cpu": "4", "memory": "16221956Ki", "pods": "110", "ephemeral-storage": "102350Mi"},
            "allocatable": {"cpu": "3920m", "memory": "15307012Ki", "pods": "110", "ephemeral-storage": "94323Mi"},
            "conditions": [
                pressure("MemoryPressure", "SufficientMemory"),
                pressure("DiskPressure", "NoDiskPressure"),
                pressure("PIDPressure", "SufficientPID"),
                {**ready_condition, "lastHeartbeatTime": heartbeat},
            ],
            "addresses": [{"type": "InternalIP", "address": NODE_IPS[name]}, {"type": "Hostname", "address": name}],
            "nodeInfo": {
                "kubeletVersion": "v1.29.4",
                "containerRuntimeVersion": "containerd://1.7.13",
                "osImage": "Ubuntu 22.04.4 LTS",
                "kernelVersion": "6.5.0-1018-aws",
                "architecture": "amd64",
                "operatingSystem": "linux",
            },
        },
    }


def deployment(
    c: Cluster,
    namespace: str,
    name: str,
    *,
    replicas: int,
    available: int,
    revision: int,
    image: str,
    rolled_out: str,
    stuck: bool = False,
    cpu: str = "250m",
    memory: str = "256Mi",
) -> Obj:
    progressing = (
        condition(
            "Progressing",
            "False",
            c.ago(minutes=10),
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{name}" has timed out progressing.',
        )
        if stuck
        else condition(
            "Progressing",
            "True",
            rolled_out,
            "NewReplicaSetAvailable",
            f'ReplicaSet "{name}" has successfully progressed.',
        )
    )
    available_condition = (
        condition(
            "Available", "True", c.ago(days=3), "MinimumReplicasAvailable", "Deployment has minimum availability."
        )
        if available >= replicas - 1 and available > 0
        else condition(
            "Available",
            "False",
            rolled_out,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    )
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": meta(
            "Deployment",
            name,
            namespace,
            c.ago(days=40),
            generation=revision,
            labels={"app": name},
            annotations={"deployment.kubernetes.io/revision": str(revision)},
        ),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name, image, cpu, memory),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {
            "observedGeneration": revision,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": replicas - available,
            "conditions": [available_condition, progressing],
        },
    }


def pod_template(app: str, image: str, cpu: str, memory: str, extra_labels: dict[str, str] | None = None) -> Obj:
    return {
        "metadata": {"labels": {"app": app, **(extra_labels or {})}},
        "spec": {
            "containers": [
                {
                    "name": app,
                    "image": image,
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            "restartPolicy": "Always",
        },
    }


def replicaset(
    c: Cluster, owner: Obj, template_hash: str, revision: int, image: str, created: str, replicas: int, ready: int
) -> Obj:
    app = owner["metadata"]["name"]
    template = pod_template(app, image, *_requests(owner), extra_labels={"pod-template-hash": template_hash})
    return {
        "kind": "ReplicaSet",
        "apiVersion": "apps/v1",
        "metadata": meta(
            "ReplicaSet",
            f"{app}-{template_hash}",
            owner["metadata"]["namespace"],
            created,
            labels={"app": app, "pod-template-hash": template_hash},
            annotations={"deployment.kubernetes.io/revision": str(revision)},
            ownerReferences=[owner_ref(owner)],
        ),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app, "pod-template-hash": template_hash}},
            "template": template,
        },
        "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": 1},
    }


def _requests(owner: Obj) -> tuple[str, str]:
    resources = owner["spec"]["template"]["spec"]["containers"][0]["resources"]
    return resources["requests"]["cpu"], resources["requests"]["memory"]


@dataclass(frozen=True)
class PodState:
    phase: str = "Running"
    ready: bool = True
    waiting: str | None = None  # CrashLoopBackOff, ImagePullBackOff, ...
    waiting_message: str | None = None
    last_terminated: tuple[str, int] | None = None  # (reason, exit code)
    terminated: tuple[str, int] | None = None  # the current state, for Failed pods
    restarts: int = 0
    unschedulable: str | None = None  # the scheduler's message
    claims: tuple[str, ...] = ()


def pod(
    c: Cluster,
    owner: Obj,
    name: str,
    node_name: str | None,
    state: PodState,
    *,
    started: str | None = None,
    labels: dict[str, str] | None = None,
) -> Obj:
    namespace = owner["metadata"]["namespace"]
    template = owner["spec"]["template"]
    container = template["spec"]["containers"][0]
    started = started or c.ago(hours=2)
    index = sum(map(ord, name)) % 200 + 20
    status: Obj = {"phase": state.phase, "qosClass": "Burstable"}
    if node_name is not None:
        status.update(hostIP=NODE_IPS[node_name], podIP=f"10.244.{node_name[-1]}.{index}", startTime=started)
        ready = "True" if state.ready else "False"
        reason = None if state.ready else ("PodFailed" if state.phase == "Failed" else "ContainersNotReady")
        status["conditions"] = [
            condition("Initialized", "True", started),
            condition("Ready", ready, c.ago(minutes=4) if not state.ready else started, reason),
            condition("ContainersReady", ready, started, reason),
            condition("PodScheduled", "True", started),
        ]
        status["containerStatuses"] = [container_status(c, container, state, started)]
    else:
        status["conditions"] = [
            condition("PodScheduled", "False", c.ago(minutes=30), "Unschedulable", state.unschedulable),
        ]
    spec: Obj = {**template["spec"], "serviceAccountName": "default", "schedulerName": "default-scheduler"}
    if node_name is not None:
        spec["nodeName"] = node_name
    if state.claims:
        spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}} for claim in state.claims]
        spec["containers"] = [{**container, "volumeMounts": [{"name": "data", "mountPath": "/var/lib/data"}]}]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": meta(
            "Pod",
            name,
            namespace,
            started,
            labels={**template["metadata"]["labels"], **(labels or {})},
            ownerReferences=[owner_ref(owner)],
        ),
        "spec": spec,
        "status": status,
    }


def container_status(c: Cluster, container: Obj, state: PodState, started: str) -> Obj:
    found: Obj = {
        "name": container["name"],
        "image": container["image"],
        "imageID": "" if state.waiting and "Image" in state.waiting else f"{container['image']}@sha256:{'ab' * 32}",
        "ready": state.ready,
        "restartCount": state.restarts,
        "started": state.ready,
        "lastState": {},
    }
    if state.terminated is not None:
        reason, code = state.terminated
        found["state"] = {
            "terminated": {"reason": reason, "exitCode": code, "startedAt": started, "finishedAt": c.ago(minutes=50)}
        }
    elif state.waiting is not None:
        found["state"] = {"waiting": {"reason": state.waiting, "message": state.waiting_message or ""}}
    else:
        found["state"] = {"running": {"startedAt": started}}
    if state.last_terminated is not None:
        reason, code = state.last_terminated
        found["lastState"] = {
            "terminated": {
                "reason": reason,
                "exitCode": code,
                "startedAt": c.ago(minutes=2),
                "finishedAt": c.ago(minutes=1, seconds=30),
            }
        }
    if state.waiting is None or "Image" not in state.waiting:
        found["containerID"] = f"containerd://{'cd' * 32}"
    return found


def event(
    c: Cluster,
    involved: Obj,
    reason: str,
    message: str,
    *,
    count: int = 1,
    first: float = 30,
    last: float = 1,
    component: str = "kubelet",
    type_: str = "Warning",
) -> Obj:
    name = involved["metadata"]["name"]
    namespace = involved["metadata"].get("namespace") or "default"
    serial = hashlib.sha256(f"{name}{reason}{message}".encode()).hexdigest()[:16]
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": meta("Event", f"{name}.{serial}", namespace, c.ago(minutes=first)),
        "involvedObject": {
            "kind": involved["kind"],
            "namespace": involved["metadata"].get("namespace"),
            "name": name,
            "uid": involved["metadata"]["uid"],
            "apiVersion": involved["apiVersion"],
        },
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "firstTimestamp": c.ago(minutes=first),
        "lastTimestamp": c.ago(minutes=last),
        "count": count,
        "type": type_,
        "reportingComponent": component,
        "reportingInstance": "",
    }


def claim(
    c: Cluster, namespace: str, name: str, *, storage_class: str, size: str, volume: str | None, labels: dict[str, str]
) -> Obj:
    status: Obj = {"phase": "Bound" if volume else "Pending"}
    if volume:
        status.update(accessModes=["ReadWriteOnce"], capacity={"storage": size})
    spec: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
        "storageClassName": storage_class,
        "volumeMode": "Filesystem",
    }
    if volume:
        spec["volumeName"] = volume
    return {
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "metadata": meta(
            "PersistentVolumeClaim",
            name,
            namespace,
            c.ago(days=20 if volume else 0.02),
            labels=labels,
            finalizers=["kubernetes.io/pvc-protection"],
        ),
        "spec": spec,
        "status": status,
    }


def volume(c: Cluster, bound: Obj, node_name: str) -> Obj:
    meta_ = bound["metadata"]
    return {
        "kind": "PersistentVolume",
        "apiVersion": "v1",
        "metadata": meta(
            "PersistentVolume",
            bound["spec"]["volumeName"],
            None,
            meta_["creationTimestamp"],
            annotations={"pv.kubernetes.io/provisioned-by": "ebs.csi.aws.com"},
        ),
        "spec": {
            "capacity": {"storage": bound["spec"]["resources"]["requests"]["storage"]},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": bound["spec"]["storageClassName"],
            "claimRef": {
                "kind": "PersistentVolumeClaim",
                "namespace": meta_["namespace"],
                "name": meta_["name"],
                "uid": meta_["uid"],
                "apiVersion": "v1",
            },
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": f"vol-0{meta_['uid'][:16]}", "fsType": "ext4"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "topology.ebs.csi.aws.com/zone", "operator": "In", "values": ["eu-west-1a"]}
                            ]
                        }
                    ]
                }
            },
        },
        "status": {"phase": "Bound"},
    }


def storage_class(c: Cluster, name: str, *, expandable: bool) -> Obj:
    return {
        "kind": "StorageClass",
        "apiVersion": "storage.k8s.io/v1",
        "metadata": meta(
            "StorageClass",
            name,
            None,
            c.ago(days=60),
            annotations={"storageclass.kubernetes.io/is-default-class": "true"},
        ),
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3"},
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": expandable,
    }


def service(c: Cluster, namespace: str, name: str, ports: list[tuple[str, int]]) -> Obj:
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": meta("Service", name, namespace, c.ago(days=40), labels={"app": name}),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": f"10.96.{len(name)}.{sum(map(ord, name)) % 250}",
            "selector": {"app": name},
            "ports": [{"name": p, "port": n, "targetPort": n, "protocol": "TCP"} for p, n in ports],
        },
        "status": {"loadBalancer": {}},
    }


def endpoint_slice(c: Cluster, svc: Obj, pods: list[Obj], ports: list[tuple[str, int]]) -> Obj:
    return {
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": meta(
            "EndpointSlice",
            f"{svc['metadata']['name']}-x7k2p",
            svc["metadata"]["namespace"],
            c.ago(days=40),
            labels={"kubernetes.io/service-name": svc["metadata"]["name"]},
            ownerReferences=[owner_ref({**svc, "apiVersion": "v1"})],
        ),
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [p["status"]["podIP"]],
                "conditions": {
                    "ready": p["status"]["phase"] == "Running"
                    and all(s["ready"] for s in p["status"]["containerStatuses"])
                },
                "nodeName": p["spec"]["nodeName"],
                "targetRef": {
                    "kind": "Pod",
                    "namespace": p["metadata"]["namespace"],
                    "name": p["metadata"]["name"],
                    "uid": p["metadata"]["uid"],
                },
            }
            for p in pods
        ],
        "ports": [{"name": n, "port": port, "protocol": "TCP"} for n, port in ports],
    }


# ---- the scenario ----------------------------------------------------------------------------


def build(now: datetime | None = None) -> Cluster:
    c = Cluster(now=now or datetime.now(UTC).replace(microsecond=0))
    add = c.objects.append
    for name in READY_NODES:
        add(node(c, name, ready=True))
    add(node(c, NOT_READY_NODE, ready=False))
    add(storage_class(c, "gp3", expandable=True))
    _crash_loop_after_rollout(c)
    _oom_killed(c)
    _image_not_found(c)
    _insufficient_cpu(c)
    _hpa_at_max(c)
    _claim_filling(c)
    _unbound_claim(c)
    _failed_job(c)
    _daemonset_quota(c)
    _pods_on_not_ready_node(c)
    _filesystems(c)
    events_on_not_ready_node(c)
    return c


def _crash_loop_after_rollout(c: Cluster) -> None:
    rollout = c.ago(minutes=20)
    dep = deployment(
        c,
        "shop",
        "checkout",
        replicas=2,
        available=0,
        revision=4,
        image="ghcr.io/acme/checkout:1.8.0",
        rolled_out=rollout,
        stuck=True,
    )
    new = replicaset(c, dep, "6f7c9d8b5", 4, "ghcr.io/acme/checkout:1.8.0", rollout, 2, 0)
    old = replicaset(c, dep, "5d8f7b9c4", 3, "ghcr.io/acme/checkout:1.7.2", c.ago(days=6), 0, 0)
    state = PodState(
        ready=False,
        waiting="CrashLoopBackOff",
        waiting_message="back-off 5m0s restarting failed container=checkout",
        last_terminated=("Error", 1),
        restarts=8,
    )
    pods = [pod(c, new, f"checkout-6f7c9d8b5-{s}", "worker-1", state, started=rollout) for s in ("2xq7w", "9kz4m")]
    svc = service(c, "shop", "checkout", [("http", 8080), ("metrics", 9090)])
    c.objects += [dep, new, old, *pods, svc, endpoint_slice(c, svc, pods, [("http", 8080), ("metrics", 9090)])]
    for p in pods:
        name = p["metadata"]["name"]
        c.objects.append(
            event(
                c,
                p,
                "BackOff",
                f"Back-off restarting failed container checkout in pod {name}_shop({p['metadata']['uid']})",
                count=84,
                first=19,
            )
        )
        c.logs[("shop", name, "checkout", True)] = (
            "2024-05-02T10:01:02Z INFO starting checkout 1.8.0\n"
            "2024-05-02T10:01:02Z INFO loading configuration from /etc/checkout/config.yaml\n"
            "2024-05-02T10:01:02Z ERROR config: required key PAYMENTS_GRPC_ADDR is not set\n"
            "panic: invalid configuration: PAYMENTS_GRPC_ADDR missing\n"
        )
    c.objects.append(
        event(
            c,
            dep,
            "ScalingReplicaSet",
            "Scaled up replica set checkout-6f7c9d8b5 to 2",
            first=20,
            last=20,
            component="deployment-controller",
            type_="Normal",
        )
    )


def _oom_killed(c: Cluster) -> None:
    dep = deployment(
        c,
        "shop",
        "cart",
        replicas=1,
        available=0,
        revision=2,
        image="ghcr.io/acme/cart:3.2.1",
        rolled_out=c.ago(days=5),
        memory="256Mi",
    )
    rs = replicaset(c, dep, "7b5d9c6f8", 2, "ghcr.io/acme/cart:3.2.1", c.ago(days=5), 1, 0)
    state = PodState(
        ready=False,
        waiting="CrashLoopBackOff",
        waiting_message="back-off 2m40s restarting failed container=cart",
        last_terminated=("OOMKilled", 137),
        restarts=5,
    )
    p = pod(c, rs, "cart-7b5d9c6f8-lq2vn", "worker-1", state, started=c.ago(hours=1))
    c.objects += [dep, rs, p]
    c.objects.append(
        event(
            c,
            p,
            "BackOff",
            f"Back-off restarting failed container cart in pod cart-7b5d9c6f8-lq2vn_shop({p['metadata']['uid']})",
            count=21,
            first=25,
        )
    )
    c.logs[("shop", "cart-7b5d9c6f8-lq2vn", "cart", True)] = (
        "2024-05-02T10:05:40Z INFO warming product cache: 120000 items\n2024-05-02T10:05:51Z INFO cache at 231MiB\n"
    )


def _image_not_found(c: Cluster) -> None:
    image = "registry.acme.io/shop/payments:2.14.1"
    dep = deployment(
        c,
        "shop",
        "payments",
        replicas=2,
        available=2,
        revision=7,
        image=image,
        rolled_out=c.ago(minutes=30),
        stuck=True,
    )
    new = replicaset(c, dep, "84c6d9f7b", 7, image, c.ago(minutes=30), 1, 0)
    old = replicaset(c, dep, "69b8c7d5f", 6, "registry.acme.io/shop/payments:2.14.0", c.ago(days=9), 2, 2)
    waiting = PodState(ready=False, waiting="ImagePullBackOff", waiting_message=f'Back-off pulling image "{image}"')
    broken = pod(c, new, "payments-84c6d9f7b-tw5rx", "worker-2", waiting, started=c.ago(minutes=30))
    healthy = [pod(c, old, f"payments-69b8c7d5f-{s}", "worker-2", PodState()) for s in ("m4n8p", "q7r2s")]
    c.objects += [dep, new, old, broken, *healthy]
    not_found = (
        f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image '
        f'"{image}": failed to resolve reference "{image}": {image}: not found'
    )
    c.objects += [
        event(c, broken, "Failed", not_found, count=7, first=30, last=5),
        event(c, broken, "Failed", "Error: ErrImagePull", count=7, first=30, last=5),
        event(c, broken, "Failed", "Error: ImagePullBackOff", count=120, first=30, last=1),
        event(c, broken, "BackOff", f'Back-off pulling image "{image}"', count=120, first=30, last=1),
    ]


def _insufficient_cpu(c: Cluster) -> None:
    dep = deployment(
        c,
        "shop",
        "search",
        replicas=3,
        available=1,
        revision=3,
        image="ghcr.io/acme/search:5.0.2",
        rolled_out=c.ago(days=2),
        cpu="2",
    )
    rs = replicaset(c, dep, "5c8d7f6b9", 3, "ghcr.io/acme/search:5.0.2", c.ago(days=2), 3, 1)
    message = (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, "
        "2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod."
    )
    running = pod(c, rs, "search-5c8d7f6b9-h2k9d", "worker-2", PodState(), started=c.ago(days=2))
    pending = [
        pod(
            c,
            rs,
            f"search-5c8d7f6b9-{s}",
            None,
            PodState(phase="Pending", ready=False, unschedulable=message),
            started=c.ago(minutes=30),
        )
        for s in ("b7wq4", "z5fmc")
    ]
    c.objects += [dep, rs, running, *pending]
    c.objects += [
        event(c, p, "FailedScheduling", message, count=9, first=30, component="default-scheduler") for p in pending
    ]


def _hpa_at_max(c: Cluster) -> None:
    dep = deployment(
        c,
        "shop",
        "frontend",
        replicas=5,
        available=5,
        revision=12,
        image="ghcr.io/acme/frontend:4.1.0",
        rolled_out=c.ago(days=1),
        cpu="500m",
    )
    rs = replicaset(c, dep, "7d9f8b6c4", 12, "ghcr.io/acme/frontend:4.1.0", c.ago(days=1), 5, 5)
    pods = [
        pod(c, rs, f"frontend-7d9f8b6c4-{s}", ("worker-1", "worker-2")[i % 2], PodState())
        for i, s in enumerate(("a1b2c", "d3e4f", "g5h6i", "j7k8l", "m9n0p"))
    ]
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v2",
        "metadata": meta("HorizontalPodAutoscaler", "frontend", "shop", c.ago(days=40)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "frontend"},
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
                }
            ],
        },
        "status": {
            "currentReplicas": 5,
            "desiredReplicas": 5,
            "lastScaleTime": c.ago(minutes=40),
            "currentMetrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": 92, "averageValue": "461m"}},
                }
            ],
            "conditions": [
                condition(
                    "AbleToScale",
                    "True",
                    c.ago(minutes=40),
                    "ReadyForNewScale",
                    "recommended size matches current size",
                ),
                condition(
                    "ScalingActive",
                    "True",
                    c.ago(days=40),
                    "ValidMetricFound",
                    "the HPA was able to successfully calculate a replica count from cpu resource "
                    "utilization (percentage of request)",
                ),
                condition(
                    "ScalingLimited",
                    "True",
                    c.ago(minutes=40),
                    "TooManyReplicas",
                    "the desired replica count is more than the maximum replica count",
                ),
            ],
        },
    }
    c.objects += [dep, rs, *pods, hpa, service(c, "shop", "frontend", [("http", 8080)])]


def _statefulset(c: Cluster, namespace: str, name: str, replicas: int, ready: int, image: str, storage: str) -> Obj:
    template = pod_template(name, image, "500m", "1Gi")
    return {
        "kind": "StatefulSet",
        "apiVersion": "apps/v1",
        "metadata": meta("StatefulSet", name, namespace, c.ago(days=60), generation=3, labels={"app": name}),
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": template,
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": storage,
                        "resources": {"requests": {"storage": "20Gi"}},
                    },
                }
            ],
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
        },
        "status": {
            "observedGeneration": 3,
            "replicas": replicas,
            "readyReplicas": ready,
            "currentReplicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": ready,
            "currentRevision": f"{name}-6b9c8d7f5",
            "updateRevision": f"{name}-6b9c8d7f5",
        },
    }


def _claim_filling(c: Cluster) -> None:
    sts = _statefulset(c, "shop", "orders-db", 1, 1, "postgres:16.2", "gp3")
    pvc = claim(
        c,
        "shop",
        "data-orders-db-0",
        storage_class="gp3",
        size="20Gi",
        volume="pvc-3f1c2a9e-0d4b-4c55-9a1e-7b2f8c6d5e41",
        labels={"app": "orders-db"},
    )
    p = pod(
        c,
        sts,
        "orders-db-0",
        "worker-1",
        PodState(claims=("data-orders-db-0",)),
        started=c.ago(days=12),
        labels={"statefulset.kubernetes.io/pod-name": "orders-db-0"},
    )
    c.objects += [sts, pvc, volume(c, pvc, "worker-1"), p]
    end = c.now.timestamp()
    # 9% free an hour ago, 2% free now: on the way to full within the hour.
    c.volumes.setdefault("worker-1", []).append(
        (
            "shop",
            "data-orders-db-0",
            FULL_CLAIM_CAPACITY,
            _falling(end, 0.09 * FULL_CLAIM_CAPACITY, 0.02 * FULL_CLAIM_CAPACITY),
        )
    )


def _unbound_claim(c: Cluster) -> None:
    # Recreated (orphaning its pods) with a claim template naming a class that does not
    # exist, then scaled to 2: postgres-0 keeps its old claim, postgres-1's never binds.
    sts = _statefulset(c, "data", "postgres", 2, 1, "postgres:16.2", "fast-ssd")
    bound = claim(
        c,
        "data",
        "data-postgres-0",
        storage_class="gp3",
        size="20Gi",
        volume="pvc-8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d",
        labels={"app": "postgres"},
    )
    unbound = claim(
        c, "data", "data-postgres-1", storage_class="fast-ssd", size="20Gi", volume=None, labels={"app": "postgres"}
    )
    running = pod(
        c,
        sts,
        "postgres-0",
        "worker-2",
        PodState(claims=("data-postgres-0",)),
        started=c.ago(days=12),
        labels={"statefulset.kubernetes.io/pod-name": "postgres-0"},
    )
    message = (
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes "
        "are available: 3 Preemption is not helpful for scheduling."
    )
    pending = pod(
        c,
        sts,
        "postgres-1",
        None,
        PodState(phase="Pending", ready=False, unschedulable=message, claims=("data-postgres-1",)),
        started=c.ago(minutes=30),
        labels={"statefulset.kubernetes.io/pod-name": "postgres-1"},
    )
    c.objects += [sts, bound, volume(c, bound, "worker-2"), unbound, running, pending]
    c.objects += [
        event(c, pending, "FailedScheduling", message, count=12, first=30, component="default-scheduler"),
        event(
            c,
            unbound,
            "ProvisioningFailed",
            'storageclass.storage.k8s.io "fast-ssd" not found',
            count=122,
            first=30,
            component="persistentvolume-controller",
        ),
    ]
    c.volumes.setdefault("worker-2", []).append(("data", "data-postgres-0", 20 * GiB, const(12 * GiB)))


def _failed_job(c: Cluster) -> None:
    cron = {
        "kind": "CronJob",
        "apiVersion": "batch/v1",
        "metadata": meta("CronJob", "nightly-report", "batch", c.ago(days=90)),
        "spec": {
            "schedule": "0 2 * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "template": pod_template("nightly-report", "ghcr.io/acme/report:0.9.3", "200m", "512Mi"),
                }
            },
        },
        "status": {"lastScheduleTime": c.ago(minutes=50), "lastSuccessfulTime": c.ago(days=1, minutes=50)},
    }
    template = pod_template("nightly-report", "ghcr.io/acme/report:0.9.3", "200m", "512Mi")
    template["spec"]["restartPolicy"] = "Never"
    job = {
        "kind": "Job",
        "apiVersion": "batch/v1",
        "metadata": meta(
            "Job",
            "nightly-report-28571520",
            "batch",
            c.ago(minutes=50),
            labels={"app": "nightly-report"},
            ownerReferences=[owner_ref(cron)],
        ),
        "spec": {"backoffLimit": 2, "completions": 1, "parallelism": 1, "template": template},
        "status": {
            "startTime": c.ago(minutes=50),
            "failed": 3,
            "conditions": [
                condition(
                    "Failed",
                    "True",
                    c.ago(minutes=44),
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                )
            ],
        },
    }
    c.objects += [cron, job]
    for i, s in enumerate(("4xk2m", "8vz7q", "p3d6w")):
        failed = pod(
            c,
            job,
            f"nightly-report-28571520-{s}",
            "worker-1",
            PodState(phase="Failed", ready=False, terminated=("Error", 1)),
            started=c.ago(minutes=50 - 2 * i),
            labels={"job-name": "nightly-report-28571520"},
        )
        c.objects.append(failed)
        c.logs[("batch", failed["metadata"]["name"], "nightly-report", False)] = (
            "2024-05-02T02:00:04Z INFO connecting to postgres.data.svc:5432\n"
            'psycopg2.OperationalError: connection to server at "postgres.data.svc" (10.96.8.40), port 5432 '
            "failed: FATAL:  remaining connection slots are reserved for non-replication superuser connections\n"
        )
    c.objects.append(
        event(
            c,
            job,
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
            first=44,
            last=44,
            component="job-controller",
        )
    )


def _daemonset_quota(c: Cluster) -> None:
    template = pod_template("fluent-bit", "fluent/fluent-bit:3.0.2", "100m", "512Mi")
    ds = {
        "kind": "DaemonSet",
        "apiVersion": "apps/v1",
        "metadata": meta(
            "DaemonSet", "fluent-bit", "logging", c.ago(days=60), generation=5, labels={"app": "fluent-bit"}
        ),
        "spec": {
            "selector": {"matchLabels": {"app": "fluent-bit"}},
            "template": template,
            "updateStrategy": {"type": "RollingUpdate"},
        },
        "status": {
            "currentNumberScheduled": 2,
            "desiredNumberScheduled": 3,
            "numberMisscheduled": 0,
            "numberReady": 1,
            "numberAvailable": 1,
            "numberUnavailable": 2,
            "updatedNumberScheduled": 2,
            "observedGeneration": 5,
        },
    }
    pods = [
        pod(c, ds, "fluent-bit-7tq9x", "worker-1", PodState(), started=c.ago(days=3)),
        pod(c, ds, "fluent-bit-k8xq2", NOT_READY_NODE, PodState(ready=False), started=c.ago(days=3)),
    ]
    message = (
        'Error creating: pods "fluent-bit-" is forbidden: exceeded quota: logging-quota, requested: '
        "limits.memory=512Mi, used: limits.memory=1Gi, limited: limits.memory=1Gi"
    )
    c.objects += [
        ds,
        *pods,
        event(c, ds, "FailedCreate", message, count=37, first=40, component="daemonset-controller"),
    ]


def _pods_on_not_ready_node(c: Cluster) -> None:
    dep = deployment(
        c,
        "shop",
        "recommendation",
        replicas=2,
        available=0,
        revision=5,
        image="ghcr.io/acme/recommendation:2.3.0",
        rolled_out=c.ago(days=4),
    )
    rs = replicaset(c, dep, "6d8b7c9f4", 5, "ghcr.io/acme/recommendation:2.3.0", c.ago(days=4), 2, 0)
    pods = [
        pod(c, rs, f"recommendation-6d8b7c9f4-{s}", NOT_READY_NODE, PodState(ready=False), started=c.ago(days=4))
        for s in ("r4t5y", "u6i7o")
    ]
    c.objects += [dep, rs, *pods]


def events_on_not_ready_node(c: Cluster) -> None:
    c.objects.append(
        event(
            c,
            c.find("Node", NOT_READY_NODE),
            "NodeNotReady",
            f"Node {NOT_READY_NODE} status is now: NodeNotReady",
            first=4,
            last=4,
            component="node-controller",
            type_="Normal",
        )
    )


def _filesystems(c: Cluster) -> None:
    end = c.now.timestamp()
    for name in READY_NODES:
        c.filesystems[name] = [("/dev/nvme0n1p1", "/", "ext4", 100 * GiB, const(61 * GiB))]
    # /var/log on worker-2: 12% free an hour ago, 2% now.
    c.filesystems["worker-2"].append(
        (
            "/dev/nvme1n1",
            "/var/log",
            "ext4",
            FILLING_FS_SIZE,
            _falling(end, 0.12 * FILLING_FS_SIZE, 0.02 * FILLING_FS_SIZE),
        )
    )


def _falling(end: float, start_value: float, end_value: float) -> Callable[[float], float]:
    start = end - HISTORY_SECONDS

    def at(t: float) -> float:
        share = min(1.0, max(0.0, (t - start) / HISTORY_SECONDS))
        return float(int(start_value + (end_value - start_value) * share))

    return at
