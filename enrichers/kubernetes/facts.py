"""Shape Kubernetes API objects (plain JSON dicts, as the API serves them) into facts.

Pure functions over dicts: no I/O, so each one is tested directly on fixture objects.
Every dataclass here has `to_json()` returning JSON-serialisable data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from enrichers.kubernetes.logs_redact import clean_text
from enrichers.times import parse_time

Json = Mapping[str, Any]
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
VERDICT_DETAIL_CHARS = 80  # the verdict is one line: long scheduler messages are cut
# Waiting reasons that mean the container will not run without someone acting.
BAD_WAITING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "ContainerCannotRun",
    }
)
# Node conditions whose "True" is bad; for Ready, "True" is good.
NODE_PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


# ---- small readers over untrusted JSON -------------------------------------------------

# JSON objects arrive as dicts: trying dict first skips most of the ABC check
# (3x faster; these readers run for every field of every object a storm reads).
JSON_OBJECT = (dict, Mapping)


def _map(obj: object, key: str) -> Json:
    value = obj.get(key) if isinstance(obj, JSON_OBJECT) else None
    return value if isinstance(value, JSON_OBJECT) else {}


def _list(obj: object, key: str) -> list[Json]:
    value = obj.get(key) if isinstance(obj, JSON_OBJECT) else None
    return [item for item in value if isinstance(item, JSON_OBJECT)] if isinstance(value, list) else []


def _str(obj: object, key: str) -> str | None:
    value = obj.get(key) if isinstance(obj, JSON_OBJECT) else None
    return value if isinstance(value, str) and value else None


def _int(obj: object, key: str) -> int | None:
    value = obj.get(key) if isinstance(obj, JSON_OBJECT) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _string_map(obj: object) -> dict[str, str]:
    if not isinstance(obj, JSON_OBJECT):
        return {}
    return {str(k): str(v) for k, v in obj.items() if isinstance(v, str | int | float)}


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def ago(moment: datetime, now: datetime) -> str:
    """'3m ago'-style age; a moment after `now` (clock skew) reads 'just now'."""
    seconds = int((now - moment).total_seconds())
    if seconds < 5:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


# ---- ownership and selectors -------------------------------------------------------------


@dataclass(frozen=True)
class OwnerRef:
    kind: str
    name: str
    uid: str | None = None
    exists: bool = True  # False when the owner named here could not be found

    def describe(self) -> str:
        return f"{self.kind} {self.name}" + ("" if self.exists else " (no longer exists)")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "exists": self.exists}


def controller_of(obj: Json) -> OwnerRef | None:
    """The owner with controller=true (the one that recreates the object), else the first."""
    owners = _list(_map(obj, "metadata"), "ownerReferences")
    chosen = next((o for o in owners if o.get("controller") is True), owners[0] if owners else None)
    if chosen is None:
        return None
    kind, name = _str(chosen, "kind"), _str(chosen, "name")
    if kind is None or name is None:
        return None
    return OwnerRef(kind, name, _str(chosen, "uid"))


def label_selector(selector: object) -> str | None:
    """A LabelSelector object (matchLabels/matchExpressions) as the query-string form.

    A Service's selector is a plain map; both shapes are accepted. None for an empty
    selector, which would select everything and is never what an alert means.
    """
    if not isinstance(selector, JSON_OBJECT):
        return None
    plain = "matchLabels" not in selector and "matchExpressions" not in selector
    labels = _string_map(selector if plain else selector.get("matchLabels"))
    parts = [f"{key}={value}" for key, value in sorted(labels.items())]
    for expression in [] if plain else _list(selector, "matchExpressions"):
        key, operator = _str(expression, "key"), _str(expression, "operator")
        values = ",".join(str(v) for v in expression.get("values") or [])
        if key is None:
            continue
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) or None


# ---- pods ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Termination:
    reason: str | None
    exit_code: int | None
    finished_at: datetime | None
    message: str | None

    def describe(self, now: datetime) -> str:
        text = self.reason or "terminated"
        if self.exit_code is not None:
            text += f" (exit {self.exit_code})"
        if self.finished_at is not None:
            text += f" {ago(self.finished_at, now)}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "exit_code": self.exit_code,
            "finished_at": iso(self.finished_at),
            "message": self.message,
        }


def _termination(state: Json) -> Termination | None:
    terminated = _map(state, "terminated")
    if not terminated:
        return None
    message = _str(terminated, "message")
    return Termination(
        reason=_str(terminated, "reason"),
        exit_code=_int(terminated, "exitCode"),
        finished_at=parse_time(terminated.get("finishedAt")),
        message=clean_text(message) if message else None,
    )


@dataclass(frozen=True)
class ContainerFacts:
    name: str
    image: str | None
    ready: bool
    restarts: int
    state: str  # running | waiting | terminated | unknown
    waiting_reason: str | None
    waiting_message: str | None
    terminated: Termination | None  # the current state, when it is terminated
    last_termination: Termination | None  # lastState: why the previous instance ended
    requests: Mapping[str, str]
    limits: Mapping[str, str]
    init: bool = False  # an init container: the pod cannot start until it succeeds

    @property
    def state_reason(self) -> str | None:
        """The waiting reason as kubectl shows it, 'Init:' marking init containers."""
        if self.waiting_reason is None:
            return None
        return f"Init:{self.waiting_reason}" if self.init else self.waiting_reason

    @property
    def has_previous_instance(self) -> bool:
        return self.restarts > 0 or self.last_termination is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.image,
            "ready": self.ready,
            "restarts": self.restarts,
            "state": self.state,
            "waiting_reason": self.waiting_reason,
            "waiting_message": self.waiting_message,
            "terminated": self.terminated.to_json() if self.terminated else None,
            "last_termination": self.last_termination.to_json() if self.last_termination else None,
            "requests": dict(self.requests),
            "limits": dict(self.limits),
            "init": self.init,
        }


@dataclass(frozen=True)
class PodFacts:
    name: str
    namespace: str
    exists: bool
    phase: str | None = None
    ready: bool = False
    reason: str | None = None  # status.reason, e.g. Evicted
    message: str | None = None
    node: str | None = None
    owner: OwnerRef | None = None
    containers: tuple[ContainerFacts, ...] = ()
    unschedulable: str | None = None  # the PodScheduled=False message

    @property
    def restarts(self) -> int:
        return sum(c.restarts for c in self.containers)

    def container(self, name: str | None) -> ContainerFacts | None:
        """The named container, else the one in the worst state."""
        if name is not None:
            named = next((c for c in self.containers if c.name == name), None)
            if named is not None:
                return named
        return max(self.containers, key=_container_badness, default=None)

    def to_json(self) -> dict[str, Any]:
        if not self.exists:
            return {"name": self.name, "namespace": self.namespace, "exists": False}
        return {
            "name": self.name,
            "namespace": self.namespace,
            "exists": True,
            "phase": self.phase,
            "ready": self.ready,
            "reason": self.reason,
            "message": self.message,
            "node": self.node,
            "owner": self.owner.to_json() if self.owner else None,
            "restarts": self.restarts,
            "unschedulable": self.unschedulable,
            "containers": [c.to_json() for c in self.containers],
        }

    def to_brief_json(self) -> dict[str, Any]:
        """One line's worth, for lists of pods behind a workload, service or node."""
        worst = self.container(None)
        return {
            "name": self.name,
            "namespace": self.namespace,
            "phase": self.phase,
            "ready": self.ready,
            "restarts": self.restarts,
            "waiting_reason": worst.state_reason if worst else None,
        }


def _container_facts(spec: Json, status: Json, *, init: bool = False) -> ContainerFacts:
    state = _map(status, "state")
    state_name = next((s for s in ("running", "waiting", "terminated") if s in state), "unknown")
    waiting = _map(state, "waiting")
    waiting_message = _str(waiting, "message")
    resources = _map(spec, "resources")
    return ContainerFacts(
        name=_str(spec, "name") or _str(status, "name") or "?",
        image=_str(status, "image") or _str(spec, "image"),
        ready=status.get("ready") is True,
        restarts=_int(status, "restartCount") or 0,
        state=state_name,
        waiting_reason=_str(waiting, "reason"),
        waiting_message=clean_text(waiting_message) if waiting_message else None,
        terminated=_termination(state),
        last_termination=_termination(_map(status, "lastState")),
        requests=_string_map(resources.get("requests")),
        limits=_string_map(resources.get("limits")),
        init=init,
    )


def pod_facts(pod: Json) -> PodFacts:
    metadata, spec, status = _map(pod, "metadata"), _map(pod, "spec"), _map(pod, "status")
    statuses = {_str(s, "name"): s for s in _list(status, "containerStatuses")}
    init_statuses = {_str(s, "name"): s for s in _list(status, "initContainerStatuses")}
    containers = tuple(
        _container_facts(c, init_statuses.get(_str(c, "name"), {}), init=True) for c in _list(spec, "initContainers")
    ) + tuple(_container_facts(c, statuses.get(_str(c, "name"), {})) for c in _list(spec, "containers"))
    conditions = {_str(c, "type"): c for c in _list(status, "conditions")}
    scheduled = conditions.get("PodScheduled", {})
    message = _str(status, "message")
    unschedulable = _str(scheduled, "message") if scheduled.get("status") == "False" else None
    return PodFacts(
        name=_str(metadata, "name") or "?",
        namespace=_str(metadata, "namespace") or "?",
        exists=True,
        phase=_str(status, "phase"),
        ready=conditions.get("Ready", {}).get("status") == "True",
        reason=_str(status, "reason"),
        message=clean_text(message) if message else None,
        node=_str(spec, "nodeName"),
        owner=controller_of(pod),
        containers=containers,
        unschedulable=clean_text(unschedulable) if unschedulable else None,
    )


def gone_pod(namespace: str, name: str) -> PodFacts:
    return PodFacts(name=name, namespace=namespace, exists=False)


def _container_badness(container: ContainerFacts) -> tuple[int, int]:
    if container.waiting_reason in BAD_WAITING_REASONS:
        rank = 4
    elif container.terminated is not None and container.terminated.exit_code not in (0, None):
        rank = 3
    elif not container.ready:
        rank = 2
    else:
        rank = 1 if container.restarts else 0
    return rank, container.restarts


def pod_badness(pod: PodFacts) -> tuple[int, int, int]:
    """Sort key: the pod most worth a closer look sorts last."""
    worst = max((_container_badness(c) for c in pod.containers), default=(0, 0))
    pending = 1 if pod.phase in ("Pending", "Failed", "Unknown") else 0
    return worst[0] + pending + (0 if pod.ready else 1), worst[1], -len(pod.name)


def worst_pod(pods: Iterable[PodFacts]) -> PodFacts | None:
    return max(pods, key=pod_badness, default=None)


def pod_verdict(pod: PodFacts, now: datetime, container_name: str | None = None) -> str:
    """One line an on-call engineer reads first, e.g. 'checkout-7d9f: CrashLoopBackOff,
    7 restarts, last OOMKilled (exit 137) 3m ago, memory limit 256Mi'.
    """
    if not pod.exists:
        return f"{pod.name}: pod no longer exists"
    container = pod.container(container_name)
    parts: list[str] = []
    if container is not None and container.state_reason:
        parts.append(container.state_reason)
    elif pod.reason:  # e.g. Evicted, with the kubelet's why
        detail = f": {clean_text(pod.message, VERDICT_DETAIL_CHARS)}" if pod.message else ""
        parts.append(pod.reason + detail)
    else:
        state = pod.phase or "Unknown"
        if pod.phase == "Running" and not pod.ready:
            state += ", not ready"
        parts.append(state)
    if pod.unschedulable:
        parts.append(f"unschedulable: {clean_text(pod.unschedulable, VERDICT_DETAIL_CHARS)}")
    if container is not None:
        if container.terminated is not None:
            parts.append(container.terminated.describe(now))
        if container.restarts:
            parts.append(f"{container.restarts} restart{'s' if container.restarts != 1 else ''}")
        if container.last_termination is not None:
            parts.append("last " + container.last_termination.describe(now))
        ended = container.terminated or container.last_termination
        if ended is not None and ended.reason == "OOMKilled":
            parts.append(f"memory limit {container.limits.get('memory', 'none')}")
    return f"{pod.name}: {', '.join(parts)}"


# ---- workloads and rollouts ------------------------------------------------------------------


@dataclass(frozen=True)
class WorkloadFacts:
    kind: str
    name: str
    namespace: str
    exists: bool
    desired: int | None = None
    ready: int | None = None
    available: int | None = None
    updated: int | None = None
    images: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # conditions in a bad state, "Type=Status: reason"
    owner: OwnerRef | None = None
    # Why the pods that should run do not, one line each (filled in after the pods are read).
    not_running: tuple[str, ...] = ()
    unbound_claims: tuple[str, ...] = ()  # PersistentVolumeClaims its pods wait for
    missing_pods: tuple[str, ...] = ()  # StatefulSet pods not created at all

    def verdict(self) -> str:
        if not self.exists:
            return f"{self.kind} {self.name}: no longer exists"
        text = f"{self.kind} {self.name}"
        if self.desired is not None:
            text += f": {self.ready or 0}/{self.desired} ready"
        if self.problems:
            text += ", " + "; ".join(self.problems)
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "exists": self.exists,
            "desired": self.desired,
            "ready": self.ready,
            "available": self.available,
            "updated": self.updated,
            "images": list(self.images),
            "problems": list(self.problems),
            "owner": self.owner.to_json() if self.owner else None,
            "not_running": list(self.not_running),
            "unbound_claims": list(self.unbound_claims),
            "missing_pods": list(self.missing_pods),
        }


# Conditions whose healthy status is "True"; any other condition is healthy when "False".
_POSITIVE_CONDITIONS = frozenset({"Available", "Progressing", "Ready", "Complete"})


def workload_facts(kind: str, obj: Json) -> WorkloadFacts:
    metadata, spec, status = _map(obj, "metadata"), _map(obj, "spec"), _map(obj, "status")
    template_spec = _map(_map(spec, "template"), "spec")
    if kind == "DaemonSet":
        desired, ready = _int(status, "desiredNumberScheduled"), _int(status, "numberReady")
        available, updated = _int(status, "numberAvailable"), _int(status, "updatedNumberScheduled")
    elif kind == "Job":
        desired, ready = _int(spec, "completions"), _int(status, "succeeded")
        available, updated = _int(status, "active"), None
    else:
        desired, ready = _int(spec, "replicas"), _int(status, "readyReplicas")
        available, updated = _int(status, "availableReplicas"), _int(status, "updatedReplicas")
    problems = []
    for condition in _list(status, "conditions"):
        kind_of, state = _str(condition, "type"), _str(condition, "status")
        healthy = "True" if kind_of in _POSITIVE_CONDITIONS else "False"
        if kind_of and state and state != healthy:
            reason = _str(condition, "reason") or _str(condition, "message") or ""
            problems.append(f"{kind_of}={state}" + (f": {reason}" if reason else ""))
    return WorkloadFacts(
        kind=kind,
        name=_str(metadata, "name") or "?",
        namespace=_str(metadata, "namespace") or "?",
        exists=True,
        desired=desired,
        ready=ready,
        available=available,
        updated=updated,
        images=tuple(i for c in _list(template_spec, "containers") if (i := _str(c, "image"))),
        problems=tuple(problems),
        owner=controller_of(obj),
    )


def gone_workload(kind: str, namespace: str, name: str) -> WorkloadFacts:
    return WorkloadFacts(kind=kind, name=name, namespace=namespace, exists=False)


@dataclass(frozen=True)
class Rollout:
    """The newest ReplicaSet revision of a Deployment: what runs, and since when."""

    deployment: str
    revision: int
    replicaset: str
    images: tuple[str, ...]
    started_at: datetime | None
    # The revision before it: what `kubectl rollout undo --to-revision` would go back to.
    previous_revision: int | None = None
    previous_images: tuple[str, ...] = ()

    def describe(self, alert_time: datetime) -> str:
        text = f"rollout: {self.deployment} revision {self.revision} ({self.replicaset})"
        if self.started_at is not None:
            text += f" at {iso(self.started_at)}"
            if self.started_at <= alert_time:
                lead = ago(self.started_at, alert_time).removesuffix(" ago")
                text += f", {lead} before the alert"
        if self.images:
            text += f"; image {', '.join(self.images)}"
        if self.previous_revision is not None:
            before = f" ({', '.join(self.previous_images)})" if self.previous_images else ""
            text += f"; previous revision {self.previous_revision}{before}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "revision": self.revision,
            "replicaset": self.replicaset,
            "images": list(self.images),
            "started_at": iso(self.started_at),
            "previous_revision": self.previous_revision,
            "previous_images": list(self.previous_images),
        }


def newest_rollout(deployment: Json, replicasets: Sequence[Json]) -> Rollout | None:
    """Among the ReplicaSets the Deployment controls, the one with the highest revision,
    and the revision before it."""
    metadata = _map(deployment, "metadata")
    name, uid = _str(metadata, "name"), _str(metadata, "uid")
    owned: list[tuple[int, Json]] = []
    for replicaset in replicasets:
        owner = controller_of(replicaset)
        if owner is None or owner.kind != "Deployment" or owner.name != name:
            continue
        if uid and owner.uid and owner.uid != uid:
            continue  # a ReplicaSet of an earlier Deployment with the same name
        annotations = _map(_map(replicaset, "metadata"), "annotations")
        try:
            revision = int(str(annotations.get(REVISION_ANNOTATION, "0")))
        except ValueError:
            revision = 0
        owned.append((revision, replicaset))
    if not owned or name is None:
        return None
    owned.sort(key=lambda pair: pair[0], reverse=True)
    revision, replicaset = owned[0]
    previous = owned[1] if len(owned) > 1 else None
    rs_meta = _map(replicaset, "metadata")
    return Rollout(
        deployment=name,
        revision=revision,
        replicaset=_str(rs_meta, "name") or "?",
        images=_template_images(replicaset),
        started_at=parse_time(rs_meta.get("creationTimestamp")),
        previous_revision=previous[0] if previous else None,
        previous_images=_template_images(previous[1]) if previous else (),
    )


def _template_images(obj: Json) -> tuple[str, ...]:
    template_spec = _map(_map(_map(obj, "spec"), "template"), "spec")
    return tuple(i for c in _list(template_spec, "containers") if (i := _str(c, "image")))


# ---- nodes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeFacts:
    name: str
    exists: bool
    ready: bool | None = None
    problems: tuple[str, ...] = ()  # "NotReady: reason", "MemoryPressure", ...
    # The Ready condition's own words when not ready ("Kubelet stopped posting node status.").
    not_ready_message: str | None = None
    unschedulable: bool = False
    conditions: Mapping[str, str] | None = None  # type -> status
    taints: tuple[str, ...] = ()  # key=value:Effect
    allocatable: Mapping[str, str] | None = None  # cpu, memory, pods
    requested: Mapping[str, str] | None = None  # summed over the pods on it, when listed

    @property
    def pressure(self) -> tuple[str, ...]:
        return tuple(p for p in self.problems if p in NODE_PRESSURE_CONDITIONS)

    def verdict(self) -> str:
        if not self.exists:
            return f"node {self.name}: no longer exists"
        state = ", ".join(self.problems) if self.problems else "Ready"
        if self.unschedulable:
            state += ", cordoned"
        return f"node {self.name}: {state}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "exists": self.exists,
            "ready": self.ready,
            "problems": list(self.problems),
            "not_ready_message": self.not_ready_message,
            "pressure": list(self.pressure),
            "unschedulable": self.unschedulable,
            "conditions": dict(self.conditions or {}),
            "taints": list(self.taints),
            "allocatable": dict(self.allocatable or {}),
            "requested": dict(self.requested) if self.requested is not None else None,
        }


def node_facts(node: Json) -> NodeFacts:
    conditions = _list(_map(node, "status"), "conditions")
    by_type = {t: c for c in conditions if (t := _str(c, "type"))}
    problems: list[str] = []
    ready_condition = by_type.get("Ready")
    ready = None if ready_condition is None else ready_condition.get("status") == "True"
    if ready is False and ready_condition is not None:
        reason = _str(ready_condition, "reason")
        problems.append("NotReady" + (f": {reason}" if reason else ""))
    problems += [t for t in NODE_PRESSURE_CONDITIONS if by_type.get(t, {}).get("status") == "True"]
    allocatable = _map(_map(node, "status"), "allocatable")
    taints = [_taint(t) for t in _list(_map(node, "spec"), "taints") if _str(t, "key")]
    return NodeFacts(
        name=_str(_map(node, "metadata"), "name") or "?",
        exists=True,
        ready=ready,
        problems=tuple(problems),
        not_ready_message=_str(ready_condition, "message") if ready is False and ready_condition else None,
        unschedulable=_map(node, "spec").get("unschedulable") is True,
        conditions={t: str(c.get("status")) for t, c in by_type.items()},
        taints=tuple(taints),
        allocatable={r: str(allocatable[r]) for r in ("cpu", "memory", "pods") if r in allocatable},
    )


def _taint(taint: Json) -> str:
    """As kubectl writes it: key=value:Effect."""
    value, effect = _str(taint, "value"), _str(taint, "effect")
    return f"{_str(taint, 'key')}" + (f"={value}" if value else "") + (f":{effect}" if effect else "")


def gone_node(name: str) -> NodeFacts:
    return NodeFacts(name=name, exists=False)


# ---- services --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceFacts:
    name: str
    namespace: str
    exists: bool
    selector: str | None = None
    endpoints_ready: int | None = None
    endpoints_total: int | None = None
    not_ready_pods: tuple[str, ...] = ()

    def verdict(self) -> str:
        if not self.exists:
            return f"service {self.name}: no longer exists"
        text = f"service {self.name}"
        if self.endpoints_total is not None:
            text += f": {self.endpoints_ready}/{self.endpoints_total} endpoints ready"
        elif self.selector is None:
            text += ": no selector"
        if self.not_ready_pods:
            text += f" (not ready: {', '.join(self.not_ready_pods[:5])})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "exists": self.exists,
            "selector": self.selector,
            "endpoints_ready": self.endpoints_ready,
            "endpoints_total": self.endpoints_total,
            "not_ready_pods": list(self.not_ready_pods),
        }


def service_facts(service: Json, endpoint_slices: Sequence[Json] | None) -> ServiceFacts:
    metadata = _map(service, "metadata")
    ready = total = 0
    not_ready: list[str] = []
    for endpoint in (e for s in endpoint_slices or () for e in _list(s, "endpoints")):
        total += 1
        # An endpoint without conditions.ready counts as ready (the API's own rule).
        if _map(endpoint, "conditions").get("ready", True) is not False:
            ready += 1
        else:
            not_ready.append(_str(_map(endpoint, "targetRef"), "name") or "?")
    return ServiceFacts(
        name=_str(metadata, "name") or "?",
        namespace=_str(metadata, "namespace") or "?",
        exists=True,
        selector=label_selector(_map(service, "spec").get("selector")),
        endpoints_ready=ready if endpoint_slices is not None else None,
        endpoints_total=total if endpoint_slices is not None else None,
        not_ready_pods=tuple(not_ready),
    )


def gone_service(namespace: str, name: str) -> ServiceFacts:
    return ServiceFacts(name=name, namespace=namespace, exists=False)


# ---- events ------------------------------------------------------------------------------------

# How much a Warning message says, most first: what the registry, the scheduler or the
# volume plugin answered outweighs the kubelet's generic back-off lines that follow it.
_REGISTRY = re.compile(
    r"failed to pull|not found|manifest unknown|pull access denied|unauthorized|"
    r"failed to resolve reference|no such host|toomanyrequests|invalid reference format",
    re.IGNORECASE,
)
_GENERIC = re.compile(r"^(error: (imagepullbackoff|errimagepull)|back-off |backoff )", re.IGNORECASE)
_SCHEDULING_REASONS = frozenset({"FailedScheduling", "FailedDaemonPod", "FailedCreate", "NotTriggerScaleUp"})
_VOLUME_REASONS = frozenset(
    {"FailedMount", "FailedAttachVolume", "ProvisioningFailed", "VolumeResizeFailed", "FailedBinding"}
)


# A registry's answer comes last in a long message ("...: <image>: not found"): keep it.
EVENT_MESSAGE_CHARS = 1000
SUMMARY_MESSAGE_CHARS = 240


def middle_cut(text: str, max_chars: int) -> str:
    """`text` within `max_chars`, cut in the middle: the head says what, the tail why."""
    if len(text) <= max_chars:
        return text
    head = max_chars * 2 // 5
    return text[:head] + " … " + text[-(max_chars - head - 3) :]


def message_weight(reason: str, message: str) -> int:
    """How informative one Warning message is: registry errors, then scheduling failures,
    then mount failures, then anything specific, generic back-off lines last."""
    if _GENERIC.match(message):
        return 0
    if _REGISTRY.search(message) and ("image" in message.lower() or reason in ("Failed", "ErrImagePull")):
        return 4
    if reason in _SCHEDULING_REASONS:
        return 3
    if reason in _VOLUME_REASONS or "MountVolume" in message:
        return 2
    return 1


@dataclass(frozen=True)
class EventMessage:
    """One distinct message under a reason, with how often it was reported."""

    message: str
    count: int
    last_seen: datetime | None
    weight: int

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "count": self.count, "last_seen": iso(self.last_seen)}


@dataclass(frozen=True)
class EventFacts:
    """Warning events of one reason, folded together; distinct messages are kept apart,
    most informative first, and `message` is the most informative one."""

    reason: str
    count: int
    last_seen: datetime | None
    message: str
    objects: tuple[str, ...]  # "Pod/name" of every object it was reported for
    messages: tuple[EventMessage, ...] = ()

    @property
    def weight(self) -> int:
        return max((m.weight for m in self.messages), default=0)

    def describe(self, now: datetime) -> str:
        seen = f", last {ago(self.last_seen, now)}" if self.last_seen else ""
        text = f"{self.reason} x{self.count}{seen}: {middle_cut(self.message, SUMMARY_MESSAGE_CHARS)}"
        others = [m for m in self.messages if m.message != self.message]
        if others:
            text += "; also " + "; ".join(f"x{m.count}: {middle_cut(m.message, 120)}" for m in others[:3])
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "count": self.count,
            "last_seen": iso(self.last_seen),
            "message": self.message,
            "objects": list(self.objects),
            "messages": [m.to_json() for m in self.messages],
        }


def event_last_seen(event: Json) -> datetime | None:
    # core/v1 Events fill different time fields depending on the reporter's API version.
    for candidate in (
        _map(event, "series").get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        _map(event, "metadata").get("creationTimestamp"),
    ):
        moment = parse_time(candidate)
        if moment is not None:
            return moment
    return None


def event_count(event: Json) -> int:
    return _int(_map(event, "series"), "count") or _int(event, "count") or 1


_FLOOR = datetime.min.replace(tzinfo=UTC)


def warning_events(events: Iterable[Json], since: datetime | None, limit: int = 10) -> tuple[EventFacts, ...]:
    """Warning events seen since `since`, one entry per reason with its distinct messages
    counted apart; the most informative reasons first, then the most recent.

    The same event may come from several lookups (a pod's and its node's): it is
    counted once, by uid.
    """
    seen_uids: set[str] = set()
    by_reason: dict[str, dict[str, EventMessage]] = {}
    objects: dict[str, dict[str, None]] = {}
    for event in events:
        if _str(event, "type") != "Warning":
            continue
        uid = _str(_map(event, "metadata"), "uid")
        if uid is not None:
            if uid in seen_uids:
                continue
            seen_uids.add(uid)
        last_seen = event_last_seen(event)
        if since is not None and last_seen is not None and last_seen < since:
            continue
        reason = _str(event, "reason") or "Unknown"
        involved = _map(event, "involvedObject")
        objects.setdefault(reason, {})[f"{_str(involved, 'kind') or '?'}/{_str(involved, 'name') or '?'}"] = None
        message = clean_text(_str(event, "message") or "", EVENT_MESSAGE_CHARS)
        messages = by_reason.setdefault(reason, {})
        previous = messages.get(message)
        count = event_count(event) + (previous.count if previous else 0)
        newest = last_seen if previous is None or _later(last_seen, previous.last_seen) else previous.last_seen
        messages[message] = EventMessage(message, count, newest, message_weight(reason, message))
    folded = [_fold(reason, messages.values(), tuple(objects[reason])) for reason, messages in by_reason.items()]
    # Registry, scheduling and volume answers lead; the rest keep their recency order.
    ordered = sorted(folded, key=lambda e: (e.weight if e.weight >= 2 else 0, e.last_seen or _FLOOR), reverse=True)
    return tuple(ordered[:limit])


def _fold(reason: str, messages: Iterable[EventMessage], objects: tuple[str, ...]) -> EventFacts:
    ordered = tuple(sorted(messages, key=lambda m: (m.weight, m.last_seen or _FLOOR, m.count), reverse=True))
    newest = max((m.last_seen for m in ordered if m.last_seen is not None), default=None)
    return EventFacts(
        reason=reason,
        count=sum(m.count for m in ordered),
        last_seen=newest,
        message=ordered[0].message,
        objects=objects,
        messages=ordered,
    )


def _later(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and (b is None or a >= b)
