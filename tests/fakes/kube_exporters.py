"""What the real exporters expose for a `Cluster`: kube-state-metrics (v2 names and label
sets), the kubelet's volume stats and node-exporter's filesystem series, each derived
from the same objects the fake API serves, so the alerts and the API agree.

`exposition(series, t)` is the text format Prometheus scrapes "now";
`openmetrics(...)` the backfill history for `promtool tsdb create-blocks-from openmetrics`,
with the labels the scrape adds (the target's) already on, so scraped and backfilled
samples are one series.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from tests.fakes.kube_cluster import HISTORY_SECONDS, Cluster, Obj, Series, const

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
UNITS = {"cpu": "core", "memory": "byte"}


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def quantity(text: str) -> float:
    """A Kubernetes quantity as a number ("250m" -> 0.25, "256Mi" -> 268435456)."""
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", text)
    assert match, text
    number, suffix = float(match.group(1)), match.group(2)
    factors = {"": 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    return number * factors[suffix]


def _s(metric: str, number: float, /, **labels: str) -> Series:
    return Series(metric, labels, const(number))


def _status_values(name: str, current: str, values: Iterable[str], label: str, **labels: str) -> Iterator[Series]:
    for value in values:
        yield _s(name, 1.0 if value == current else 0.0, **{**labels, label: value})


def _condition_series(name: str, conditions: list[Obj], **labels: str) -> Iterator[Series]:
    for cond in conditions:
        for status in ("true", "false", "unknown"):
            yield _s(
                name, 1.0 if cond["status"].lower() == status else 0.0, **labels, condition=cond["type"], status=status
            )


# ---- kube-state-metrics -----------------------------------------------------------------------


def kube_state_metrics(cluster: Cluster) -> list[Series]:
    found: list[Series] = []
    for obj in cluster.objects:
        derive = _KSM.get(obj["kind"])
        if derive is not None:
            found += derive(obj)
    return found


def _node(obj: Obj) -> Iterator[Series]:
    name, status = obj["metadata"]["name"], obj["status"]
    info = status["nodeInfo"]
    yield _s(
        "kube_node_info",
        1,
        node=name,
        internal_ip=status["addresses"][0]["address"],
        kubelet_version=info["kubeletVersion"],
        container_runtime_version=info["containerRuntimeVersion"],
        os_image=info["osImage"],
        kernel_version=info["kernelVersion"],
        provider_id=obj["spec"]["providerID"],
        pod_cidr=obj["spec"]["podCIDR"],
        system_uuid="",
    )
    yield _s("kube_node_spec_unschedulable", 1 if obj["spec"].get("unschedulable") else 0, node=name)
    yield from _condition_series("kube_node_status_condition", status["conditions"], node=name)
    for taint in obj["spec"].get("taints") or []:
        yield _s(
            "kube_node_spec_taint", 1, node=name, key=taint["key"], value=taint.get("value", ""), effect=taint["effect"]
        )
    for resource in ("cpu", "memory", "pods"):
        unit = UNITS.get(resource, "integer")
        yield _s(
            "kube_node_status_allocatable",
            quantity(status["allocatable"][resource]),
            node=name,
            resource=resource,
            unit=unit,
        )
        yield _s(
            "kube_node_status_capacity", quantity(status["capacity"][resource]), node=name, resource=resource, unit=unit
        )


def _owner(obj: Obj) -> tuple[str, str]:
    refs = obj["metadata"].get("ownerReferences") or []
    return (refs[0]["kind"], refs[0]["name"]) if refs else ("<none>", "<none>")


def _pod(obj: Obj) -> Iterator[Series]:
    meta, spec, status = obj["metadata"], obj["spec"], obj["status"]
    ids = {"namespace": meta["namespace"], "pod": meta["name"], "uid": meta["uid"]}
    owner_kind, owner_name = _owner(obj)
    yield _s(
        "kube_pod_info",
        1,
        **ids,
        node=spec.get("nodeName", ""),
        host_ip=status.get("hostIP", ""),
        pod_ip=status.get("podIP", ""),
        created_by_kind=owner_kind,
        created_by_name=owner_name,
        priority_class="",
        host_network="false",
    )
    yield _s("kube_pod_owner", 1, **ids, owner_kind=owner_kind, owner_name=owner_name, owner_is_controller="true")
    yield _s("kube_pod_created", _time(meta["creationTimestamp"]), **ids)
    yield from _status_values("kube_pod_status_phase", status["phase"], PHASES, "phase", **ids)
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
    if ready is not None:
        yield from _status_values(
            "kube_pod_status_ready", ready["status"].lower(), ("true", "false", "unknown"), "condition", **ids
        )
    scheduled = next(c for c in status["conditions"] if c["type"] == "PodScheduled")
    yield from _status_values(
        "kube_pod_status_scheduled", scheduled["status"].lower(), ("true", "false", "unknown"), "condition", **ids
    )
    if scheduled["status"] == "False":
        yield _s("kube_pod_status_unschedulable", 1, **ids)
    for container in spec["containers"]:
        c_ids = {**ids, "container": container["name"]}
        yield _s(
            "kube_pod_container_info",
            1,
            **c_ids,
            image=container["image"],
            image_spec=container["image"],
            image_id="",
            container_id="",
        )
        for kind in ("requests", "limits"):
            for resource, amount in container["resources"].get(kind, {}).items():
                yield _s(
                    f"kube_pod_container_resource_{kind}",
                    quantity(amount),
                    **c_ids,
                    node=spec.get("nodeName", ""),
                    resource=resource,
                    unit=UNITS[resource],
                )
    for cs in status.get("containerStatuses", []):
        c_ids = {**ids, "container": cs["name"]}
        yield _s("kube_pod_container_status_restarts_total", cs["restartCount"], **c_ids)
        yield _s("kube_pod_container_status_ready", 1 if cs["ready"] else 0, **c_ids)
        for state in ("running", "waiting", "terminated"):
            yield _s(f"kube_pod_container_status_{state}", 1 if state in cs["state"] else 0, **c_ids)
        if "waiting" in cs["state"]:
            yield _s("kube_pod_container_status_waiting_reason", 1, **c_ids, reason=cs["state"]["waiting"]["reason"])
        if "terminated" in cs["state"]:
            yield _s(
                "kube_pod_container_status_terminated_reason", 1, **c_ids, reason=cs["state"]["terminated"]["reason"]
            )
        last = cs.get("lastState", {}).get("terminated")
        if last is not None:
            yield _s("kube_pod_container_status_last_terminated_reason", 1, **c_ids, reason=last["reason"])
            yield _s("kube_pod_container_status_last_terminated_exitcode", last["exitCode"], **c_ids)
    for vol in spec.get("volumes", []):
        if "persistentVolumeClaim" in vol:
            yield _s(
                "kube_pod_spec_volumes_persistentvolumeclaims_info",
                1,
                **ids,
                volume=vol["name"],
                persistentvolumeclaim=vol["persistentVolumeClaim"]["claimName"],
            )


def _deployment(obj: Obj) -> Iterator[Series]:
    meta, spec, status = obj["metadata"], obj["spec"], obj["status"]
    ids = {"namespace": meta["namespace"], "deployment": meta["name"]}
    yield _s("kube_deployment_created", _time(meta["creationTimestamp"]), **ids)
    yield _s("kube_deployment_spec_replicas", spec["replicas"], **ids)
    yield _s("kube_deployment_metadata_generation", meta["generation"], **ids)
    yield _s("kube_deployment_status_observed_generation", status["observedGeneration"], **ids)
    for field, name in (
        ("replicas", "replicas"),
        ("updatedReplicas", "replicas_updated"),
        ("readyReplicas", "replicas_ready"),
        ("availableReplicas", "replicas_available"),
        ("unavailableReplicas", "replicas_unavailable"),
    ):
        yield _s(f"kube_deployment_status_{name}", status.get(field, 0), **ids)
    for cond in status["conditions"]:
        for value in ("true", "false", "unknown"):
            yield _s(
                "kube_deployment_status_condition",
                1 if cond["status"].lower() == value else 0,
                **ids,
                condition=cond["type"],
                status=value,
                reason=cond.get("reason", ""),
            )


def _replicaset(obj: Obj) -> Iterator[Series]:
    meta, spec, status = obj["metadata"], obj["spec"], obj["status"]
    ids = {"namespace": meta["namespace"], "replicaset": meta["name"]}
    owner_kind, owner_name = _owner(obj)
    yield _s(
        "kube_replicaset_owner", 1, **ids, owner_kind=owner_kind, owner_name=owner_name, owner_is_controller="true"
    )
    yield _s("kube_replicaset_spec_replicas", spec["replicas"], **ids)
    yield _s("kube_replicaset_status_ready_replicas", status.get("readyReplicas", 0), **ids)


def _statefulset(obj: Obj) -> Iterator[Series]:
    meta, spec, status = obj["metadata"], obj["spec"], obj["status"]
    ids = {"namespace": meta["namespace"], "statefulset": meta["name"]}
    yield _s("kube_statefulset_replicas", spec["replicas"], **ids)
    yield _s("kube_statefulset_metadata_generation", meta["generation"], **ids)
    yield _s("kube_statefulset_status_observed_generation", status["observedGeneration"], **ids)
    for field, name in (
        ("replicas", "replicas"),
        ("readyReplicas", "replicas_ready"),
        ("currentReplicas", "replicas_current"),
        ("updatedReplicas", "replicas_updated"),
        ("availableReplicas", "replicas_available"),
    ):
        yield _s(f"kube_statefulset_status_{name}", status.get(field, 0), **ids)
    yield _s("kube_statefulset_status_current_revision", 1, **ids, revision=status["currentRevision"])
    yield _s("kube_statefulset_status_update_revision", 1, **ids, revision=status["updateRevision"])


def _daemonset(obj: Obj) -> Iterator[Series]:
    meta, status = obj["metadata"], obj["status"]
    ids = {"namespace": meta["namespace"], "daemonset": meta["name"]}
    for field, name in (
        ("currentNumberScheduled", "current_number_scheduled"),
        ("desiredNumberScheduled", "desired_number_scheduled"),
        ("numberMisscheduled", "number_misscheduled"),
        ("numberReady", "number_ready"),
        ("numberAvailable", "number_available"),
        ("numberUnavailable", "number_unavailable"),
        ("updatedNumberScheduled", "updated_number_scheduled"),
        ("observedGeneration", "observed_generation"),
    ):
        yield _s(f"kube_daemonset_status_{name}", status.get(field, 0), **ids)
    yield _s("kube_daemonset_metadata_generation", meta["generation"], **ids)


def _job(obj: Obj) -> Iterator[Series]:
    meta, spec, status = obj["metadata"], obj["spec"], obj["status"]
    ids = {"namespace": meta["namespace"], "job_name": meta["name"]}
    owner_kind, owner_name = _owner(obj)
    yield _s("kube_job_owner", 1, **ids, owner_kind=owner_kind, owner_name=owner_name, owner_is_controller="true")
    yield _s("kube_job_spec_completions", spec["completions"], **ids)
    yield _s("kube_job_spec_parallelism", spec["parallelism"], **ids)
    yield _s("kube_job_status_start_time", _time(status["startTime"]), **ids)
    yield _s("kube_job_status_active", status.get("active", 0), **ids)
    yield _s(
        "kube_job_status_failed",
        status.get("failed", 0),
        **ids,
        reason=next((c["reason"] for c in status["conditions"] if c["type"] == "Failed"), ""),
    )
    yield _s("kube_job_status_succeeded", status.get("succeeded", 0), **ids)
    failed = next((c for c in status["conditions"] if c["type"] == "Failed"), None)
    for value in ("true", "false", "unknown"):
        current = failed["status"].lower() if failed else "false"
        yield _s("kube_job_failed", 1 if current == value else 0, **ids, condition=value)
    yield _s("kube_job_complete", 0, **ids, condition="true")


def _cronjob(obj: Obj) -> Iterator[Series]:
    meta, status = obj["metadata"], obj["status"]
    ids = {"namespace": meta["namespace"], "cronjob": meta["name"]}
    yield _s(
        "kube_cronjob_info",
        1,
        **ids,
        schedule=obj["spec"]["schedule"],
        concurrency_policy=obj["spec"]["concurrencyPolicy"],
    )
    yield _s("kube_cronjob_status_last_schedule_time", _time(status["lastScheduleTime"]), **ids)
    yield _s("kube_cronjob_status_last_successful_time", _time(status["lastSuccessfulTime"]), **ids)
    yield _s("kube_cronjob_status_active", 0, **ids)


def _hpa(obj: Obj) -> Iterator[Series]:
    meta, spec, status = obj["metadata"], obj["spec"], obj["status"]
    ids = {"namespace": meta["namespace"], "horizontalpodautoscaler": meta["name"]}
    target = spec["scaleTargetRef"]
    yield _s(
        "kube_horizontalpodautoscaler_info",
        1,
        **ids,
        scaletargetref_api_version=target["apiVersion"],
        scaletargetref_kind=target["kind"],
        scaletargetref_name=target["name"],
    )
    yield _s("kube_horizontalpodautoscaler_spec_min_replicas", spec["minReplicas"], **ids)
    yield _s("kube_horizontalpodautoscaler_spec_max_replicas", spec["maxReplicas"], **ids)
    yield _s("kube_horizontalpodautoscaler_status_current_replicas", status["currentReplicas"], **ids)
    yield _s("kube_horizontalpodautoscaler_status_desired_replicas", status["desiredReplicas"], **ids)
    for metric in spec["metrics"]:
        resource = metric["resource"]
        yield _s(
            "kube_horizontalpodautoscaler_spec_target_metric",
            resource["target"]["averageUtilization"],
            **ids,
            metric_name=resource["name"],
            metric_target_type="utilization",
        )
    for current in status["currentMetrics"]:
        resource = current["resource"]
        yield _s(
            "kube_horizontalpodautoscaler_status_target_metric",
            resource["current"]["averageUtilization"],
            **ids,
            metric_name=resource["name"],
            metric_target_type="utilization",
        )
    yield from _condition_series("kube_horizontalpodautoscaler_status_condition", status["conditions"], **ids)


def _pvc(obj: Obj) -> Iterator[Series]:
    meta, spec, status = obj["metadata"], obj["spec"], obj["status"]
    ids = {"namespace": meta["namespace"], "persistentvolumeclaim": meta["name"]}
    yield _s(
        "kube_persistentvolumeclaim_info",
        1,
        **ids,
        storageclass=spec["storageClassName"],
        volumename=spec.get("volumeName", ""),
    )
    yield from _status_values(
        "kube_persistentvolumeclaim_status_phase", status["phase"], ("Lost", "Bound", "Pending"), "phase", **ids
    )
    for mode in spec["accessModes"]:
        yield _s("kube_persistentvolumeclaim_access_mode", 1, **ids, access_mode=mode)
    yield _s(
        "kube_persistentvolumeclaim_resource_requests_storage_bytes",
        quantity(spec["resources"]["requests"]["storage"]),
        **ids,
    )
    yield _s(
        "kube_persistentvolumeclaim_labels",
        1,
        **ids,
        **{f"label_{k}": v for k, v in (meta.get("labels") or {}).items()},
    )


def _pv(obj: Obj) -> Iterator[Series]:
    meta, spec = obj["metadata"], obj["spec"]
    ids = {"persistentvolume": meta["name"]}
    yield _s(
        "kube_persistentvolume_info",
        1,
        **ids,
        storageclass=spec["storageClassName"],
        csi_driver=spec["csi"]["driver"],
        csi_volume_handle=spec["csi"]["volumeHandle"],
    )
    yield from _status_values(
        "kube_persistentvolume_status_phase",
        obj["status"]["phase"],
        ("Pending", "Available", "Bound", "Released", "Failed"),
        "phase",
        **ids,
    )
    yield _s("kube_persistentvolume_capacity_bytes", quantity(spec["capacity"]["storage"]), **ids)
    claim = spec["claimRef"]
    yield _s("kube_persistentvolume_claim_ref", 1, **ids, claim_namespace=claim["namespace"], name=claim["name"])


def _service(obj: Obj) -> Iterator[Series]:
    meta = obj["metadata"]
    yield _s(
        "kube_service_info",
        1,
        namespace=meta["namespace"],
        service=meta["name"],
        cluster_ip=obj["spec"]["clusterIP"],
        external_name="",
        load_balancer_ip="",
    )


_KSM: Mapping[str, Any] = {
    "Node": _node,
    "Pod": _pod,
    "Deployment": _deployment,
    "ReplicaSet": _replicaset,
    "StatefulSet": _statefulset,
    "DaemonSet": _daemonset,
    "Job": _job,
    "CronJob": _cronjob,
    "HorizontalPodAutoscaler": _hpa,
    "PersistentVolumeClaim": _pvc,
    "PersistentVolume": _pv,
    "Service": _service,
}


# ---- kubelet and node-exporter ---------------------------------------------------------------


def kubelet_volume_stats(cluster: Cluster, node: str) -> list[Series]:
    found: list[Series] = []
    for namespace, claim, capacity, available in cluster.volumes.get(node, []):
        ids = {"namespace": namespace, "persistentvolumeclaim": claim}
        found += [
            Series("kubelet_volume_stats_capacity_bytes", ids, const(capacity)),
            Series("kubelet_volume_stats_available_bytes", ids, available),
            Series("kubelet_volume_stats_used_bytes", ids, _used(capacity, available)),
            Series("kubelet_volume_stats_inodes", ids, const(1310720)),
            Series("kubelet_volume_stats_inodes_free", ids, const(1300000)),
            Series("kubelet_volume_stats_inodes_used", ids, const(10720)),
        ]
    return found


def _used(capacity: float, available: Callable[[float], float]) -> Callable[[float], float]:
    return lambda t: capacity - available(t)


def node_filesystems(cluster: Cluster, node: str) -> list[Series]:
    found: list[Series] = []
    for device, mountpoint, fstype, size, available in cluster.filesystems.get(node, []):
        ids = {"device": device, "mountpoint": mountpoint, "fstype": fstype}
        found += [
            Series("node_filesystem_size_bytes", ids, const(size)),
            Series("node_filesystem_avail_bytes", ids, available),
            Series("node_filesystem_free_bytes", ids, available),
            Series("node_filesystem_readonly", ids, const(0)),
            Series("node_filesystem_files", ids, const(3276800)),
            Series("node_filesystem_files_free", ids, const(3200000)),
        ]
    return found


# ---- exposition -------------------------------------------------------------------------------


def _label_text(labels: Mapping[str, str]) -> str:
    def escape(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{k}="{escape(v)}"' for k, v in sorted(labels.items()))


def exposition(series: Iterable[Series], t: float) -> str:
    """The Prometheus text format, untyped, as scraped at `t`."""
    return "".join(f"{s.name}{{{_label_text(s.labels)}}} {s.value(t)}\n" for s in series)


def scraped_labels(exposed: Mapping[str, str], target: Mapping[str, str], honor_labels: bool) -> dict[str, str]:
    """The labels a scrape stores: the target's added, conflicts as Prometheus resolves them."""
    if honor_labels:
        return {**target, **exposed}
    stored = dict(exposed)
    for key, value in target.items():
        if key in stored:
            stored[f"exported_{key}"] = stored.pop(key)
        stored[key] = value
    return stored


def openmetrics(targets: Iterable[tuple[Iterable[Series], Mapping[str, str], bool]], end: float, step: float) -> str:
    """History for every series of every (series, target labels, honor_labels), from
    HISTORY_SECONDS before `end` up to it, grouped by metric name as OpenMetrics wants."""
    families: dict[str, list[str]] = {}
    times = [end - HISTORY_SECONDS + i * step for i in range(int(HISTORY_SECONDS // step) + 1)]
    for series, target, honor in targets:
        for s in series:
            labels = _label_text(scraped_labels(s.labels, target, honor))
            lines = families.setdefault(s.name, [])
            lines += [f"{s.name}{{{labels}}} {s.value(t)} {int(t)}\n" for t in times]
    text = []
    for name in sorted(families):
        text.append(f"# TYPE {name} gauge\n")
        text += families[name]
    return "".join(text) + "# EOF\n"
