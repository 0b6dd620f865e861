"""What to do next: the one or two actions an experienced engineer takes for an alert's
subject and what KubeBot found out about it, with the exact command where one exists.

One declarative table, `HINTS`: each row says when it applies (a predicate over the
`Situation`, a typed reading of the subject, the Kubernetes enrichment's facts and the
labels) and what to say (a `string.Template` of words, and optionally one of a
command). Rows are read in order; the first matches win, at most `MAX_LINES` lines.

Labels and the facts read from the cluster are untrusted: a command line is written only
when every name in it passed validation (Kubernetes object names: DNS-1123 characters;
sizes, revisions and paths by their own strict forms), otherwise the row says only its
words. Words are one line each and short; mentions in them are neutralised by render.
"""

from __future__ import annotations

import functools
import math
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from enrichers.kubernetes.report import ContainerState, KubernetesFacts, PodState
from enrichers.kubernetes.subject import Subject
from enrichers.times import parse_time

MAX_LINES = 2
WORD_CHARS = 100  # a value shown in words (an image, a scheduler message) is cut here
# A rollout this long before the alert (or less) is the first suspect.
RECENT_ROLLOUT = timedelta(hours=2)
CLOCK_SKEW = timedelta(minutes=5)
GROWTH = 1.5  # a bigger memory limit or claim: half as much again, rounded up

# ---- validation: what may go into a command line -------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_PATH = re.compile(r"^/[A-Za-z0-9._/+-]{0,200}$")
_SELECTOR_TERM = r"[A-Za-z0-9]([A-Za-z0-9._/-]{0,250}[A-Za-z0-9])?=([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?"
_SELECTOR = re.compile(rf"^{_SELECTOR_TERM}(,{_SELECTOR_TERM})*$")
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_UNITS |= {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "": 1}


def _label(value: str) -> bool:
    return bool(_DNS_LABEL.match(value))


def _subdomain(value: str) -> bool:
    return bool(_DNS_SUBDOMAIN.match(value))


def _number(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) < 10


def _quantity(value: str) -> bool:
    return bool(_QUANTITY.match(value))


def _path(value: str) -> bool:
    return bool(_PATH.match(value)) and ".." not in value.split("/")


def _selector(value: str) -> bool:
    return bool(_SELECTOR.match(value))


# Which rule vouches for each value a command may name; a value with no rule is words only.
_VALID: Mapping[str, Callable[[str], bool]] = {
    "namespace": _label,
    "name": _subdomain,
    "container": _label,
    "pod": _subdomain,
    "node": _subdomain,
    "workload": _subdomain,
    "workload_resource": _label,
    "described": _label,
    "cronjob": _subdomain,
    "rerun": _label,
    "service": _label,
    "selector": _selector,
    "storage_class": _subdomain,
    "good_revision": _number,
    "bigger_memory": _quantity,
    "bigger_claim": _quantity,
    "bigger_max": _number,
    "mountpoint": _path,
    "not_ready_pod": _subdomain,
    "quota": _subdomain,
}


# ---- what is known ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Situation:
    """What the hints read: the subject, and the facts that decide what to do."""

    kind: str
    name: str
    namespace: str | None = None
    exists: bool = True  # False when the enricher found the subject gone
    container: str | None = None
    pod: str | None = None  # the pod looked at closely
    waiting: str | None = None  # its worst container's waiting reason (CrashLoopBackOff, ...)
    ended: str | None = None  # why that container's last instance ended (OOMKilled, Error, ...)
    image: str | None = None
    image_error: str | None = None  # "not found" | "denied" | "other": what the registry said
    memory_limit: str | None = None
    memory_peak: str | None = None
    unschedulable: str | None = None  # the scheduler's message for a pending pod
    missing_storage_class: str | None = None  # a StorageClass a claim asks for and that does not exist
    quota: str | None = None  # a ResourceQuota that refused to admit the pods
    workload_kind: str | None = None  # the Deployment/StatefulSet/DaemonSet/Job behind it
    workload: str | None = None
    workload_problems: tuple[str, ...] = ()
    cronjob: str | None = None  # the CronJob that created the Job
    job_reason: str | None = None  # BackoffLimitExceeded, DeadlineExceeded, ...
    revision: int | None = None  # the Deployment's newest revision
    good_revision: int | None = None  # the last revision that worked, when known
    rollout_recent: bool = False  # the newest revision started shortly before the alert
    node: str | None = None
    node_problems: tuple[str, ...] = ()  # NotReady..., MemoryPressure, DiskPressure, PIDPressure
    mountpoint: str | None = None  # a node filesystem alert's mount point
    claim_capacity: str | None = None
    storage_class: str | None = None
    expandable: bool | None = None  # the storage class's allowVolumeExpansion
    hpa_current: int | None = None
    hpa_max: int | None = None
    service: str | None = None
    selector: str | None = None
    not_ready_pod: str | None = None

    @functools.cached_property
    def extra(self) -> Mapping[str, str]:
        """Values the templates need that are computed, not read (sizes to grow to, names)."""
        return _derived(self)

    @property
    def node_not_ready(self) -> bool:
        return any(p.startswith("NotReady") for p in self.node_problems)

    def pressure(self, kind: str) -> bool:
        return f"{kind}Pressure" in self.node_problems

    def scheduling(self, *words: str) -> bool:
        text = (self.unschedulable or "").lower()
        return any(w.lower() in text for w in words)


# ---- the table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hint:
    when: Callable[[Situation], bool]
    say: str  # words, a string.Template; the row does not apply when a value is unknown
    run: str | None = None  # the command, a string.Template over validated values only


_ROLLBACK_SUSPECT = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull")


def _after_rollout(s: Situation) -> bool:
    """A Deployment whose newest revision broke it: pods failing just after it started,
    or the rollout itself past its progress deadline."""
    if s.workload_kind != "Deployment" or not (s.revision and s.revision > 1):
        return False
    failing = s.waiting in _ROLLBACK_SUSPECT or s.ended in ("Error", "OOMKilled")
    stuck = any("ProgressDeadlineExceeded" in p for p in s.workload_problems)
    return (s.rollout_recent and failing) or stuck


def _pulling(s: Situation) -> bool:
    return s.waiting in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName")


def _oom(s: Situation) -> bool:
    return s.ended == "OOMKilled"


def _node_trouble(s: Situation) -> bool:
    return s.kind == "Node" and bool(s.node_problems)


def _kind(*kinds: str) -> Callable[[Situation], bool]:
    return lambda s: s.kind in kinds


_DESCRIBED = {
    "Pod": "pod",
    "Deployment": "deployment",
    "ReplicaSet": "replicaset",
    "StatefulSet": "statefulset",
    "DaemonSet": "daemonset",
    "Job": "job",
    "CronJob": "cronjob",
    "HorizontalPodAutoscaler": "hpa",
    "PersistentVolumeClaim": "pvc",
    "PodDisruptionBudget": "pdb",
}
_TAINTS = "kubectl get nodes -o custom-columns=NAME:.metadata.name,TAINTS:.spec.taints"

_SITUATION_FIELD_SET = frozenset(f.name for f in fields(Situation))

HINTS: tuple[Hint, ...] = (
    # Memory: the limit, the peak, and what to raise.
    Hint(
        lambda s: _oom(s) and s.memory_limit not in (None, "none"),
        "Container $container was OOMKilled at its memory limit $memory_limit$peak_words:"
        " raise the limit (e.g. to $bigger_memory) or fix the leak",
        "kubectl -n $namespace set resources $workload_resource/$workload -c $container --limits=memory=$bigger_memory",
    ),
    Hint(
        lambda s: _oom(s) and s.memory_limit == "none",
        "Container $container was OOMKilled without a memory limit: the node ran out of memory;"
        " give it a memory request and limit",
    ),
    # Images: the tag the registry did not find, or the secret it wanted.
    Hint(
        lambda s: _pulling(s) and s.image_error == "not found" and s.workload is not None,
        "The registry has no image $image: fix the tag in $workload_kind $workload",
    ),
    Hint(
        lambda s: _pulling(s) and s.image_error == "not found" and s.workload is None,
        "The registry has no image $image: fix the tag in the pod's spec",
    ),
    Hint(
        lambda s: _pulling(s) and s.image_error == "denied",
        "The registry refused to serve $image: check the pod's imagePullSecrets",
        "kubectl -n $namespace get pod $pod -o jsonpath='{.spec.imagePullSecrets}'",
    ),
    Hint(
        lambda s: _pulling(s) and s.image_error not in ("not found", "denied"),
        "Cannot pull $image: check the tag, and imagePullSecrets if the registry is private",
        "kubectl -n $namespace describe pod $pod",
    ),
    # A rollout that broke it: undo it, to the last good revision when known.
    Hint(
        lambda s: _after_rollout(s) and s.good_revision is not None,
        "Revision $revision rolled out just before: roll back to revision $good_revision, the last good one",
        "kubectl -n $namespace rollout undo deployment/$workload --to-revision=$good_revision",
    ),
    Hint(
        lambda s: _after_rollout(s) and s.good_revision is None,
        "Revision $revision rolled out just before: roll back to the one before it",
        "kubectl -n $namespace rollout undo deployment/$workload",
    ),
    # Containers that will not run.
    Hint(
        lambda s: s.waiting == "CrashLoopBackOff" and s.container is not None,
        "Read why the last instance exited",
        "kubectl -n $namespace logs $pod -c $container --previous",
    ),
    Hint(
        lambda s: s.waiting == "CrashLoopBackOff" and s.container is None,
        "Read why the last instance exited",
        "kubectl -n $namespace logs $pod --previous",
    ),
    Hint(
        lambda s: s.waiting in ("CreateContainerConfigError", "CreateContainerError"),
        "A ConfigMap, Secret or key the pod needs is missing: its events say which",
        "kubectl -n $namespace describe pod $pod",
    ),
    # Pods that cannot be created, or placed.
    Hint(
        lambda s: s.quota is not None,
        "ResourceQuota $quota refuses its pods: raise the quota or lower the pods' requests and limits",
        "kubectl -n $namespace describe resourcequota $quota",
    ),
    Hint(
        lambda s: s.missing_storage_class is not None,
        "Its claims ask for StorageClass $missing_storage_class, which does not exist:"
        " create it, or give the claims a class that exists",
        "kubectl get storageclass",
    ),
    Hint(
        lambda s: s.scheduling("unbound", "persistentvolumeclaim"),
        "A volume of its pods is not bound: check the claims, their StorageClass and its provisioner",
        "kubectl -n $namespace get pvc",
    ),
    Hint(
        lambda s: s.scheduling("unbound", "persistentvolumeclaim"),
        "See which StorageClasses exist and which is the default",
        "kubectl get storageclass",
    ),
    Hint(
        lambda s: s.scheduling("insufficient"),
        "No node has room for its pods ($unschedulable): add nodes or lower the pods' requests",
    ),
    Hint(
        lambda s: s.scheduling("insufficient"),
        "See what each node has allocated",
        'kubectl describe nodes | grep -A 8 "Allocated resources"',
    ),
    Hint(
        lambda s: (
            s.scheduling("taint")
            or (s.kind == "DaemonSet" and s.waiting is None and s.ended is None and s.quota is None)
        ),
        "Nodes may carry taints its pods do not tolerate: compare the nodes' taints with its tolerations",
        _TAINTS,
    ),
    # Jobs: why it failed, its logs, and how to run it again.
    Hint(
        lambda s: s.kind == "Job" and s.job_reason == "DeadlineExceeded",
        "Job $name ran past its activeDeadlineSeconds: see whether it hangs or needs longer",
        "kubectl -n $namespace logs job/$name",
    ),
    Hint(
        lambda s: s.kind == "Job" and s.job_reason is not None,
        "Job $name failed ($job_reason): read its pods' logs",
        "kubectl -n $namespace logs job/$name",
    ),
    Hint(_kind("Job"), "Read its pods' logs", "kubectl -n $namespace logs job/$name"),
    Hint(
        lambda s: s.kind == "Job" and s.cronjob is not None,
        "After the fix, run it again from CronJob $cronjob",
        "kubectl -n $namespace create job $rerun --from=cronjob/$cronjob",
    ),
    # Autoscaling: the ceiling, and the metric that pushes against it.
    Hint(
        lambda s: s.kind == "HorizontalPodAutoscaler" and s.hpa_max is not None and s.hpa_current == s.hpa_max,
        "HPA $name is at its maximum of $hpa_max replicas: raise maxReplicas if the load is real",
        'kubectl -n $namespace patch hpa $name -p \'{"spec":{"maxReplicas":$bigger_max}}\'',
    ),
    Hint(
        _kind("HorizontalPodAutoscaler"),
        "See the metric driving it, current against target",
        "kubectl -n $namespace describe hpa $name",
    ),
    # Volumes: expand when the class allows it, else make room.
    Hint(
        lambda s: s.kind == "PersistentVolumeClaim" and s.expandable is True,
        "Expand the claim (its StorageClass $storage_class allows it)",
        'kubectl -n $namespace patch pvc $name -p \'{"spec":{"resources":{"requests":{"storage":"$bigger_claim"}}}}\'',
    ),
    Hint(
        lambda s: s.kind == "PersistentVolumeClaim" and s.expandable is False,
        "Its StorageClass $storage_class cannot expand volumes: free space on it, or move the data to a bigger claim",
    ),
    Hint(
        lambda s: s.kind == "PersistentVolumeClaim" and s.expandable is None and s.storage_class is not None,
        "Expand the claim if its StorageClass allows it, else free space or move the data",
        "kubectl get storageclass $storage_class -o jsonpath='{.allowVolumeExpansion}'",
    ),
    Hint(
        lambda s: s.kind == "PersistentVolumeClaim" and s.expandable is None,
        "Expand the claim if its StorageClass allows it, else free space or move the data",
        "kubectl -n $namespace get pvc $name -o jsonpath='{.spec.storageClassName}'",
    ),
    # Nodes: what fills a filesystem; keep pods off a broken node and move them.
    Hint(
        lambda s: s.kind == "Node" and s.mountpoint is not None,
        "On node $name, see what fills $mountpoint",
        "kubectl debug node/$node -it --image=busybox -- chroot /host du -xh -d 1 $mountpoint",
    ),
    Hint(
        lambda s: s.kind == "Node" and (s.mountpoint is not None or s.pressure("Disk")),
        "On node $name, remove unused container images",
        "crictl rmi --prune",
    ),
    Hint(_node_trouble, "Keep new pods off node $name", "kubectl cordon $node"),
    Hint(_node_trouble, "Move its pods elsewhere", "kubectl drain $node --ignore-daemonsets --delete-emptydir-data"),
    # Scrape targets: the endpoints, then the pods behind them.
    Hint(_kind("Service"), "See which pods back service $name", "kubectl -n $namespace get endpoints $service"),
    Hint(
        lambda s: s.kind == "Service" and s.not_ready_pod is not None,
        "Look at a pod behind it that is not ready",
        "kubectl -n $namespace describe pod $not_ready_pod",
    ),
    Hint(
        lambda s: s.kind == "Service" and s.selector is not None,
        "Check the pods behind it",
        "kubectl -n $namespace get pods -l $selector",
    ),
    # Anything else: the object's own account, unless it is gone.
    Hint(
        lambda s: s.kind == "Node" and s.exists, "See its conditions and what runs on it", "kubectl describe node $node"
    ),
    Hint(lambda s: s.kind == "PersistentVolume", "See its phase and claim", "kubectl describe pv $name"),
    Hint(
        lambda s: s.kind in _DESCRIBED and s.exists,
        "See its state and events",
        "kubectl -n $namespace describe $described $name",
    ),
)


# ---- reading the facts ---------------------------------------------------------------------------


def advice(
    subject: Subject,
    found: KubernetesFacts,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    alert_time: datetime | None = None,
) -> tuple[str, ...]:
    """At most `MAX_LINES` lines: what to do about `subject`, given what was `found`
    (`read_facts` of the Kubernetes facts, which keeps every part of the right shape).
    `annotations` are the rule's; its runbook is rendered as a link by the page itself."""
    del annotations  # read by the page (runbook_url); kept in the signature for hints to come
    return say(situation(subject, found, labels, alert_time))


def say(situation: Situation, hints: Iterable[Hint] = HINTS) -> tuple[str, ...]:
    """The lines of the first rows that apply; a command already given is not repeated."""
    lines: list[str] = []
    commands: set[str] = set()
    values = _Values(situation)
    for hint in hints:
        if len(lines) >= MAX_LINES:
            break
        if not hint.when(situation):
            continue
        found = _line(hint, values)
        if found is None:
            continue
        text, command = found
        if command in commands or (command is None and text in lines):
            continue
        lines.append(f"{text}: {command}" if command else text)
        if command:
            commands.add(command)
    return tuple(lines)


def _line(hint: Hint, values: _Values) -> tuple[str, str | None] | None:
    """The row's words, and its command when every value in it is a valid name; None when
    the words speak of something not known here."""
    words, needed = _template(hint.say)
    worded = values.words(needed)
    if worded is None:
        return None
    text = words.substitute(worded)
    if hint.run is None:
        return text, None
    command, names = _template(hint.run)
    raw = values.raw(names)
    if raw is None or not all(name in _VALID and _VALID[name](raw[name]) for name in names):
        return text, None  # an unvalidated name never reaches a command line
    return text, command.substitute(raw)


class _Values:
    """A situation's values as template text, read only for the names a row uses (most
    situations apply to one or two rows of the table)."""

    def __init__(self, situation: Situation) -> None:
        self._situation = situation

    def raw(self, names: Iterable[str]) -> dict[str, str] | None:
        """The values as they are, or None when one is not known."""
        found = {}
        for name in names:
            value = self._get(name)
            if value is None:
                return None
            found[name] = value
        return found

    def words(self, names: Iterable[str]) -> dict[str, str] | None:
        """The values as one-line words, or None when one is not known."""
        found = self.raw(names)
        return None if found is None else {name: _words(value) for name, value in found.items()}

    def _get(self, name: str) -> str | None:
        extra = self._situation.extra
        if name in extra:
            return extra[name]
        value = getattr(self._situation, name, None) if name in _SITUATION_FIELD_SET else None
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


@functools.lru_cache(maxsize=256)
def _template(text: str) -> tuple[string.Template, frozenset[str]]:
    """A row's template and the names it uses, parsed once (the table is fixed)."""
    template = string.Template(text)
    return template, frozenset(template.get_identifiers())


_SPACES = re.compile(r"\s+")


def _words(value: str) -> str:
    # One line, whatever the value held (printable: no whitespace but ASCII spaces).
    one_line = value if value.isprintable() and "  " not in value else _SPACES.sub(" ", value)
    return one_line if len(one_line) <= WORD_CHARS else one_line[: WORD_CHARS - 1] + "…"


def situation(
    subject: Subject,
    found: KubernetesFacts,
    labels: Mapping[str, str],
    alert_time: datetime | None = None,
) -> Situation:
    """The subject and what decides the advice, as the Kubernetes enrichment found it
    (`read_facts`: a missing or odd-shaped part is simply not known)."""
    pod, workload, rollout, node = found.pod, found.workload, found.rollout, found.node
    claim, hpa, service = found.pvc, found.hpa, found.service
    container = _container(pod, subject.container)
    problems = workload.problems if workload is not None else ()
    owner = workload.owner if workload is not None else None
    waiting = _text(container.waiting_reason) if container else None
    if waiting is None and subject.kind == "Pod":
        waiting = labels.get("reason") or None  # kube_pod_container_status_waiting_reason's own label
    ended = (container.terminated or container.last_termination) if container else None
    not_ready = service.not_ready_pods if service is not None else ()
    on = (_text(node.name) if node else None) or (_text(pod.node) if pod else None)
    return Situation(
        kind=subject.kind,
        name=subject.name,
        namespace=subject.namespace,
        exists=_subject_exists(subject, found),
        container=subject.container or (_text(container.name) if container else None),
        pod=subject.name if subject.kind == "Pod" else (_text(pod.name) if pod else None),
        waiting=waiting,
        ended=_text(ended.reason) if ended else None,
        image=_text(container.image) if container else None,
        image_error=_image_error(container, found),
        memory_limit=(container.limits.get("memory") or "none") if container else None,
        memory_peak=_text(container.memory_peak) if container else None,
        unschedulable=(_text(pod.unschedulable) if pod else None) or _scheduler_message(found),
        missing_storage_class=_event_match(found, "ProvisioningFailed", _MISSING_CLASS),
        quota=_event_match(found, "FailedCreate", _QUOTA),
        workload_kind=_text(workload.kind) if workload else None,
        workload=_text(workload.name) if workload else None,
        workload_problems=problems,
        cronjob=_text(owner.name) if owner is not None and owner.kind == "CronJob" else None,
        job_reason=(_text(found.job_failed_reason) or _failed_reason(problems)) if subject.kind == "Job" else None,
        revision=rollout.revision if rollout else None,
        good_revision=rollout.previous_revision if rollout else None,
        rollout_recent=_recent(rollout.started_at if rollout else None, alert_time),
        node=subject.name if subject.kind == "Node" else on,
        node_problems=node.problems if node else (),
        mountpoint=(labels.get("mountpoint") or None) if subject.kind == "Node" else None,
        claim_capacity=_text(claim.capacity) if claim else None,
        storage_class=_text(claim.storage_class) if claim else None,
        expandable=claim.allow_volume_expansion if claim else None,
        hpa_current=hpa.current_replicas if hpa else None,
        hpa_max=hpa.max_replicas if hpa else None,
        service=subject.name if subject.kind == "Service" else None,
        selector=_text(service.selector) if service else None,
        not_ready_pod=not_ready[0] if not_ready else None,
    )


def _derived(s: Situation) -> dict[str, str]:
    extra = {"peak_words": f" (peak {s.memory_peak})" if s.memory_peak else ""}
    if s.memory_limit is not None and (bigger := _bigger(s.memory_peak or s.memory_limit, s.memory_limit)):
        extra["bigger_memory"] = bigger
    if s.claim_capacity is not None and (bigger := _bigger(s.claim_capacity)):
        extra["bigger_claim"] = bigger
    if s.hpa_max is not None:
        extra["bigger_max"] = str(math.ceil(s.hpa_max * GROWTH))
    if s.workload_kind in ("Deployment", "StatefulSet", "DaemonSet"):
        extra["workload_resource"] = s.workload_kind.lower()
    if s.kind in _DESCRIBED:
        extra["described"] = _DESCRIBED[s.kind]
    if s.cronjob is not None:
        extra["rerun"] = f"{s.cronjob[:50]}-retry"
    return extra


def _subject_exists(subject: Subject, found: KubernetesFacts) -> bool:
    """False only when the enricher looked and found the object gone."""
    part: Any = {
        "Pod": found.pod,
        "Node": found.node,
        "Service": found.service,
        "PersistentVolumeClaim": found.pvc,
        "HorizontalPodAutoscaler": found.hpa,
        "Job": found.job,
        "CronJob": found.cronjob,
    }.get(subject.kind, found.workload)
    return part is None or part.exists is not False


def _container(pod: PodState | None, name: str | None) -> ContainerState | None:
    """The named container, else the one the enricher found in the worst state."""
    containers = pod.containers if pod is not None else ()
    named = [c for c in containers if name is not None and c.name == name]
    if named:
        return named[0]
    waiting = [c for c in containers if c.waiting_reason]
    ended = [c for c in containers if c.last_termination or c.terminated]
    return (waiting or ended or containers or (None,))[0]


_NOT_FOUND = re.compile(r"not found|manifest unknown|does not exist|no such")
_DENIED = re.compile(r"unauthori[sz]ed|denied|forbidden|authentication required|\b40[13]\b")


def _image_error(container: ContainerState | None, found: KubernetesFacts) -> str | None:
    """What the registry answered, as the waiting message and the pull events carry it:
    "not found", "denied", else "other"; `image_error` when the enricher names it."""
    pull = found.image_pull
    if pull is not None and pull.not_found:
        return "not found"
    texts = [pull.message if pull else None, container.waiting_message if container else None]
    texts += [e.message for e in found.events]
    about_images = " ".join(t for t in texts if t and re.search(r"(?i)image|pull", t)).lower()
    if _NOT_FOUND.search(about_images):
        return "not found"
    if _DENIED.search(about_images):
        return "denied"
    return "other" if about_images else None


def _scheduler_message(found: KubernetesFacts) -> str | None:
    for event in found.events:
        if event.reason == "FailedScheduling":
            return _text(event.message)
    return None


_MISSING_CLASS = re.compile(r'storageclass\.storage\.k8s\.io "([^"]+)" not found')
_QUOTA = re.compile(r"exceeded quota: ([^,]+),")  # the whole name: validated before any command


def _event_match(found: KubernetesFacts, reason: str, pattern: re.Pattern[str]) -> str | None:
    """What the first Warning event of `reason` names, as `pattern`'s group says it."""
    for event in found.events:
        if event.reason == reason:
            matched = pattern.search(event.message)
            if matched:
                return matched[1]
    return None


def _failed_reason(problems: Iterable[str]) -> str | None:
    """`Failed=True: BackoffLimitExceeded`, as the enricher writes a Job's bad condition."""
    for problem in problems:
        if problem.startswith("Failed=True"):
            _, _, reason = problem.partition(": ")
            return reason or "failed"
    return None


def _recent(started_at: str | None, alert_time: datetime | None) -> bool:
    started = parse_time(started_at) if started_at else None
    if started is None or alert_time is None:
        return False
    return alert_time - RECENT_ROLLOUT <= started <= alert_time + CLOCK_SKEW


def _bigger(at_least: str, unit_of: str | None = None) -> str | None:
    """GROWTH times `at_least`, in the unit `unit_of` (else its own) is written in."""
    amount = _QUANTITY.match(at_least)
    unit = _QUANTITY.match(unit_of or at_least)
    if amount is None or unit is None:
        return None
    size = int(amount[1]) * _UNITS[amount[2] or ""] * GROWTH
    scale = _UNITS[unit[2] or ""]
    return f"{math.ceil(size / scale)}{unit[2] or ''}"


def _text(value: str | None) -> str | None:
    """An empty text says nothing: not known."""
    return value or None
