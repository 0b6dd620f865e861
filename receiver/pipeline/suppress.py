"""Suppression: page a human only when a human is needed, and always say why not.

Each check is a small pure function over the alert, what is remembered about recent
alerts (`Memory`) and the clock. `Suppressor.decide` runs them in a fixed order; the first
that objects wins. Nothing is dropped silently: a suppressed alert keeps its outcome with
a stable reason word (rule, maintenance, flapping, resolved_in_grace, repeat, symptom,
not_actionable, acknowledged) and the config entry that decided.

Memory is kept in process and bounded. At start-up it is rebuilt from the outcomes the
store kept (`Suppressor.recall`), so a restart in the middle of an incident neither pages
its symptoms again nor forgets a flapping alert. With several replicas, what each write to
it changed is shared through the store (`share_memory`): every decision, on any replica,
sees every earlier one.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import networkx as nx
import structlog

from enrichers.base import Enrichment
from enrichers.kubernetes.report import (
    KubernetesFacts,
    KubernetesVerdict,
    NodeState,
    read_facts,
    read_facts_and_verdict,
)
from enrichers.kubernetes.subject import Subject, label_value, resolve
from enrichers.telemetry.naming import alert_service
from receiver.config import HeartbeatConfig, MaintenanceWindow, SuppressionConfig
from receiver.matchers import all_match
from receiver.models import Alert
from receiver.pipeline.outcome import Decision, Outcome
from receiver.pipeline.stage import Work
from receiver.store.base import StoreUnavailable, SuppressionMemory

K = TypeVar("K")
V = TypeVar("V")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HEARTBEAT_RULE = "heartbeat"
# Writes kept for other replicas while the store cannot take them; past this, the oldest go.
UNSHARED_LIMIT = 1000
log = structlog.get_logger("kubebot.suppress")

# What a node alert says is wrong with its node, read from what its labels mean:
# kube-state-metrics' kube_node_status_condition names the condition in `condition`, and
# kube_node_spec_taint names in `key` the taints the node lifecycle controller sets.
_CONDITION_TROUBLE = {
    "Ready": "NotReady",
    "MemoryPressure": "under MemoryPressure",
    "DiskPressure": "under DiskPressure",
    "PIDPressure": "under PIDPressure",
    "NetworkUnavailable": "without network",
}
_TAINT_TROUBLE = {
    "node.kubernetes.io/not-ready": "NotReady",
    "node.kubernetes.io/unreachable": "unreachable",
    "node.kubernetes.io/memory-pressure": "under MemoryPressure",
    "node.kubernetes.io/disk-pressure": "under DiskPressure",
    "node.kubernetes.io/pid-pressure": "under PIDPressure",
    "node.kubernetes.io/network-unavailable": "without network",
}
# Rules that aggregate those labels away but whose names say the same thing.
_NAMED_TROUBLE = {"KubeNodeNotReady": "NotReady", "KubeNodeUnreachable": "unreachable", "NodeDown": "down"}
# A filesystem or block device on a node is what such an alert is about, never the node.
_FILESYSTEM_LABELS = ("mountpoint", "fstype", "device")
_VOLUME_KINDS = frozenset({"PersistentVolumeClaim", "PersistentVolume"})


class Bounded(Generic[K, V]):
    """A dict that forgets its oldest entries past `limit`: memory never grows with history."""

    def __init__(self, limit: int, noted: Callable[[K, V | None], None] | None = None) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._limit = limit
        self._noted = noted  # told of each put (the value) and pop (None)

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        if self._noted is not None:
            self._noted(key, value)
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        if self._noted is not None and key in self._items:
            self._noted(key, None)
        self._items.pop(key, None)

    def items(self) -> list[tuple[K, V]]:
        return list(self._items.items())

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class ActiveCause:
    """A firing alert other alerts may be symptoms of."""

    fingerprint: str
    incident_key: str
    alertname: str
    trouble: str = ""  # a node cause: what is wrong with the node ("NotReady", "unreachable")


@dataclass
class Memory:
    """What suppression remembers about recent alerts, bounded per map."""

    limit: int = 50_000
    changes: Bounded[str, deque[datetime]] = field(init=False)
    decisions: Bounded[tuple[str, str], Decision] = field(init=False)
    resolved_seen: Bounded[tuple[str, str], datetime] = field(init=False)
    # alert states held for a grace period and not yet decided
    held: Bounded[tuple[str, str], datetime] = field(init=False)
    # (fingerprint, status) -> when it was paged and the startsAt of that alert state
    last_paged: Bounded[tuple[str, str], tuple[datetime, str]] = field(init=False)
    # fingerprint -> the last (status, startsAt) counted as a change
    last_state: Bounded[str, tuple[str, str]] = field(init=False)
    flapping_since: Bounded[str, datetime] = field(init=False)
    # "node:<name>" or "service:<name>" -> the firing alert about it
    active: Bounded[str, ActiveCause] = field(init=False)
    heartbeat_at: datetime | None = None
    # Writes noted for other replicas (see `share`), and those not yet handed over.
    _sharing: bool = field(init=False, default=False)
    _writes: list[tuple[str, Any, Any]] = field(init=False, default_factory=list)
    _unshared: list[bytes] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.changes = Bounded(self.limit, self._noter("changes"))
        self.decisions = Bounded(self.limit, self._noter("decisions"))
        self.resolved_seen = Bounded(self.limit, self._noter("resolved_seen"))
        self.held = Bounded(self.limit, self._noter("held"))
        self.last_paged = Bounded(self.limit, self._noter("last_paged"))
        self.last_state = Bounded(self.limit, self._noter("last_state"))
        self.flapping_since = Bounded(self.limit, self._noter("flapping_since"))
        self.active = Bounded(self.limit, self._noter("active"))

    def saw_heartbeat(self, at: datetime) -> None:
        self.heartbeat_at = at
        if self._sharing:
            self._writes.append(("heartbeat_at", None, at))

    # -- shared between replicas ----------------------------------------------------------
    # Each write is (map, key, value or None for a removal); replayed in the order written,
    # every replica's map ends with the same value for each key the writes touched.

    def share(self) -> None:
        """From now on, note every write for other replicas (after the start-up recall,
        which each replica does for itself)."""
        self._sharing = True

    def writes(self) -> list[bytes]:
        """What changed since the last call (and what could not be handed over before), as
        entries for other replicas; empty when nothing did or nothing is shared."""
        if self._writes:
            self._unshared.append(msgspec.json.encode(self._writes))
            self._writes = []
        entries, self._unshared = self._unshared, []
        return entries

    def not_shared(self, entries: Sequence[bytes]) -> None:
        """Entries `writes` gave that the store did not take: handed over next time."""
        self._unshared[:0] = entries
        del self._unshared[: max(0, len(self._unshared) - UNSHARED_LIMIT)]

    def apply(self, entries: Sequence[bytes]) -> int:
        """Other replicas' writes, oldest first, as they made them (not noted again). The
        number of unreadable entries (from another version) is returned; they are skipped."""
        sharing, self._sharing = self._sharing, False
        unreadable = 0
        try:
            for entry in entries:
                try:
                    for name, key, value in msgspec.json.decode(entry, type=list[tuple[str, Any, Any]]):
                        self._apply_one(name, key, value)
                except (msgspec.ValidationError, msgspec.DecodeError, ValueError, TypeError):
                    unreadable += 1
        finally:
            self._sharing = sharing
        return unreadable

    def _noter(self, name: str) -> Callable[[Any, Any], None]:
        def noted(key: Any, value: Any) -> None:
            if self._sharing:
                if isinstance(value, deque):  # the flapping window: its bound goes with it
                    value = (value.maxlen, list(value))
                self._writes.append((name, key, value))

        return noted

    def _apply_one(self, name: str, key: Any, value: Any) -> None:
        if name == "heartbeat_at":
            at = msgspec.convert(value, datetime)
            self.heartbeat_at = at if self.heartbeat_at is None else max(self.heartbeat_at, at)
            return
        kind = _SHARED_MAPS.get(name)
        if kind is None:
            raise ValueError(f"no memory map {name}")
        key_type, value_type = kind
        target: Bounded[Any, Any] = getattr(self, name)
        typed_key = msgspec.convert(key, key_type)
        if value is None:
            target.pop(typed_key)
        elif name == "changes":
            maxlen, times = msgspec.convert(value, tuple[int, list[datetime]])
            target.put(typed_key, deque(times, maxlen=maxlen))
        else:
            target.put(typed_key, msgspec.convert(value, value_type))


# What each shared map is keyed by and holds, to read other replicas' writes back.
_SHARED_MAPS: dict[str, tuple[Any, Any]] = {
    "changes": (str, None),
    "decisions": (tuple[str, str], Decision),
    "resolved_seen": (tuple[str, str], datetime),
    "held": (tuple[str, str], datetime),
    "last_paged": (tuple[str, str], tuple[datetime, str]),
    "last_state": (str, tuple[str, str]),
    "flapping_since": (str, datetime),
    "active": (str, ActiveCause),
}


async def share_memory(shared: SuppressionMemory, memory: Memory, step: Callable[[], None] = lambda: None) -> None:
    """One turn among the replicas: apply what the others wrote, run `step` (decisions),
    hand over what it wrote. The store unavailable: `step` runs on what this replica
    already knows, and its writes wait for the next turn."""
    ran = False
    written: list[bytes] = []

    def turn(others: list[bytes]) -> list[bytes]:
        nonlocal ran
        unreadable = memory.apply(others)
        if unreadable:
            log.warning("memory_entries_unreadable", entries=unreadable)
        ran = True
        step()
        written.extend(memory.writes())
        return written

    try:
        await shared.memory_turn(turn)
    except StoreUnavailable as exc:
        memory.not_shared(written)
        log.warning("memory_not_shared", error=str(exc))
        if not ran:
            step()


class Heartbeat:
    """Proof of life from the pipeline in front of KubeBot, noted at intake.

    Every delivery of a heartbeat alert counts, duplicates included: Alertmanager re-sends
    the Watchdog group with the same startsAt each repeat_interval, and the store drops
    those re-sends before any decision would see them.
    """

    def __init__(self, config: HeartbeatConfig, memory: Memory, clock: Callable[[], datetime]) -> None:
        self._config = config
        self._memory = memory
        self._clock = clock

    @property
    def memory(self) -> Memory:
        return self._memory

    def saw(self, labels: Iterable[Mapping[str, str]]) -> None:
        if self._config.matchers and any(all_match(self._config.matchers, one) for one in labels):
            self._memory.saw_heartbeat(self._clock())


def in_window(window: MaintenanceWindow, now: datetime) -> bool:
    """One-off windows by start/end; weekly ones by day and HH:MM in their time zone."""
    if window.start is not None or window.end is not None:
        after_start = window.start is None or now >= window.start
        before_end = window.end is None or now < window.end
        return after_start and before_end
    if not window.from_ or not window.to:
        return False
    try:
        local = now.astimezone(ZoneInfo(window.timezone))
    except ZoneInfoNotFoundError:
        return False
    begins, ends = time.fromisoformat(window.from_), time.fromisoformat(window.to)
    day = DAYS[local.weekday()]
    if begins <= ends:
        return (not window.days or day in window.days) and begins <= local.time() < ends
    # Over midnight: the part after midnight belongs to the previous day's window.
    yesterday = DAYS[(local.weekday() - 1) % 7]
    return ((not window.days or day in window.days) and local.time() >= begins) or (
        (not window.days or yesterday in window.days) and local.time() < ends
    )


def not_actionable(kubernetes: KubernetesVerdict) -> str | None:
    """What the Kubernetes source says makes the alert moot, in words; else None."""
    pod, workload = kubernetes.pod, kubernetes.workload
    if pod is not None and pod.phase == "Succeeded":
        return f"pod {pod.name} completed"
    if pod is not None and not pod.exists and workload is not None and workload.healthy:
        return f"pod {pod.name} no longer exists and {workload.kind} {workload.name} is healthy"
    return None


@dataclass(frozen=True)
class Reading:
    """What suppression reads about one alert to follow causal links: its subject, the
    service it concerns, and for a pod the node it runs on, for a node what is wrong."""

    subject: Subject
    service: str | None
    pod_node: str | None = None  # a pod alert: the node its pod runs on
    node_healthy: bool = False  # a pod alert: its own facts show that node Ready
    node_trouble: str | None = None  # a node alert that says the node is down or under pressure

    @property
    def is_node_cause(self) -> bool:
        return self.node_trouble is not None


def read_alert(alert: Alert, found: KubernetesFacts) -> Reading:
    """The reading of `alert` from its labels and its Kubernetes facts (fresh or stored),
    as `read_facts` reads them."""
    labels = alert.labels
    subject = resolve(labels).subject
    # A volume or filesystem alert names the exporter's or kubelet's service, if any: no
    # service failure other alerts could depend on.
    volume = subject.kind in _VOLUME_KINDS or any(label_value(labels, k) for k in _FILESYSTEM_LABELS)
    service = None if volume else alert_service(labels)
    node = found.node
    if subject.kind == "Pod":
        pod = found.pod
        on = (pod.node if pod is not None else None) or label_value(labels, "node")
        healthy = node is not None and node.name == on and node.healthy
        return Reading(subject, service, pod_node=on, node_healthy=healthy)
    if subject.kind == "Node" and not volume:
        return Reading(subject, service, node_trouble=node_trouble(labels, node))
    return Reading(subject, service)


def node_trouble(labels: Mapping[str, str], node: NodeState | None) -> str | None:
    """What a node alert says is wrong with its node, in words; None when it does not say
    the node is down, unreachable or under pressure. Facts showing the node Ready win."""
    if node is not None and node.healthy:
        return None
    said = (
        _CONDITION_TROUBLE.get(label_value(labels, "condition") or "")
        or _TAINT_TROUBLE.get(label_value(labels, "key") or "")
        or _NAMED_TROUBLE.get(labels.get("alertname", ""))
    )
    return said or (_trouble(node) if node is not None else None)


def _trouble(node: NodeState) -> str | None:
    """What the node's own facts say is wrong with it."""
    if not node.exists:
        return None  # gone: nothing to say about what runs there
    if node.ready is False:
        return "NotReady"
    return next((_CONDITION_TROUBLE[p] for p in node.problems if p in _CONDITION_TROUBLE), None)


def kubernetes_facts(enrichment: Mapping[str, Enrichment]) -> Mapping[str, Any]:
    found = enrichment.get("kubernetes")
    return found.facts if found is not None else {}


def read_work(work: Work) -> tuple[Reading, KubernetesVerdict]:
    """One reading of the alert's Kubernetes facts, for its causal links and its verdict."""
    found, verdict = read_facts_and_verdict(kubernetes_facts(work.enrichment))
    return read_alert(work.alert, found), verdict


class Suppressor:
    def __init__(
        self,
        config: SuppressionConfig,
        clock: Callable[[], datetime],
        memory: Memory | None = None,
        graph: Callable[[], nx.DiGraph] = nx.DiGraph,
    ) -> None:
        self.config = config
        self.clock = clock
        self.memory = memory or Memory()
        self._graph = graph
        self._hold = timedelta(seconds=max(config.resolved_grace_seconds, config.symptom_hold_seconds))

    def decide(self, work: Work, read: tuple[Reading, KubernetesVerdict] | None = None) -> Work:
        """`read`: the alert's `read_work`, when the caller has it already."""
        alert, now, memory = work.alert, self.clock(), self.memory
        reading, kubernetes = read or read_work(work)
        state = (alert.fingerprint, alert.starts_at.isoformat())
        if not work.held:
            self._record_change(alert, now)
        if alert.status == "resolved":
            self._remember_resolved(alert, reading, now)
        elif not work.held:
            self._remember_cause(alert, reading, work.incident_key or work.group.group_key)
        decision = self._first_objection(work, kubernetes, reading, now)
        if decision.action == "notify" and alert.status == "firing" and self._hold and not work.held:
            memory.held.put(state, now)
            return dataclasses.replace(work, decision=Decision.hold(now + self._hold))
        self._remember_decision(alert, decision, now)
        incident_key = decision.incident_key or work.incident_key
        return dataclasses.replace(work, decision=decision, incident_key=incident_key)

    def recall(self, outcome: Outcome, decided_at: datetime) -> None:
        """Memory as deciding this stored outcome left it (start-up, after a restart).
        ValueError when its alert's times are not times (a damaged row)."""
        alert = outcome.alert.to_alert()
        reading = read_alert(alert, read_facts(outcome.facts_of("kubernetes")))
        decision = outcome.as_decision()
        self._record_change(alert, decided_at)
        if alert.status == "resolved":
            self._remember_resolved(alert, reading, decided_at)
        else:
            self._remember_cause(alert, reading, outcome.incident_key or "")
        self._remember_decision(alert, decision, decided_at)
        if decision.reason == "flapping" and decision.action == "notify":
            self.memory.flapping_since.put(alert.fingerprint, decided_at)
        if decision.reason == "rule" and decision.rule == HEARTBEAT_RULE:
            self.memory.heartbeat_at = decided_at

    def recall_held(self, fingerprint: str, starts_at: str, held_since: datetime) -> None:
        """An alert state still waiting out its grace period in the store."""
        self.memory.held.put((fingerprint, starts_at), held_since)

    def _remember_resolved(self, alert: Alert, reading: Reading, now: datetime) -> None:
        self.memory.resolved_seen.put((alert.fingerprint, alert.starts_at.isoformat()), now)
        self.memory.last_paged.pop((alert.fingerprint, "firing"))  # firing again is news, not a repeat
        self._forget_cause(alert, reading)

    def _remember_decision(self, alert: Alert, decision: Decision, now: datetime) -> None:
        state = (alert.fingerprint, alert.starts_at.isoformat())
        if alert.status == "firing" and decision.action != "hold":
            self.memory.decisions.put(state, decision)
            self.memory.held.pop(state)
        if decision.action == "notify":
            self.memory.last_paged.put((alert.fingerprint, alert.status), (now, alert.starts_at.isoformat()))

    def _first_objection(self, work: Work, kubernetes: KubernetesVerdict, reading: Reading, now: datetime) -> Decision:
        alert, config, memory = work.alert, self.config, self.memory
        if config.heartbeat.matchers and all_match(config.heartbeat.matchers, alert.labels):
            memory.saw_heartbeat(now)
            return Decision.suppress("rule", HEARTBEAT_RULE)
        for rule in config.rules:
            if (rule.expires is None or now < rule.expires) and all_match(rule.matchers, alert.labels):
                return Decision.suppress("rule", rule.name)
        for window in config.maintenance:
            if in_window(window, now) and all_match(window.matchers, alert.labels):
                return Decision.suppress("maintenance", window.name)
        flapping = self._flapping(alert, now)
        if flapping is not None:
            return flapping
        if alert.status == "resolved":
            return self._resolved(alert)
        moot = not_actionable(kubernetes)
        if moot:
            return Decision.suppress("not_actionable", moot)
        if memory.resolved_seen.get((alert.fingerprint, alert.starts_at.isoformat())) is not None:
            return Decision.suppress("resolved_in_grace", f"resolved within {self._hold.total_seconds():g}s")
        cause = self._cause_of(alert, reading)
        if cause is not None:
            link, found = cause
            return dataclasses.replace(Decision.suppress("symptom", link), incident_key=found.incident_key)
        last = memory.last_paged.get((alert.fingerprint, alert.status))
        # The same alert state decided again (its outcome could not be stored) is not a repeat.
        if last is not None and last[1] != alert.starts_at.isoformat():
            paged_at = last[0]
            if now - paged_at < timedelta(seconds=config.repeat_interval_seconds):
                return Decision.suppress("repeat", f"paged {int((now - paged_at).total_seconds())}s ago")
            if work.acknowledged_by is not None:
                return Decision.suppress("acknowledged", f"acknowledged by {work.acknowledged_by}")
        return Decision()

    def may_repeat(self, alert: Alert) -> bool:
        """Whether this alert was paged before in another state: only such an alert is a
        repeat that an acknowledgement could keep quiet (new alerts always page)."""
        last = self.memory.last_paged.get((alert.fingerprint, alert.status))
        return alert.status == "firing" and last is not None and last[1] != alert.starts_at.isoformat()

    def _resolved(self, alert: Alert) -> Decision:
        """No resolved notice for an alert whose firing was held or suppressed. One whose
        firing this process never saw (it started later) is announced: better a notice
        too many than a page left open."""
        state = (alert.fingerprint, alert.starts_at.isoformat())
        if self.memory.held.get(state) is not None:
            return Decision.suppress("resolved_in_grace", "resolved while its firing was held")
        firing = self.memory.decisions.get(state)
        if firing is None:
            return Decision()
        if firing.action == "suppress":
            return Decision.suppress(firing.reason or "rule", firing.rule)
        return Decision()

    def _record_change(self, alert: Alert, now: datetime) -> None:
        state = (alert.status, alert.starts_at.isoformat())
        if self.memory.last_state.get(alert.fingerprint) == state:
            return  # the same state again (a retry after a failed write): not a change
        self.memory.last_state.put(alert.fingerprint, state)
        changes = self.memory.changes.get(alert.fingerprint)
        if changes is None:
            changes = deque(maxlen=self.config.flapping.max_changes + 2)
        changes.append(now)
        self.memory.changes.put(alert.fingerprint, changes)

    def _flapping(self, alert: Alert, now: datetime) -> Decision | None:
        """Past max_changes in the window: one page saying so, then quiet until stable."""
        window = timedelta(seconds=self.config.flapping.window_seconds)
        recent = [t for t in self.memory.changes.get(alert.fingerprint) or () if now - t <= window]
        if len(recent) <= self.config.flapping.max_changes:
            self.memory.flapping_since.pop(alert.fingerprint)
            return None
        detail = f"{len(recent)} changes in {window.total_seconds():g}s"
        already_resolved = self.memory.resolved_seen.get((alert.fingerprint, alert.starts_at.isoformat()))
        if alert.status == "resolved" or already_resolved is not None:
            return Decision.suppress("flapping", detail)
        if self.memory.flapping_since.get(alert.fingerprint) is None:
            self.memory.flapping_since.put(alert.fingerprint, now)
            return Decision("notify", "flapping", detail)
        return Decision.suppress("flapping", detail)

    def _remember_cause(self, alert: Alert, reading: Reading, incident_key: str) -> None:
        cause = ActiveCause(alert.fingerprint, incident_key, alert.name, reading.node_trouble or "")
        if reading.node_trouble:
            self.memory.active.put(f"node:{reading.subject.name}", cause)
        if reading.service:
            self.memory.active.put(f"service:{reading.service}", cause)

    def _forget_cause(self, alert: Alert, reading: Reading) -> None:
        # Every key it could have been remembered under: its facts may have changed since.
        node = reading.subject.name if reading.subject.kind == "Node" else None
        for key in (f"node:{node}", f"service:{reading.service}"):
            found = self.memory.active.get(key)
            if found is not None and found.fingerprint == alert.fingerprint:
                self.memory.active.pop(key)

    def _cause_of(self, alert: Alert, reading: Reading) -> tuple[str, ActiveCause] | None:
        """Another firing alert this one depends on along a link it can name, in words:
        its pod runs on a node that is down, or its service calls a failing one."""
        node = reading.pod_node
        if node and not reading.node_healthy:
            found = self.memory.active.get(f"node:{node}")
            if found is not None and found.fingerprint != alert.fingerprint:
                return f"on node {node}, which is {found.trouble or 'down'}", found
        service = reading.service
        if not service:
            return None
        graph = self._graph()
        if service not in graph:
            return None
        for callee in nx.descendants(graph, service):
            found = self.memory.active.get(f"service:{callee}")
            if found is not None and found.fingerprint != alert.fingerprint:
                return f"service:{callee}", found
        return None


class _InProcess:
    """Memory of this process alone: nothing to hear from or tell anyone."""

    async def memory_turn(self, turn: Callable[[list[bytes]], list[bytes]]) -> None:
        turn([])


# Incident keys -> who acknowledged the open incident of each (the store's `acknowledged`).
AckLookup = Callable[[Sequence[str]], Awaitable[Mapping[str, str]]]


class SuppressStage:
    def __init__(
        self, suppressor: Suppressor, shared: SuppressionMemory | None = None, acks: AckLookup | None = None
    ) -> None:
        self._suppressor = suppressor
        self._shared = shared or _InProcess()
        self._acks = acks

    async def exec(self, batch: Sequence[Work]) -> list[Work]:
        batch = await self._with_acks(batch)
        # Causes first: a node going down is remembered before its pods are judged.
        reads = [read_work(w) for w in batch]
        order = sorted(range(len(batch)), key=lambda i: not reads[i][0].is_node_cause)
        decided: dict[int, Work] = {}

        def decide() -> None:
            decided.update((i, self._suppressor.decide(batch[i], reads[i])) for i in order)

        await share_memory(self._shared, self._suppressor.memory, decide)
        return [decided[i] for i in range(len(batch))]

    async def _with_acks(self, batch: Sequence[Work]) -> Sequence[Work]:
        """Who acknowledged the incidents of the alerts that may be repeats; asked of the
        store only for those (rare: a repeat past repeat_interval_seconds)."""
        if self._acks is None:
            return batch
        keys = {_incident_key(w) for w in batch if self._suppressor.may_repeat(w.alert)}
        if not keys:
            return batch
        try:
            acked = await self._acks(sorted(keys))
        except StoreUnavailable as exc:  # unknown: page, as if not acknowledged
            log.warning("acknowledgements_unreadable", error=str(exc)[:200])
            return batch
        return [dataclasses.replace(w, acknowledged_by=acked.get(_incident_key(w))) for w in batch]


def _incident_key(work: Work) -> str:
    return work.incident_key or work.group.group_key
