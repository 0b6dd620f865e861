"""What the Kubernetes enricher found, and how it reads: a verdict line first, then
compact lines (owner, rollout, node, pods, events, log excerpt), plus JSON facts.

Pure: `Findings` in, facts and summary lines out; `read_facts` reads them back, typed, as
far as suppression, ranking and advice act on them (`read_verdict`: suppression's reading).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import NoneType, UnionType
from typing import Any, Protocol, Union, get_args, get_origin

import msgspec
import msgspec.structs

from enrichers.kubernetes.facts import (
    JSON_OBJECT,
    EventFacts,
    NodeFacts,
    OwnerRef,
    PodFacts,
    Rollout,
    ServiceFacts,
    WorkloadFacts,
    pod_badness,
    pod_verdict,
)
from enrichers.kubernetes.kinds import (
    ClaimFacts,
    CronJobFacts,
    HpaFacts,
    JobFacts,
    VolumeFacts,
    capacity_line,
    image_pull,
    oom_kill,
)
from enrichers.kubernetes.logs_redact import LogExcerpt
from enrichers.kubernetes.subject import Subject

SUMMARY_EVENTS = 5
SUMMARY_LOG_LINES = 10
FACT_PODS = 20


@dataclass(frozen=True)
class Findings:
    subject: Subject
    alert_time: datetime
    now: datetime
    pod: PodFacts | None = None  # the pod looked at closely (the subject, or the worst one)
    pods: tuple[PodFacts, ...] = ()  # behind a workload, service or node; worst first
    owners: tuple[OwnerRef, ...] = ()
    workload: WorkloadFacts | None = None
    rollout: Rollout | None = None
    node: NodeFacts | None = None
    service: ServiceFacts | None = None
    claim: ClaimFacts | None = None
    volume: VolumeFacts | None = None
    hpa: HpaFacts | None = None
    job: JobFacts | None = None
    cronjob: CronJobFacts | None = None
    filesystem: Mapping[str, str] | None = None  # node, mountpoint, device, fstype
    events: tuple[EventFacts, ...] = ()
    logs: tuple[LogExcerpt, ...] = ()
    failures: tuple[str, ...] = ()  # lookups that failed, "what: reason"


def verdict(findings: Findings) -> str:
    subject, now = findings.subject, findings.now
    if subject.kind == "Pod" and findings.pod is not None:
        return pod_verdict(findings.pod, now, subject.container)
    if subject.kind == "Node" and findings.node is not None:
        return findings.node.verdict() + _pods_health(findings.pods)
    if subject.kind == "Service" and findings.service is not None:
        return findings.service.verdict()
    by_kind = {
        "PersistentVolumeClaim": findings.claim,
        "PersistentVolume": findings.volume,
        "HorizontalPodAutoscaler": findings.hpa,
        "Job": findings.job,
    }
    own = by_kind.get(subject.kind)
    if own is not None:
        return own.verdict()
    if subject.kind == "CronJob" and findings.cronjob is not None:
        return findings.cronjob.verdict(now)
    if findings.workload is not None:
        return findings.workload.verdict()
    return f"{subject.ref}: no details available"


def _pods_health(pods: tuple[PodFacts, ...]) -> str:
    if not pods:
        return ""
    not_ready = [p for p in pods if not p.ready and p.phase != "Succeeded"]
    return f", {len(pods)} pods, {len(not_ready)} not ready"


def _pods_line(pods: tuple[PodFacts, ...]) -> str | None:
    if not pods:
        return None
    ready = sum(1 for p in pods if p.ready)
    troubled = [p for p in pods if pod_badness(p)[0] > 0][:3]
    line = f"pods: {ready}/{len(pods)} ready"
    if troubled:
        line += "; " + "; ".join(_brief(p) for p in troubled)
    return line


def _brief(pod: PodFacts) -> str:
    worst = pod.container(None)
    state = (worst.state_reason if worst else None) or pod.reason or pod.phase or "?"
    restarts = f", {pod.restarts} restarts" if pod.restarts else ""
    return f"{pod.name} {state}{restarts}"


def summary_lines(findings: Findings) -> tuple[str, ...]:
    now = findings.now
    lines = [verdict(findings)]
    pull = image_pull(findings.pod, findings.events)
    if pull is not None:
        lines.append(pull.describe())
    if findings.filesystem is not None:
        lines.append(_filesystem_line(findings.filesystem))
    closer_look = findings.pod if findings.subject.kind != "Pod" else None
    if closer_look is not None and pod_badness(closer_look)[0] > 0:
        lines.append("worst pod " + pod_verdict(closer_look, now))
    if findings.owners:
        lines.append("owner: " + " -> ".join(o.describe() for o in findings.owners))
    lines += _kind_lines(findings)
    if findings.rollout is not None:
        lines.append(findings.rollout.describe(findings.alert_time))
    if findings.node is not None and findings.subject.kind != "Node":
        lines.append(findings.node.verdict())
    lines += _node_lines(findings.node)
    pods_line = _pods_line(findings.pods)
    if pods_line is not None:
        lines.append(pods_line)
    lines += [f"event {e.describe(now)}" for e in findings.events[:SUMMARY_EVENTS]]
    for excerpt in findings.logs:
        if not excerpt.lines:
            continue
        which = "previous instance" if excerpt.previous else "current"
        shown = excerpt.render()[-SUMMARY_LOG_LINES:]
        lines.append(f"log {excerpt.container} ({which}), last {len(shown)} lines:")
        lines += shown
    if findings.failures:
        lines.append("kubernetes: partial, could not read: " + "; ".join(findings.failures))
    return tuple(lines)


def _kind_lines(findings: Findings) -> list[str]:
    """What the subject's kind adds: the workload behind a pod, service or HPA, the claim's
    mounts, the Job behind a pod or CronJob, and why a workload's pods do not run."""
    kind, lines = findings.subject.kind, []
    if findings.workload is not None and kind in ("Pod", "Service", "HorizontalPodAutoscaler"):
        lines.append(findings.workload.verdict())
    if findings.claim is not None:
        if kind != "PersistentVolumeClaim":
            lines.append(findings.claim.verdict())
        if findings.claim.exists and kind == "PersistentVolumeClaim":
            lines.append(findings.claim.mount_line())
    if findings.job is not None and kind == "Pod":
        lines.append(findings.job.verdict())
    if findings.job is not None and findings.job.failed_pods:
        lines.append("failed pods: " + ", ".join(findings.job.failed_pods[:5]))
    workload = findings.workload
    if workload is not None:
        lines += [f"not running: {why}" for why in workload.not_running]
        # A pod's one unbound claim already has its own line (the claim's verdict).
        shown = (findings.claim.name,) if findings.claim is not None else ()
        if workload.unbound_claims and workload.unbound_claims != shown:
            lines.append("unbound claims: " + ", ".join(workload.unbound_claims))
        if workload.missing_pods:
            lines.append("not created: " + ", ".join(workload.missing_pods))
    return lines


def _node_lines(node: NodeFacts | None) -> list[str]:
    if node is None or not node.exists:
        return []
    lines = []
    if node.requested is not None:
        line = capacity_line(node.allocatable or {}, node.requested)
        if line is not None:
            lines.append(f"node {node.name} {line}")
    if node.not_ready_message:
        lines.append(f"node {node.name} says: {node.not_ready_message}")
    if node.taints:
        lines.append(f"node {node.name} taints: " + ", ".join(node.taints))
    return lines


def _filesystem_line(filesystem: Mapping[str, str]) -> str:
    what = ", ".join(filesystem[k] for k in ("fstype", "device") if k in filesystem)
    return (
        f"filesystem {filesystem.get('mountpoint')}"
        + (f" ({what})" if what else "")
        + (f" on node {filesystem['node']}")
    )


def facts(findings: Findings) -> dict[str, Any]:
    """JSON-serialisable facts; keys for parts that do not apply are left out."""
    result: dict[str, Any] = {
        "subject": findings.subject.to_json(),
        "verdict": verdict(findings),
        "events": [e.to_json() for e in findings.events],
        "logs": [excerpt.to_json() for excerpt in findings.logs],
        "failed_lookups": list(findings.failures),
    }
    if findings.pod is not None:
        result["pod"] = findings.pod.to_json()
    if findings.pods:
        result["pods"] = [p.to_brief_json() for p in findings.pods[:FACT_PODS]]
        result["pods_total"] = len(findings.pods)
    if findings.owners:
        result["owners"] = [o.to_json() for o in findings.owners]
    optional: dict[str, _ToJson | None] = {
        "workload": findings.workload,
        "rollout": findings.rollout,
        "node": findings.node,
        "service": findings.service,
        "pvc": findings.claim,
        "pv": findings.volume,
        "hpa": findings.hpa,
        "job": findings.job,
        "cronjob": findings.cronjob,
        "image_pull": image_pull(findings.pod, findings.events),
        "oom_killed": oom_kill(findings.pod),
    }
    result.update({key: value.to_json() for key, value in optional.items() if value is not None})
    if findings.filesystem is not None:
        result["filesystem"] = dict(findings.filesystem)
    return result


class _ToJson(Protocol):
    def to_json(self) -> dict[str, Any]: ...


# ---- reading the facts back --------------------------------------------------------------
# One typed reading of the JSON `facts` writes, for every reader (suppression, ranking,
# advice): each field described once, as far as some reader needs it. Facts are read from
# stored outcomes too, of older versions: every field is optional, unknown keys are ignored.


class SubjectState(msgspec.Struct, frozen=True):
    """The object the alert is about."""

    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    container: str | None = None


class OwnerState(msgspec.Struct, frozen=True):
    kind: str | None = None
    name: str | None = None
    exists: bool = True


class TerminationState(msgspec.Struct, frozen=True):
    reason: str | None = None  # OOMKilled, Error, Completed, ...
    exit_code: int | None = None


class ContainerState(msgspec.Struct, frozen=True):
    name: str | None = None
    image: str | None = None
    restarts: int = 0
    waiting_reason: str | None = None
    waiting_message: str | None = None
    terminated: TerminationState | None = None
    last_termination: TerminationState | None = None
    limits: dict[str, str] = {}
    memory_peak: str | None = None  # not written by this enricher: read when a fact carries it


class PodState(msgspec.Struct, frozen=True):
    """The pod looked at closely."""

    name: str | None = None
    namespace: str | None = None
    exists: bool = True
    phase: str | None = None
    reason: str | None = None  # status.reason, e.g. Evicted
    message: str | None = None
    node: str | None = None
    owner: OwnerState | None = None
    unschedulable: str | None = None  # the scheduler's message for a pending pod
    containers: tuple[ContainerState, ...] = ()


class BriefPodState(msgspec.Struct, frozen=True):
    """One of the pods behind a workload, service or node."""

    name: str | None = None
    namespace: str | None = None


class WorkloadState(msgspec.Struct, frozen=True):
    """The workload behind the alert."""

    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    exists: bool | None = None  # None: not said (suppression takes it as gone, ranking as there)
    desired: int | None = None
    ready: int | None = None
    problems: tuple[str, ...] = ()
    not_running: tuple[str, ...] = ()  # "<pod> <why>", one per pod that should run and does not
    unbound_claims: tuple[str, ...] = ()
    missing_pods: tuple[str, ...] = ()
    owner: OwnerState | None = None  # the CronJob behind a Job, ...

    @property
    def healthy(self) -> bool:
        """Exists, every desired replica ready, no condition in a bad state."""
        return (
            self.exists is True and self.desired is not None and (self.ready or 0) >= self.desired and not self.problems
        )


class NodeState(msgspec.Struct, frozen=True):
    name: str | None = None
    exists: bool = True
    ready: bool | None = None
    problems: tuple[str, ...] = ()  # "NotReady: reason", MemoryPressure, DiskPressure, PIDPressure
    pressure: tuple[str, ...] = ()  # MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable
    unschedulable: bool = False  # cordoned
    taints: tuple[str, ...] = ()

    @property
    def not_ready(self) -> bool:
        return self.exists and self.ready is False

    @property
    def healthy(self) -> bool:
        return self.exists and self.ready is True and not self.problems


class ServiceState(msgspec.Struct, frozen=True):
    name: str | None = None
    exists: bool = True
    selector: str | None = None
    not_ready_pods: tuple[str, ...] = ()


class ClaimState(msgspec.Struct, frozen=True):
    name: str | None = None
    namespace: str | None = None
    exists: bool = True
    phase: str | None = None
    volume: str | None = None
    storage_class: str | None = None
    allow_volume_expansion: bool | None = None
    expandable: bool = False  # Bound and its class allows expansion
    requested: str | None = None
    capacity: str | None = None
    mounted_by: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()


class HpaState(msgspec.Struct, frozen=True):
    name: str | None = None
    namespace: str | None = None
    exists: bool = True
    min_replicas: int | None = None
    max_replicas: int | None = None
    current_replicas: int | None = None
    desired_replicas: int | None = None
    at_max: bool = False
    scaling_limited: str | None = None  # "TooManyReplicas: ..." when the condition is True


class JobState(msgspec.Struct, frozen=True):
    name: str | None = None
    namespace: str | None = None
    exists: bool = True
    state: str | None = None  # failed | complete | running | pending
    failed_reason: str | None = None  # BackoffLimitExceeded | DeadlineExceeded | ...
    failed_message: str | None = None
    failed: int = 0
    backoff_limit: int | None = None
    active_deadline_seconds: int | None = None
    failed_pods: tuple[str, ...] = ()


class CronJobState(msgspec.Struct, frozen=True):
    name: str | None = None
    exists: bool = True
    schedule: str | None = None
    suspended: bool = False
    last_schedule: str | None = None  # RFC 3339
    last_successful: str | None = None
    last_job: str | None = None


class RolloutState(msgspec.Struct, frozen=True):
    deployment: str | None = None
    revision: int | None = None
    images: tuple[str, ...] = ()
    started_at: str | None = None
    previous_revision: int | None = None  # the last one before it: `rollout undo --to-revision`
    previous_images: tuple[str, ...] = ()


class ImagePullState(msgspec.Struct, frozen=True):
    image: str | None = None
    not_found: bool = False  # the registry said the image or tag does not exist
    message: str | None = None
    container: str | None = None


class OomState(msgspec.Struct, frozen=True):
    container: str | None = None
    memory_limit: str | None = None
    at: str | None = None


class FilesystemState(msgspec.Struct, frozen=True):
    node: str | None = None
    mountpoint: str | None = None
    device: str | None = None
    fstype: str | None = None


class EventState(msgspec.Struct, frozen=True):
    """Warning events of one reason, folded."""

    reason: str = ""
    message: str = ""
    count: int = 1
    objects: tuple[str, ...] = ()  # "Pod/name" of every object it was reported for


class KubernetesFacts(msgspec.Struct, frozen=True):
    """What suppression, ranking and advice act on: the verdict line, the subject and what
    was found about it. Read from the JSON facts (fresh ones and stored ones alike): the
    facts stay the record the API and the dashboard show. Every part is optional, so facts
    written before a part existed read as well."""

    verdict: str | None = None
    subject: SubjectState | None = None
    pod: PodState | None = None
    workload: WorkloadState | None = None
    node: NodeState | None = None
    rollout: RolloutState | None = None
    pvc: ClaimState | None = None
    hpa: HpaState | None = None
    job: JobState | None = None
    cronjob: CronJobState | None = None
    image_pull: ImagePullState | None = None
    oom_killed: OomState | None = None
    filesystem: FilesystemState | None = None
    # Read by ranking and advice only: an odd one never empties the verdict.
    service: ServiceState | None = None
    pods: tuple[BriefPodState, ...] = ()
    owners: tuple[OwnerState, ...] = ()
    events: tuple[EventState, ...] = ()

    @property
    def node_not_ready(self) -> bool:
        return self.node is not None and self.node.not_ready

    @property
    def hpa_at_max(self) -> bool:
        return self.hpa is not None and self.hpa.at_max

    @property
    def job_failed_reason(self) -> str | None:
        return self.job.failed_reason if self.job is not None else None

    @property
    def image_not_found(self) -> str | None:
        """The image the registry said does not exist."""
        pull = self.image_pull
        return pull.image if pull is not None and pull.not_found else None

    @property
    def pvc_expandable(self) -> bool:
        return self.pvc is not None and self.pvc.expandable


KubernetesVerdict = KubernetesFacts  # the name suppression acts on it by

_NOT_IN_VERDICT = frozenset({"service", "pods", "owners", "events"})


def read_facts(facts: Mapping[str, Any]) -> KubernetesFacts:
    """Every part of `facts` that has the shape some version of this enricher wrote; a part
    of another shape keeps what of it has (an odd field takes its default, an odd item of a
    list is left out) and never hides the others."""
    return _read(facts)[0]


def read_verdict(facts: Mapping[str, Any]) -> KubernetesFacts:
    """The typed verdict in `facts`; an empty one when they hold none, or when a part
    suppression acts on has a shape no version of this enricher wrote (facts from a stored
    outcome of another version): suppression does not act on half a reading."""
    return read_facts_and_verdict(facts)[1]


def read_facts_and_verdict(facts: Mapping[str, Any]) -> tuple[KubernetesFacts, KubernetesFacts]:
    """`read_facts` and `read_verdict` from one reading."""
    found, odd = _read(facts)
    return found, found if odd <= _NOT_IN_VERDICT else KubernetesFacts()


# Suppression, ranking and advice each read an alert's facts: the reading is pure, so the
# latest few are remembered, by identity (an id is unique while its object lives, and
# the entry keeps the object alive). Facts are never changed once an enricher made them.
READINGS_KEPT = 256  # a few groups in flight; each reading holds its facts
_readings: dict[int, tuple[Mapping[str, Any], tuple[KubernetesFacts, frozenset[str]]]] = {}


def _read(facts: Mapping[str, Any]) -> tuple[KubernetesFacts, frozenset[str]]:
    """The reading, and the parts that had to be salvaged."""
    known = _readings.get(id(facts))
    if known is not None and known[0] is facts:
        return known[1]
    if len(_readings) >= READINGS_KEPT:
        _readings.clear()
    reading = _readings[id(facts)] = (facts, _read_anew(facts))
    return reading[1]


def _read_anew(facts: Mapping[str, Any]) -> tuple[KubernetesFacts, frozenset[str]]:
    try:  # the usual case: everything has its shape, read in one go
        return msgspec.convert(facts if type(facts) is dict else dict(facts), KubernetesFacts), frozenset()
    except msgspec.ValidationError:
        pass
    kept: dict[str, Any] = {}
    odd: set[str] = set()
    for name, shape in _fields(KubernetesFacts):
        value = facts.get(name)
        if value is None:
            continue
        try:
            kept[name] = msgspec.convert(value, shape)
        except msgspec.ValidationError:
            odd.add(name)
            salvaged = _salvage(value, shape)
            if salvaged is not _NOTHING:
                kept[name] = salvaged
    return KubernetesFacts(**kept), frozenset(odd)


_NOTHING: Any = object()


def _salvage(value: object, shape: Any) -> Any:
    """What of `value` has `shape`: a struct's fields that fit (the others take their
    defaults), a tuple's items that fit, a dict's entries that fit; `_NOTHING` when none."""
    try:
        return msgspec.convert(value, shape)
    except msgspec.ValidationError:
        pass
    args = get_args(shape)
    if isinstance(shape, type) and issubclass(shape, msgspec.Struct):
        if not isinstance(value, JSON_OBJECT):
            return _NOTHING
        fitting = {n: _salvage(value[n], s) for n, s in _fields(shape) if n in value}
        return shape(**{n: v for n, v in fitting.items() if v is not _NOTHING})
    origin = get_origin(shape)
    if origin is tuple and isinstance(value, list):
        items = (_salvage(item, args[0]) for item in value)
        return tuple(item for item in items if item is not _NOTHING)
    if origin is dict and isinstance(value, JSON_OBJECT):
        entries = {_salvage(k, args[0]): _salvage(v, args[1]) for k, v in value.items()}
        return {k: v for k, v in entries.items() if _NOTHING not in (k, v)}
    if origin in (Union, UnionType):  # `X | None`: what fits X
        return next((s for s in (_salvage(value, a) for a in args if a is not NoneType) if s is not _NOTHING), _NOTHING)
    return _NOTHING


@functools.cache
def _fields(shape: type[msgspec.Struct]) -> tuple[tuple[str, Any], ...]:
    return tuple((f.name, f.type) for f in msgspec.structs.fields(shape))
