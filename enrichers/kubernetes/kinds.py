"""Facts about the kinds beyond pods and workloads: a PersistentVolumeClaim with its class
and mounting pods, a HorizontalPodAutoscaler, a Job, a CronJob, a node's capacity against
what its pods request, why a workload's missing pods do not run, and an image the registry
refused. Pure functions over the API's JSON, like enrichers.kubernetes.facts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from enrichers.kubernetes.facts import (
    EventFacts,
    Json,
    OwnerRef,
    PodFacts,
    _int,
    _list,
    _map,
    _str,
    ago,
    controller_of,
    iso,
)
from enrichers.kubernetes.logs_redact import clean_text
from enrichers.times import parse_time

STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
MAX_REASONS = 5  # missing pods explained, one line each

# ---- quantities ---------------------------------------------------------------------------

_QUANTITY = re.compile(r"^([+-]?\d+(?:\.\d+)?)(?:[eE]([+-]?\d+))?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_SCALE = {
    None: 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def quantity(text: object) -> float | None:
    """A Kubernetes resource quantity ("250m", "1.5Gi", "1e3") as a number; None if not one."""
    match = _QUANTITY.match(str(text).strip()) if isinstance(text, str | int | float) else None
    if match is None:
        return None
    number, exponent, suffix = match.groups()
    return float(number) * (10.0 ** int(exponent) if exponent else 1.0) * _SCALE[suffix]


def show_quantity(resource: str, value: float) -> str:
    """CPU in cores or millicores, memory and storage in Gi/Mi, counts as integers."""
    if resource == "cpu":
        return f"{value:g}" if value >= 1 and value == int(value) else f"{round(value * 1000)}m"
    if resource in ("memory", "storage", "ephemeral-storage"):
        for suffix, size in (("Gi", 2.0**30), ("Mi", 2.0**20), ("Ki", 2.0**10)):
            if value >= size:
                return f"{value / size:.3g}{suffix}"
        return f"{value:g}"
    return f"{value:g}"


# ---- nodes: taints, allocatable and what the pods on it request ----------------------------

CAPACITY_RESOURCES = ("cpu", "memory", "pods")


def requested_on_node(pods: Iterable[Json]) -> dict[str, str]:
    """What the node's running and pending pods request, as the scheduler counts it: the
    sum over containers, or the largest init container if that is more."""
    totals = {"cpu": 0.0, "memory": 0.0}
    count = 0
    for pod in pods:
        if _str(_map(pod, "status"), "phase") in ("Succeeded", "Failed"):
            continue  # terminated pods hold no resources
        count += 1
        spec = _map(pod, "spec")
        for resource in totals:
            regular = sum(_request(c, resource) for c in _list(spec, "containers"))
            init = max((_request(c, resource) for c in _list(spec, "initContainers")), default=0.0)
            totals[resource] += max(regular, init)
    shown = {resource: show_quantity(resource, value) for resource, value in totals.items()}
    return {**shown, "pods": str(count)}


def _request(container: Json, resource: str) -> float:
    return quantity(_map(_map(container, "resources"), "requests").get(resource)) or 0.0


def capacity_line(allocatable: Mapping[str, str], requested: Mapping[str, str]) -> str | None:
    """'requested: cpu 3500m of 4 (88%), memory 12Gi of 15.5Gi (77%), pods 23 of 110'."""
    parts = []
    for resource in CAPACITY_RESOURCES:
        have, want = quantity(allocatable.get(resource)), quantity(requested.get(resource))
        if have is None or want is None:
            continue
        share = f" ({want / have:.0%})" if have > 0 else ""
        parts.append(f"{resource} {requested[resource]} of {allocatable[resource]}{share}")
    return "requested: " + ", ".join(parts) if parts else None


# ---- PersistentVolumeClaims -------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimFacts:
    name: str
    namespace: str
    exists: bool
    phase: str | None = None  # Pending | Bound | Lost
    volume: str | None = None
    storage_class: str | None = None
    allow_volume_expansion: bool | None = None  # None when the class could not be read
    requested: str | None = None  # spec.resources.requests.storage
    capacity: str | None = None  # status.capacity.storage, what the volume has
    access_modes: tuple[str, ...] = ()
    resizing: str | None = None  # a Resizing / FileSystemResizePending condition
    mounted_by: tuple[str, ...] = ()  # pods whose volumes name the claim
    nodes: tuple[str, ...] = ()  # where those pods run

    @property
    def expandable(self) -> bool:
        return self.exists and self.phase == "Bound" and self.allow_volume_expansion is True

    def verdict(self) -> str:
        if not self.exists:
            return f"PersistentVolumeClaim {self.name}: no longer exists"
        parts = [self.phase or "Unknown"]
        if self.volume:
            parts[0] += f" to {self.volume}"
        size = self.capacity or self.requested
        if size:
            asked = f" (requested {self.requested})" if self.requested and self.requested != size else ""
            parts.append(f"{size}{asked}")
        if self.storage_class:
            expansion = {True: "expandable", False: "not expandable", None: "expansion unknown"}
            parts.append(f"class {self.storage_class} ({expansion[self.allow_volume_expansion]})")
        else:
            parts.append("no storage class")
        if self.resizing:
            parts.append(self.resizing)
        return f"PersistentVolumeClaim {self.name}: {', '.join(parts)}"

    def mount_line(self) -> str:
        if not self.mounted_by:
            return "mounted by: no pod"
        where = f" on node {', '.join(self.nodes)}" if self.nodes else ""
        return f"mounted by: {', '.join(self.mounted_by)}{where}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "exists": self.exists,
            "phase": self.phase,
            "volume": self.volume,
            "storage_class": self.storage_class,
            "allow_volume_expansion": self.allow_volume_expansion,
            "expandable": self.expandable,
            "requested": self.requested,
            "capacity": self.capacity,
            "access_modes": list(self.access_modes),
            "resizing": self.resizing,
            "mounted_by": list(self.mounted_by),
            "nodes": list(self.nodes),
        }


def storage_class_of(claim: Json) -> str | None:
    annotations = _map(_map(claim, "metadata"), "annotations")
    return _str(_map(claim, "spec"), "storageClassName") or _str(annotations, STORAGE_CLASS_ANNOTATION)


def claims_of_pod(pod: Json) -> tuple[str, ...]:
    volumes = _list(_map(pod, "spec"), "volumes")
    return tuple(n for v in volumes if (n := _str(_map(v, "persistentVolumeClaim"), "claimName")))


def claim_bound(claim: Json | None) -> bool:
    """Whether a listed claim is bound to a volume (None: not listed, so not bound)."""
    return claim is not None and _str(_map(claim, "status"), "phase") == "Bound"


def claim_facts(claim: Json, storage_class: Json | None, pods: Sequence[Json]) -> ClaimFacts:
    metadata, spec, status = _map(claim, "metadata"), _map(claim, "spec"), _map(claim, "status")
    name = _str(metadata, "name") or "?"
    mounting = [p for p in pods if name in claims_of_pod(p)]
    resizing = next(
        (
            f"{kind}" + (f": {clean_text(msg, 120)}" if (msg := _str(c, "message")) else "")
            for c in _list(status, "conditions")
            if (kind := _str(c, "type")) in ("Resizing", "FileSystemResizePending") and _str(c, "status") == "True"
        ),
        None,
    )
    expansion = storage_class.get("allowVolumeExpansion") if storage_class is not None else None
    return ClaimFacts(
        name=name,
        namespace=_str(metadata, "namespace") or "?",
        exists=True,
        phase=_str(status, "phase"),
        volume=_str(spec, "volumeName"),
        storage_class=storage_class_of(claim),
        # A class without the field does not allow expansion; an unread class is unknown.
        allow_volume_expansion=None if storage_class is None else expansion is True,
        requested=_storage(_map(_map(spec, "resources"), "requests")),
        capacity=_storage(_map(status, "capacity")),
        access_modes=tuple(m for m in spec.get("accessModes") or () if isinstance(m, str)),
        resizing=resizing,
        mounted_by=tuple(_str(_map(p, "metadata"), "name") or "?" for p in mounting),
        nodes=tuple(dict.fromkeys(n for p in mounting if (n := _str(_map(p, "spec"), "nodeName")))),
    )


def _storage(resources: Json) -> str | None:
    value = resources.get("storage")
    return str(value) if isinstance(value, str | int) else None


def gone_claim(namespace: str, name: str) -> ClaimFacts:
    return ClaimFacts(name=name, namespace=namespace, exists=False)


@dataclass(frozen=True)
class VolumeFacts:
    """A PersistentVolume: its phase, class, size and the claim it is bound to."""

    name: str
    exists: bool
    phase: str | None = None  # Available | Bound | Released | Failed
    reason: str | None = None
    storage_class: str | None = None
    capacity: str | None = None
    claim: str | None = None  # namespace/name

    def verdict(self) -> str:
        if not self.exists:
            return f"PersistentVolume {self.name}: no longer exists"
        text = f"PersistentVolume {self.name}: {self.phase or 'Unknown'}"
        if self.reason:
            text += f" ({self.reason})"
        if self.claim:
            text += f", claimed by {self.claim}"
        if self.capacity:
            text += f", {self.capacity}"
        return text + (f", class {self.storage_class}" if self.storage_class else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "exists": self.exists,
            "phase": self.phase,
            "reason": self.reason,
            "storage_class": self.storage_class,
            "capacity": self.capacity,
            "claim": self.claim,
        }


def volume_facts(volume: Json) -> VolumeFacts:
    spec, status = _map(volume, "spec"), _map(volume, "status")
    claim = _map(spec, "claimRef")
    claim_name, claim_namespace = _str(claim, "name"), _str(claim, "namespace")
    return VolumeFacts(
        name=_str(_map(volume, "metadata"), "name") or "?",
        exists=True,
        phase=_str(status, "phase"),
        reason=_str(status, "reason") or _str(status, "message"),
        storage_class=_str(spec, "storageClassName"),
        capacity=_storage(_map(spec, "capacity")),
        claim=f"{claim_namespace}/{claim_name}" if claim_name and claim_namespace else None,
    )


def gone_volume(name: str) -> VolumeFacts:
    return VolumeFacts(name=name, exists=False)


# ---- HorizontalPodAutoscalers (autoscaling/v2) -----------------------------------------------


@dataclass(frozen=True)
class MetricFacts:
    name: str  # "cpu", "memory", or the custom metric's name
    current: str | None  # "95%", "512Mi", "120"; None while the HPA cannot read it
    target: str | None

    def describe(self) -> str:
        return f"{self.name} {self.current or 'unknown'} (target {self.target or '?'})"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "current": self.current, "target": self.target}


@dataclass(frozen=True)
class HpaFacts:
    name: str
    namespace: str
    exists: bool
    target: OwnerRef | None = None  # scaleTargetRef
    min_replicas: int | None = None
    max_replicas: int | None = None
    current_replicas: int | None = None
    desired_replicas: int | None = None
    metrics: tuple[MetricFacts, ...] = ()
    scaling_limited: str | None = None  # "TooManyReplicas: the desired replica count is more than..."
    problems: tuple[str, ...] = ()  # AbleToScale / ScalingActive not True, with why
    last_scale_time: datetime | None = None

    @property
    def at_max(self) -> bool:
        top = self.max_replicas
        replicas = max(self.current_replicas or 0, self.desired_replicas or 0)
        return self.exists and top is not None and replicas >= top

    def verdict(self) -> str:
        if not self.exists:
            return f"HorizontalPodAutoscaler {self.name}: no longer exists"
        limits = f"desired {_n(self.desired_replicas)}, min {_n(self.min_replicas)}, max {_n(self.max_replicas)}"
        parts = [f"{_n(self.current_replicas)} replicas ({limits})"]
        if self.at_max:
            parts[0] += ", at maximum"
        parts += [m.describe() for m in self.metrics]
        if self.scaling_limited:
            parts.append(f"ScalingLimited: {self.scaling_limited}")
        parts += list(self.problems)
        return f"HorizontalPodAutoscaler {self.name}: {'; '.join(parts)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "exists": self.exists,
            "target": self.target.to_json() if self.target else None,
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "current_replicas": self.current_replicas,
            "desired_replicas": self.desired_replicas,
            "at_max": self.at_max,
            "metrics": [m.to_json() for m in self.metrics],
            "scaling_limited": self.scaling_limited,
            "problems": list(self.problems),
            "last_scale_time": iso(self.last_scale_time),
        }


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)


def _metric_key(metric: Json) -> tuple[str, str] | None:
    """(type, name) of one MetricSpec or MetricStatus, e.g. ("Resource", "cpu")."""
    kind = _str(metric, "type")
    if kind is None:
        return None
    block = _map(metric, kind[0].lower() + kind[1:])  # Resource -> resource, ...
    name = _str(block, "name") or _str(_map(block, "metric"), "name")
    return (kind, name) if name else None


def _metric_value(value: Json) -> str | None:
    utilization = _int(value, "averageUtilization")
    if utilization is not None:
        return f"{utilization}%"
    for key in ("averageValue", "value"):
        if isinstance(value.get(key), str | int):
            return str(value[key])
    return None


def _metric_block(metric: Json) -> Json:
    kind = _str(metric, "type") or ""
    return _map(metric, kind[:1].lower() + kind[1:]) if kind else {}


def hpa_facts(hpa: Json) -> HpaFacts:
    metadata, spec, status = _map(hpa, "metadata"), _map(hpa, "spec"), _map(hpa, "status")
    current = {key: m for m in _list(status, "currentMetrics") if (key := _metric_key(m))}
    metrics = []
    for metric in _list(spec, "metrics"):
        key = _metric_key(metric)
        if key is None:
            continue
        now = current.get(key)
        metrics.append(
            MetricFacts(
                name=key[1],
                current=_metric_value(_map(_metric_block(now), "current")) if now is not None else None,
                target=_metric_value(_map(_metric_block(metric), "target")),
            )
        )
    scaling_limited, problems = None, []
    for condition in _list(status, "conditions"):
        kind, state = _str(condition, "type"), _str(condition, "status")
        why = ": ".join(t for t in (_str(condition, "reason"), _str(condition, "message")) if t)
        if kind == "ScalingLimited" and state == "True":
            scaling_limited = clean_text(why, 200) or "True"
        elif kind in ("AbleToScale", "ScalingActive") and state != "True":
            problems.append(f"{kind}={state}" + (f": {clean_text(why, 200)}" if why else ""))
    ref = _map(spec, "scaleTargetRef")
    target_kind, target_name = _str(ref, "kind"), _str(ref, "name")
    return HpaFacts(
        name=_str(metadata, "name") or "?",
        namespace=_str(metadata, "namespace") or "?",
        exists=True,
        target=OwnerRef(target_kind, target_name) if target_kind and target_name else None,
        min_replicas=_int(spec, "minReplicas") or 1,  # the API's default
        max_replicas=_int(spec, "maxReplicas"),
        current_replicas=_int(status, "currentReplicas"),
        desired_replicas=_int(status, "desiredReplicas"),
        metrics=tuple(metrics),
        scaling_limited=scaling_limited,
        problems=tuple(problems),
        last_scale_time=parse_time(status.get("lastScaleTime")),
    )


def gone_hpa(namespace: str, name: str) -> HpaFacts:
    return HpaFacts(name=name, namespace=namespace, exists=False)


# ---- Jobs and CronJobs -------------------------------------------------------------------------


@dataclass(frozen=True)
class JobFacts:
    name: str
    namespace: str
    exists: bool
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    completions: int | None = None
    backoff_limit: int | None = None
    active_deadline_seconds: int | None = None
    complete: bool = False
    failed_reason: str | None = None  # BackoffLimitExceeded | DeadlineExceeded | ...
    failed_message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    owner: OwnerRef | None = None  # the CronJob that created it
    failed_pods: tuple[str, ...] = ()

    @property
    def state(self) -> str:
        if self.failed_reason:
            return "failed"
        if self.complete:
            return "complete"
        return "running" if self.active else "pending"

    def verdict(self) -> str:
        if not self.exists:
            return f"Job {self.name}: no longer exists"
        text = f"Job {self.name}: {self.state}"
        if self.failed_reason:
            text += f", {self.failed_reason}"
            if self.failed_message:
                text += f": {clean_text(self.failed_message, 120)}"
        text += f"; {self.failed} failed"
        if self.backoff_limit is not None:
            text += f" (backoff limit {self.backoff_limit})"
        text += f", {self.succeeded} succeeded"
        if self.completions is not None:
            text += f" of {self.completions}"
        text += f", {self.active} active"
        if self.failed_reason == "DeadlineExceeded" and self.active_deadline_seconds is not None:
            text += f"; activeDeadlineSeconds {self.active_deadline_seconds}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "exists": self.exists,
            "state": self.state if self.exists else None,
            "active": self.active,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "completions": self.completions,
            "backoff_limit": self.backoff_limit,
            "active_deadline_seconds": self.active_deadline_seconds,
            "failed_reason": self.failed_reason,
            "failed_message": self.failed_message,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "owner": self.owner.to_json() if self.owner else None,
            "failed_pods": list(self.failed_pods),
        }


def job_facts(job: Json, pods: Sequence[PodFacts] = ()) -> JobFacts:
    metadata, spec, status = _map(job, "metadata"), _map(job, "spec"), _map(job, "status")
    conditions = {t: c for c in _list(status, "conditions") if (t := _str(c, "type"))}
    failed = conditions.get("Failed", {})
    has_failed = _str(failed, "status") == "True"
    return JobFacts(
        name=_str(metadata, "name") or "?",
        namespace=_str(metadata, "namespace") or "?",
        exists=True,
        active=_int(status, "active") or 0,
        succeeded=_int(status, "succeeded") or 0,
        failed=_int(status, "failed") or 0,
        completions=_int(spec, "completions"),
        backoff_limit=_int(spec, "backoffLimit"),
        active_deadline_seconds=_int(spec, "activeDeadlineSeconds"),
        complete=_str(conditions.get("Complete", {}), "status") == "True",
        failed_reason=(_str(failed, "reason") or "Failed") if has_failed else None,
        failed_message=_str(failed, "message") if has_failed else None,
        started_at=parse_time(status.get("startTime")),
        finished_at=parse_time(status.get("completionTime")) or parse_time(failed.get("lastTransitionTime")),
        owner=controller_of(job),
        failed_pods=tuple(p.name for p in pods if p.phase == "Failed"),
    )


def gone_job(namespace: str, name: str) -> JobFacts:
    return JobFacts(name=name, namespace=namespace, exists=False)


@dataclass(frozen=True)
class CronJobFacts:
    name: str
    namespace: str
    exists: bool
    schedule: str | None = None
    suspended: bool = False
    last_schedule: datetime | None = None
    last_successful: datetime | None = None
    active: tuple[str, ...] = ()  # Jobs running now
    last_job: JobFacts | None = None  # the most recent Job it created

    def verdict(self, now: datetime) -> str:
        if not self.exists:
            return f"CronJob {self.name}: no longer exists"
        parts = [f"schedule {self.schedule or '?'}" + (", suspended" if self.suspended else "")]
        parts.append(f"last scheduled {ago(self.last_schedule, now)}" if self.last_schedule else "never scheduled")
        parts.append(
            f"last successful {ago(self.last_successful, now)}" if self.last_successful else "never successful"
        )
        if self.active:
            parts.append(f"{len(self.active)} active")
        text = f"CronJob {self.name}: {', '.join(parts)}"
        if self.last_job is not None:
            text += f"; most recent {self.last_job.verdict()}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "exists": self.exists,
            "schedule": self.schedule,
            "suspended": self.suspended,
            "last_schedule": iso(self.last_schedule),
            "last_successful": iso(self.last_successful),
            "active": list(self.active),
            "last_job": self.last_job.name if self.last_job else None,
        }


def cronjob_facts(cronjob: Json, last_job: JobFacts | None = None) -> CronJobFacts:
    metadata, spec, status = _map(cronjob, "metadata"), _map(cronjob, "spec"), _map(cronjob, "status")
    return CronJobFacts(
        name=_str(metadata, "name") or "?",
        namespace=_str(metadata, "namespace") or "?",
        exists=True,
        schedule=_str(spec, "schedule"),
        suspended=spec.get("suspend") is True,
        last_schedule=parse_time(status.get("lastScheduleTime")),
        last_successful=parse_time(status.get("lastSuccessfulTime")),
        active=tuple(n for ref in _list(status, "active") if (n := _str(ref, "name"))),
        last_job=last_job,
    )


def gone_cronjob(namespace: str, name: str) -> CronJobFacts:
    return CronJobFacts(name=name, namespace=namespace, exists=False)


def newest_job_of(cronjob: str, jobs: Sequence[Json]) -> Json | None:
    """The most recently created Job the CronJob controls."""
    owned = [j for j in jobs if (o := controller_of(j)) is not None and (o.kind, o.name) == ("CronJob", cronjob)]
    return max(owned, key=lambda j: str(_map(j, "metadata").get("creationTimestamp") or ""), default=None)


# ---- why a workload's pods are missing -------------------------------------------------------


def not_running(
    pods: Sequence[PodFacts], raw_pods: Mapping[str, Json], claims: Mapping[str, Json]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(one line per pod that is not running and why, unbound claims those pods wait for).

    Why, in the order an engineer checks: the scheduler's message (Insufficient cpu,
    taints, node affinity, unbound PersistentVolumeClaims), the container's waiting
    reason, else the phase.
    """
    lines: list[str] = []
    unbound: list[str] = []
    for pod in pods:
        if pod.ready or pod.phase == "Succeeded":
            continue
        waiting = [
            f"{name} ({_str(_map(claims[name], 'status'), 'phase') or 'Pending'})"
            if name in claims
            else f"{name} (does not exist)"
            for name in claims_of_pod(raw_pods.get(pod.name, {}))
            if not claim_bound(claims.get(name))
        ]
        unbound += [w.split(" ", 1)[0] for w in waiting]
        worst = pod.container(None)
        why = (
            f"unschedulable: {clean_text(pod.unschedulable, 160)}"
            if pod.unschedulable
            else (worst.state_reason if worst and worst.state_reason else None) or pod.reason or pod.phase or "?"
        )
        if waiting:
            why += f"; unbound claim {', '.join(waiting)}"
        lines.append(f"{pod.name} {why}")
    return tuple(lines[:MAX_REASONS]), tuple(dict.fromkeys(unbound))


def statefulset_claims(statefulset: Json) -> tuple[str, ...]:
    """The claims a StatefulSet's pods get from its volumeClaimTemplates: <template>-<set>-<i>."""
    metadata, spec = _map(statefulset, "metadata"), _map(statefulset, "spec")
    name, replicas = _str(metadata, "name"), _int(spec, "replicas")
    templates = [t for c in _list(spec, "volumeClaimTemplates") if (t := _str(_map(c, "metadata"), "name"))]
    if name is None or replicas is None:
        return ()
    return tuple(f"{t}-{name}-{i}" for t in templates for i in range(replicas))


def missing_ordinals(statefulset: Json, pods: Sequence[PodFacts]) -> tuple[str, ...]:
    """StatefulSet pods that do not exist at all (ordered start waits on a broken one)."""
    metadata, spec = _map(statefulset, "metadata"), _map(statefulset, "spec")
    name, replicas = _str(metadata, "name"), _int(spec, "replicas")
    if name is None or replicas is None:
        return ()
    present = {p.name for p in pods}
    return tuple(f"{name}-{i}" for i in range(replicas) if f"{name}-{i}" not in present)


# ---- images the registry refused ---------------------------------------------------------------

_PULL_IMAGE = re.compile(r'(?:Failed to pull image|Back-off pulling image|pulling image) "([^"]+)"', re.IGNORECASE)
_NOT_FOUND = re.compile(r"not found|manifest unknown|does not exist|name unknown", re.IGNORECASE)
_PULL_WAITING = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})


@dataclass(frozen=True)
class ImagePull:
    """An image the node could not pull, with the registry's answer where it gave one."""

    image: str
    not_found: bool
    message: str | None
    container: str | None = None

    def describe(self) -> str:
        what = "not found in the registry" if self.not_found else "cannot be pulled"
        return f"image {self.image} {what}" + (f": {clean_text(self.message, 200)}" if self.message else "")

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "not_found": self.not_found, "message": self.message, "container": self.container}


def image_pull(pod: PodFacts | None, events: Sequence[EventFacts]) -> ImagePull | None:
    """The registry's answer from a `Failed` event, else the container's waiting state."""
    container = next((c for c in pod.containers if c.waiting_reason in _PULL_WAITING), None) if pod else None
    answers = [m.message for e in events for m in e.messages if m.weight >= 4 and _PULL_IMAGE.search(m.message)]
    if answers:
        image = _image_in(answers[0]) or (container.image if container else None)
        if image:
            name = container.name if container else None
            return ImagePull(image, bool(_NOT_FOUND.search(answers[0])), answers[0], name)
    if container is None:
        return None
    message = container.waiting_message
    image = (_image_in(message) if message else None) or container.image or "?"
    return ImagePull(image, bool(message and _NOT_FOUND.search(message)), message, container.name)


def _image_in(message: str) -> str | None:
    match = _PULL_IMAGE.search(message)
    return match.group(1) if match else None


@dataclass(frozen=True)
class OomKill:
    container: str
    memory_limit: str | None
    at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"container": self.container, "memory_limit": self.memory_limit, "at": iso(self.at)}


def oom_kill(pod: PodFacts | None) -> OomKill | None:
    """The container the kernel killed for memory, with the limit it hit."""
    for container in pod.containers if pod else ():
        ended = container.terminated or container.last_termination
        if ended is not None and ended.reason == "OOMKilled":
            return OomKill(container.name, container.limits.get("memory"), ended.finished_at)
    return None
