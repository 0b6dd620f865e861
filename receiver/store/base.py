"""The store's contracts, one per role, and the values that cross them.

Each part of KubeBot sees only the role it uses: workers the `Queue`, the outbox its
`DeliveryQueue`, the dashboard and API `Incidents`, ... receiver/store/sqlite.py is the
embedded default of them all (`Store`); a shared PostgreSQL store for several replicas
implements the same small contracts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from receiver.incidents import Incident
from receiver.models import Alert, Group
from receiver.pipeline.outcome import Outcome


class StoreUnavailable(Exception):
    """The store cannot take writes now; intake answers 503 so Alertmanager retries."""


class QueueFull(StoreUnavailable):
    pass


@dataclass(frozen=True)
class QueuedAlert:
    id: int
    alert: Alert
    group: Group
    received_at: datetime
    held: bool = False  # deferred once already (a grace period passed)


@dataclass(frozen=True)
class NewDelivery:
    url: str
    title: str
    body: str
    notify_type: str


@dataclass(frozen=True)
class Finished:
    """A processed alert: its outcome and the deliveries it implies."""

    alert_id: int
    outcome: Outcome
    deliveries: tuple[NewDelivery, ...] = ()


@dataclass(frozen=True)
class Delivery:
    id: int
    alert_id: int
    url: str
    title: str
    body: str
    notify_type: str
    attempts: int


@dataclass(frozen=True)
class Quarantine:
    """An alert set aside because a stage failed on it: it waits, with the error, for a
    person (or a fixed version); later alerts go on past it."""

    alert_id: int | None  # None when its body could not even be expanded into alert rows
    stage: str  # expand | a pipeline stage (enrich_and_rank, suppress, route, render) | record
    error: str
    fingerprint: str | None = None
    alertname: str | None = None


@dataclass(frozen=True)
class QuarantinedItem:
    id: int
    stage: str
    error: str
    received_at: float
    quarantined_at: float
    alert_id: int | None
    message_id: int | None
    fingerprint: str | None
    alertname: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stage": self.stage,
            "error": self.error,
            "received_at": self.received_at,
            "quarantined_at": self.quarantined_at,
            "alert_id": self.alert_id,
            "message_id": self.message_id,
            "fingerprint": self.fingerprint,
            "alertname": self.alertname,
        }


@dataclass(frozen=True)
class IncidentQuery:
    status: str | None = None
    severity: str | None = None
    namespace: str | None = None
    text: str | None = None
    limit: int = 50
    before_id: int | None = None


@dataclass(frozen=True)
class StoredOutcome:
    alert_id: int
    received_at: float
    processed_at: float
    outcome: Outcome


@dataclass(frozen=True)
class DeliveryRecord:
    """A delivery as the API shows it: the URL stays in the store, callers must redact it."""

    id: int
    alert_id: int
    url: str
    state: str  # pending | delivered | dead
    attempts: int
    last_error: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class IncidentDetail:
    incident: Incident
    alerts: tuple[StoredOutcome, ...]
    deliveries: tuple[DeliveryRecord, ...]


class Queue(Protocol):
    """The alert queue: intake keeps bodies, workers claim their alerts and finish them."""

    async def accept(self, body: bytes, alert_count: int, received_at: datetime) -> None:
        """Keep a validated webhook body durably; its alerts join the queue when claimed."""

    def take_duplicate_count(self) -> int:
        """Alerts found to be already stored since the last call (retries, HA peers)."""

    async def claim(self, limit: int, now: datetime | None = None) -> list[QueuedAlert]: ...

    async def defer(self, alert_id: int, until: datetime) -> None: ...

    async def release(self, alert_ids: Sequence[int]) -> None: ...

    async def finish_many(self, finished: Sequence[Finished], now: datetime) -> None: ...

    async def quarantine(self, items: Sequence[Quarantine], now: datetime) -> None:
        """Set claimed alerts aside with their error: kept, never claimed again."""

    def take_quarantined_count(self) -> int:
        """Alerts the store itself set aside (bodies that no longer expand) since the last call."""

    async def held_states(self) -> list[tuple[str, str, datetime]]:
        """(fingerprint, startsAt, received) of alert states waiting out a grace period."""

    def pending_count(self) -> int: ...


class DeliveryQueue(Protocol):
    """The outbox's rows: deliveries waiting to be sent, retried, or given up as dead."""

    async def send_later(self, deliveries: Sequence[NewDelivery], now: datetime) -> None: ...

    async def due_deliveries(self, now: datetime, limit: int) -> list[Delivery]: ...

    async def delivery_succeeded(self, delivery_id: int, now: datetime) -> None: ...

    async def delivery_failed(self, delivery_id: int, error: str, now: datetime, retry_at: datetime | None) -> None: ...

    def outbox_count(self) -> int: ...


class Outcomes(Protocol):
    """What was decided for finished alerts, for suppression memory and digests."""

    async def outcomes_since(self, since: datetime, limit: int) -> list[tuple[datetime, Outcome]]:
        """The newest `limit` outcomes decided after `since`, oldest first, with when."""

    async def suppressed_since(self, since: datetime, limit: int = 10_000) -> list[Outcome]: ...


class Incidents(Protocol):
    """What people look at: incidents with their alerts and deliveries, and quarantined items."""

    async def incidents(self, query: IncidentQuery) -> list[Incident]: ...

    async def incident(self, incident_id: int) -> IncidentDetail | None: ...

    async def quarantined(self, limit: int) -> list[QuarantinedItem]:
        """The newest quarantined items first."""


class Meta(Protocol):
    """Small named values KubeBot keeps across restarts (when the last digest went)."""

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


class Upkeep(Protocol):
    """Readiness, retention and shutdown."""

    async def check_writable(self) -> None: ...

    async def prune(self, older_than: datetime) -> int: ...

    async def close(self) -> None: ...


# One turn of suppression memory: what other replicas wrote since this replica's last turn
# (opaque entries, oldest first) in, what this turn writes out.
MemoryTurn = Callable[[list[bytes]], list[bytes]]


class SuppressionMemory(Protocol):
    """Suppression memory shared by every replica that decides alerts.

    Each replica keeps the memory in process; what one replica's decisions changed is
    written as entries that every other replica applies before its own next decision, and
    turns run one at a time across replicas, so each decision sees every earlier one,
    whichever replica made it. With one replica (SQLite) a turn has nothing to share."""

    async def memory_turn(self, turn: MemoryTurn) -> None:
        """Run `turn` alone among the replicas; StoreUnavailable when that cannot be done
        now (the caller then decides on what this replica already knows)."""


class Leadership(Protocol):
    """Which replica runs the singletons (heartbeat watch, digests, retention)."""

    async def leading(self) -> bool:
        """True while this replica is the one: taken when free, kept while this process
        lives, moved to another replica when it dies."""


ActionKind = Literal["silence", "ack", "feedback"]


@dataclass(frozen=True)
class NewAction:
    """What an engineer did about an incident (or, for a silence on explicit matchers,
    about no incident): who, what, and the details of that kind of action as plain JSON."""

    incident_id: int | None
    kind: ActionKind
    by: str
    note: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IncidentAction:
    id: int
    incident_id: int | None
    kind: ActionKind
    by: str
    at: float
    note: str
    details: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "by": self.by,
            "at": self.at,
            "note": self.note,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class AlertRef:
    """One stored alert with the incident it was folded into."""

    alert_id: int
    incident_id: int | None
    outcome: Outcome


@dataclass(frozen=True)
class ConfirmedCause:
    """A cause an engineer confirmed (feedback `cause`) for an incident of this alertname."""

    cause: str
    by: str
    at: float
    alertname: str
    labels: Mapping[str, str]  # the first alert of that incident


@dataclass(frozen=True)
class HistoryAlert:
    """One processed alert as insights replay it: when, what, and whether it paged."""

    alert_id: int
    incident_id: int | None
    processed_at: float
    outcome: Outcome


class Actions(Protocol):
    """What engineers do about incidents (silence, ack, feedback), kept as long as the
    incident, and what the insights and confirmed causes read back."""

    async def record_action(self, action: NewAction, now: datetime) -> IncidentAction: ...

    async def actions(self, incident_id: int) -> list[IncidentAction]:
        """The incident's actions, oldest first."""

    async def alert_ref(self, alert_id: int) -> AlertRef | None:
        """A processed alert and its incident; None for an unknown or unprocessed one."""

    async def incident_of_fingerprint(self, fingerprint: str) -> int | None:
        """The newest incident holding an alert with this fingerprint; None when none does."""

    async def acknowledged(self, incident_keys: Sequence[str]) -> dict[str, str]:
        """Of these incident keys, those whose open (firing) incident was acknowledged,
        with who acknowledged it last."""

    async def confirmed_causes(self, alertname: str, limit: int = 50) -> list[ConfirmedCause]:
        """Causes confirmed in feedback on incidents that had an alert of this name,
        newest first."""

    async def history(self, since: datetime, limit: int = 200_000) -> list[HistoryAlert]:
        """Processed alerts since `since`, oldest first, for insights."""

    async def feedback_since(self, since: datetime) -> list[tuple[IncidentAction, tuple[str, ...]]]:
        """Feedback on incidents, each with the fingerprints of that incident's alerts."""


class Store(Queue, DeliveryQueue, Outcomes, Incidents, Meta, Upkeep, SuppressionMemory, Leadership, Actions, Protocol):
    """Every role at once: what a backend implements and the runtime holds. Each consumer
    takes only the role it uses."""
