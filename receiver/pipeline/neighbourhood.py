"""An incident's neighbourhood: the objects its alerts are about and what the Kubernetes
enricher found around them, as root-cause suspects with clues in words, and the services
whose metrics may rank.

From each firing alert: its subject and related objects (enrichers.kubernetes.subject,
from what the labels mean), and from the enrichment facts the pod's owner, its node, the
workload's conditions, a rollout shortly before the alert, and Warning events (an image
the registry did not find, insufficient capacity, a volume that cannot mount, a Job's
backoff limit). Facts are read tolerant of absence: stored outcomes of older versions
and subjects the enricher does not look up yet simply give fewer clues.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from enrichers.kubernetes.report import (
    EventState,
    KubernetesFacts,
    NodeState,
    PodState,
    RolloutState,
    WorkloadState,
    read_facts,
)
from enrichers.kubernetes.subject import CLUSTER_SCOPED, Subject, resolve
from enrichers.telemetry.naming import alert_service, column_service, is_exporter_name, workload_of_pod
from enrichers.times import parse_time
from rca.graph import nearby
from rca.model import Edge
from rca.suspects import ALERT, Clue, Suspect
from receiver.pipeline.stage import Work

ROLLOUT_WINDOW = timedelta(hours=1)  # a rollout this long before an alert is a suspect
TEXT_CHARS = 160  # evidence stays one line
# Kinds that run as a service of the signal table (the workload's name, as the default
# `rca.signals` name pods' workloads); an HPA is named after its target more often than not.
SERVICE_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Service", "HorizontalPodAutoscaler"}
)
# Monitoring components: busy everywhere, never the cause of an alert they only reported.
_MONITORING_HINTS = ("prometheus", "alertmanager", "grafana")


# ---- clues from facts: what each finding says, in words ----------------------------------

# Warning events that name a cause: (reason, message pattern, topic, text). In the text
# `{what}` is the object ("Job shop/backup"), `{image}` the image the message names and
# `{message}` the message. First match wins; other events name no cause.
_EVENT_CLUES: tuple[tuple[str, str, str, str], ...] = (
    ("Failed", r"not found|manifest unknown|does not exist", "image", "image {image} not found in registry"),
    ("Failed", r"pull access denied|unauthorized", "image", "image {image} cannot be pulled: access denied"),
    ("Failed", r"[Ff]ailed to pull image|ErrImagePull", "image", "image {image} cannot be pulled: {message}"),
    ("FailedScheduling", r"[Ii]nsufficient|Too many pods", "capacity", "insufficient capacity: {message}"),
    ("FailedScheduling", r"unbound|PersistentVolumeClaim", "volume", "{what} has an unbound volume: {message}"),
    ("FailedCreate", r"exceeded quota", "quota", "quota exceeded: {message}"),
    ("FailedMount", r"", "volume", "{what} cannot mount a volume: {message}"),
    ("FailedAttachVolume", r"", "volume", "{what} cannot attach a volume: {message}"),
    ("ProvisioningFailed", r"", "volume", "{what} cannot be provisioned: {message}"),
    ("BackoffLimitExceeded", r"", "job", "{what} failed: BackoffLimitExceeded ({message})"),
    ("DeadlineExceeded", r"", "job", "{what} failed: DeadlineExceeded ({message})"),
    ("Evicted", r"", "evicted", "{what} evicted: {message}"),
    ("NodeNotReady", r"", "node", "{what}: node NotReady ({message})"),
)
_IMAGE_IN_MESSAGE = re.compile(r'image "([^"]+)"|([\w./-]+:[\w.-]+): not found')

# Container states that name a cause, by waiting reason: (topic, text).
_WAITING_CLUES: Mapping[str, tuple[str, str]] = {
    "ImagePullBackOff": ("image", "image {image} cannot be pulled ({reason})"),
    "ErrImagePull": ("image", "image {image} cannot be pulled ({reason})"),
    "InvalidImageName": ("image", "image name {image} is invalid"),
    "CrashLoopBackOff": ("crash", "{pod} CrashLoopBackOff, {restarts} restarts{last}"),
    "CreateContainerConfigError": ("config", "{pod} cannot start: CreateContainerConfigError {message}"),
    "CreateContainerError": ("config", "{pod} cannot start: CreateContainerError {message}"),
    "RunContainerError": ("config", "{pod} cannot start: RunContainerError {message}"),
}

# Workload conditions that name a cause: (condition text prefix, topic, text).
_CONDITION_CLUES: tuple[tuple[str, str, str], ...] = (
    ("Failed=True", "job", "failed: {reason}"),
    ("Progressing=False", "rollout", "rollout stalled: {reason}"),
    ("ReplicaFailure=True", "create", "cannot create pods: {reason}"),
)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M UTC")


def event_clue(event: EventState, what: str) -> Clue | None:
    for reason, pattern, topic, text in _EVENT_CLUES:
        if event.reason == reason and re.search(pattern, event.message):
            found = _IMAGE_IN_MESSAGE.search(event.message)
            image = next((g for g in found.groups() if g), "?") if found else "?"
            return Clue(topic, _clip(text.format(what=what, image=image, message=event.message)))
    return None


def container_clues(pod: PodState) -> list[Clue]:
    """What the pod's containers say about why it does not run."""
    clues: list[Clue] = []
    for c in pod.containers:
        last = c.last_termination or c.terminated
        rule = _WAITING_CLUES.get(c.waiting_reason or "")
        if rule is not None:
            topic, text = rule
            ended = f", last {last.reason} (exit {last.exit_code})" if last and last.reason else ""
            values = {
                "image": c.image or "?",
                "reason": c.waiting_reason,
                "pod": pod.name,
                "restarts": c.restarts,
                "last": ended,
                "message": c.waiting_message or "",
            }
            clues.append(Clue(topic, _clip(text.format(**values))))
        if last is not None and last.reason == "OOMKilled":
            limit = c.limits.get("memory")
            at = f"at its memory limit {limit}" if limit else "with no memory limit set"
            clues.append(Clue("memory", f"container {c.name or '?'} OOMKilled (exit {last.exit_code}) {at}"))
    if pod.reason == "Evicted":
        clues.append(Clue("evicted", _clip(f"{pod.name} evicted: {pod.message or ''}")))
    if pod.unschedulable:
        unschedulable = EventState(reason="FailedScheduling", message=pod.unschedulable)
        clue = event_clue(unschedulable, f"Pod {pod.name}")
        clues.append(clue or Clue("scheduling", _clip(f"{pod.name} unschedulable: {pod.unschedulable}"), 0.5))
    return clues


def node_clues(node: NodeState) -> list[Clue]:
    if not node.exists:
        return [Clue("node", f"node {node.name} no longer exists")]
    clues = []
    for problem in node.problems:
        state, _, why = problem.partition(": ")
        topic = "node" if state == "NotReady" else f"node {state}"
        clues.append(Clue(topic, f"node {node.name} {state}" + (f" ({why})" if why else "")))
    if node.unschedulable:
        clues.append(Clue("cordoned", f"node {node.name} cordoned", 0.5))
    return clues


def workload_clues(workload: WorkloadState) -> list[Clue]:
    what = f"{workload.kind} {workload.name}"
    if workload.exists is False:
        return [Clue("gone", f"{what} no longer exists", 0.5)]
    clues = []
    for problem in workload.problems:
        rule = next((r for r in _CONDITION_CLUES if problem.startswith(r[0])), None)
        reason = problem.partition(": ")[2] or problem
        if rule is not None:
            clues.append(Clue(rule[1], _clip(f"{what} " + rule[2].format(reason=reason))))
        else:
            ready = f"{workload.ready or 0}/{workload.desired} ready, " if workload.desired is not None else ""
            clues.append(Clue("replicas", _clip(f"{what}: {ready}{problem}"), 0.5))
    return clues


def rollout_clue(rollout: RolloutState, alert_time: datetime) -> Clue | None:
    """A rollout shortly before the alert: what changed, when."""
    started = parse_time(rollout.started_at)
    if started is None or not timedelta(0) <= alert_time - started <= ROLLOUT_WINDOW:
        return None
    minutes = int((alert_time - started).total_seconds() // 60)
    when = "less than a minute" if minutes < 1 else f"{minutes} min"
    revision = f"revision {rollout.revision}" if rollout.revision is not None else "a new revision"
    image = f", image {', '.join(rollout.images)}" if rollout.images else ""
    return Clue("rollout", f"rolled out {when} before the alert ({revision}{image})")


# ---- the neighbourhood ----------------------------------------------------------------------


@dataclass
class Neighbourhood:
    suspects: list[Suspect] = field(default_factory=list)
    services: set[str] = field(default_factory=set)  # as the signal table names them
    about: set[str] = field(default_factory=set)  # the services the alerts are about

    def candidates(self, available: Iterable[str], edges: Iterable[Edge] = ()) -> set[str]:
        """The services the metric ranking may name: the neighbourhood's and their
        dependencies, or when it names none every service in the table. A monitoring
        component (the exporter that reported the alert, Prometheus) only when an alert is
        about it: busy everywhere, it is never the cause of what it merely reported."""
        own = {s for s in self.services if self._may_rank(s)}
        pool = nearby(edges, own) if own else set(available)
        return {s for s in pool if self._may_rank(s)}

    def _may_rank(self, service: str) -> bool:
        return service in self.about or not _is_monitoring(service)

    @property
    def found_something(self) -> bool:
        """Whether any object has a clue beyond the alert about it."""
        return any(c.topic != ALERT for s in self.suspects for c in s.clues)

    def add(self, kind: str, name: str, namespace: str | None, *clues: Clue) -> Suspect:
        suspect = Suspect(kind, name, namespace, service_of(kind, name), tuple(clues))
        self.suspects.append(suspect)
        if suspect.service:
            self.services.add(suspect.service)
        return suspect


def _is_monitoring(service: str) -> bool:
    return is_exporter_name(service) or any(hint in service for hint in _MONITORING_HINTS)


def service_of(kind: str, name: str) -> str | None:
    if kind == "Pod":
        return None  # its workload takes its metrics, and the pod is one of its replicas
    return column_service(name) if kind in SERVICE_KINDS else None


def neighbourhood(batch: Sequence[Work]) -> Neighbourhood:
    """The suspects and services around the batch's firing alerts."""
    around = Neighbourhood()
    for work in batch:
        if work.alert.status == "firing":
            _around_alert(around, work)
    return around


def joined(parts: Iterable[Neighbourhood]) -> Neighbourhood:
    """The neighbourhoods of several batches as one: `neighbourhood(a + b)` is
    `joined([neighbourhood(a), neighbourhood(b)])`."""
    around = Neighbourhood()
    for part in parts:
        around.suspects += part.suspects
        around.services |= part.services
        around.about |= part.about
    return around


def _around_alert(around: Neighbourhood, work: Work) -> None:
    alert = work.alert
    resolution = resolve(alert.labels)
    subject = resolution.subject
    service = alert_service(alert.labels)
    if service is not None:
        around.services.add(column_service(service))
    if subject.kind != "Cluster":
        suspect = around.add(subject.kind, subject.name, subject.namespace, _alert_clue(work))
        own = column_service(workload_of_pod(subject.name)) if subject.kind == "Pod" else suspect.service
        if own is not None:
            around.services.add(own)
            around.about.add(own)
    for related in resolution.related:
        around.add(related.kind, related.name, related.namespace)
    found = work.enrichment.get("kubernetes")
    if found is not None:
        _from_facts(around, subject, read_facts(found.facts), alert.starts_at)


def _alert_clue(work: Work) -> Clue:
    alert = work.alert
    said = alert.annotations.get("description") or alert.annotations.get("summary") or ""
    text = f"{alert.name} firing since {_clock(alert.starts_at)}" + (f": {said}" if said else "")
    return Clue(ALERT, _clip(text))


def _from_facts(around: Neighbourhood, subject: Subject, found: KubernetesFacts, alert_time: datetime) -> None:
    namespace = subject.namespace
    pod, workload, rollout, node = found.pod, found.workload, found.rollout, found.node
    # An object with no name (or no kind) names no suspect.
    owners = [(o.kind, o.name) for o in found.owners if o.kind is not None and o.name is not None]

    # Who answers for a failing pod: its top owner (the Deployment, not the ReplicaSet),
    # the workload the alert is about, or the pod itself.
    culprit: tuple[str, str] | None = None
    if owners:
        culprit = owners[-1]
    elif subject.kind in SERVICE_KINDS - {"Service", "HorizontalPodAutoscaler"}:
        culprit = (subject.kind, subject.name)
    if workload is not None and workload.kind is not None and workload.name is not None:
        around.add(workload.kind, workload.name, workload.namespace or namespace, *workload_clues(workload))
    if rollout is not None and rollout.deployment is not None:
        clue = rollout_clue(rollout, alert_time)
        around.add("Deployment", rollout.deployment, namespace, *((clue,) if clue else ()))
    if node is not None and node.name is not None:
        around.add("Node", node.name, None, *node_clues(node))
    # On a node, a volume or a scrape target the pods are what the subject affects: their
    # states are its symptoms, their services its neighbourhood.
    pods_are_symptoms = subject.kind not in SERVICE_KINDS | {"Pod"}
    # Events first: the registry's or the scheduler's own words say more than a state.
    for event in found.events:
        # Folded events name every object they were seen for; the first says what it was.
        kind, _, name = (event.objects[:1] or ("?/?",))[0].partition("/")
        if kind == "Pod" and pods_are_symptoms:
            continue
        clue = event_clue(event, f"{kind} {name}")
        if clue is None:
            continue
        if kind == "Pod" and culprit is not None:
            kind, name = culprit
        around.add(kind, name, None if kind in CLUSTER_SCOPED else namespace, clue)
    if pod is not None and pod.name is not None and pod.exists and not pods_are_symptoms:
        kind, name = culprit or ("Pod", pod.name)
        around.add(kind, name, pod.namespace or namespace, *container_clues(pod))
    for brief in found.pods:
        if brief.name is not None:
            around.services.add(column_service(workload_of_pod(brief.name)))
    for kind, name in owners:
        around.add(kind, name, namespace)
