"""What the pipeline decided about one alert: the record the store keeps, the dashboard and
the API show, and `kubebot replay` prints.

Frozen msgspec Structs whose JSON is exactly the outcome every earlier version stored (same
keys, same values, same order), so a stored row decodes as it is and re-encodes unchanged.
Fields that later versions added have defaults: a row written before them still decodes.
Enrichment facts stay plain JSON: each source has its own shape, read by that source's code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

import msgspec

from enrichers.base import Enrichment, EnrichmentStatus
from enrichers.kubernetes.subject import Subject, resolve
from enrichers.times import parse_time
from rca.model import RootCause
from receiver.models import Alert, AlertStatus, Group
from receiver.wire import GO_ZERO_TIME_YEAR, to_utc

Action = Literal["notify", "suppress", "hold"]


@dataclass(frozen=True)
class Decision:
    action: Action = "notify"
    reason: str | None = None  # a stable word: rule, maintenance, flapping, repeat, ...
    rule: str | None = None  # the config entry (or the fact) that decided
    hold_until: datetime | None = None  # "hold": look again then (grace periods)
    incident_key: str | None = None  # "symptom": the cause's incident

    @classmethod
    def suppress(cls, reason: str, rule: str | None = None) -> Decision:
        return cls("suppress", reason, rule)

    @classmethod
    def hold(cls, until: datetime) -> Decision:
        return cls("hold", hold_until=until)


class AlertRecord(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """An alert as the webhook spells it. Times stay the text we wrote (ISO 8601 with
    offset), so a stored record re-encodes byte for byte."""

    fingerprint: str
    status: AlertStatus
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    starts_at: str
    ends_at: str | None = None
    generator_url: str = msgspec.field(default="", name="generatorURL")

    @classmethod
    def of(cls, alert: Alert) -> AlertRecord:
        return cls(
            fingerprint=alert.fingerprint,
            status=alert.status,
            labels=dict(alert.labels),
            annotations=dict(alert.annotations),
            starts_at=alert.starts_at.isoformat(),
            ends_at=alert.ends_at.isoformat() if alert.ends_at else None,
            generator_url=alert.generator_url,
        )

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "unnamed")

    def to_alert(self) -> Alert:
        """The domain alert back; ValueError when a time is not one (a damaged row)."""
        ends_at = _time(self.ends_at, "alert.endsAt") if self.ends_at else None
        return Alert(
            fingerprint=self.fingerprint,
            status=self.status,
            labels=MappingProxyType(dict(self.labels)),
            annotations=MappingProxyType(dict(self.annotations)),
            starts_at=_time(self.starts_at, "alert.startsAt"),
            # Year 1 is Go's zero time: "no end", as the webhook decoder reads it.
            ends_at=None if ends_at is None or ends_at.year == GO_ZERO_TIME_YEAR else ends_at,
            generator_url=self.generator_url,
        )


def _time(text: str, field: str) -> datetime:
    parsed = parse_time(text)
    if parsed is None:
        raise ValueError(f"{field}: not an RFC 3339 time with a zone: {text!r}")
    return to_utc(parsed, field)


class GroupRecord(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The Alertmanager notification the alert arrived in, as the webhook spells it."""

    group_key: str
    receiver: str = ""
    status: str = ""
    group_labels: dict[str, str] = {}
    common_labels: dict[str, str] = {}
    common_annotations: dict[str, str] = {}
    external_url: str = msgspec.field(default="", name="externalURL")
    truncated_alerts: int = 0

    @classmethod
    def of(cls, group: Group) -> GroupRecord:
        return cls(
            group_key=group.group_key,
            receiver=group.receiver,
            status=group.status,
            group_labels=dict(group.group_labels),
            common_labels=dict(group.common_labels),
            common_annotations=dict(group.common_annotations),
            external_url=group.external_url,
            truncated_alerts=group.truncated_alerts,
        )


class CauseRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A ranked cause: a service, or a Kubernetes object when `kind` names its kind (a
    service's record has no `kind` key at all, as before causes could be objects)."""

    service: str
    score: float = 0.0
    evidence: tuple[str, ...] = ()
    kind: str | msgspec.UnsetType = msgspec.UNSET
    namespace: str | msgspec.UnsetType = msgspec.UNSET

    @classmethod
    def of(cls, cause: RootCause) -> CauseRecord:
        return cls(
            service=cause.service,
            score=cause.score,
            evidence=cause.evidence,
            kind=msgspec.UNSET if cause.kind is None else cause.kind,
            namespace=msgspec.UNSET if cause.kind is None or cause.namespace is None else cause.namespace,
        )


class EnrichmentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What one source found; `facts` is that source's own JSON, kept as it is."""

    source: str
    status: EnrichmentStatus
    facts: dict[str, Any] = {}
    summary: tuple[str, ...] = ()
    reason: str | None = None
    elapsed_seconds: float = 0.0

    @classmethod
    def of(cls, found: Enrichment) -> EnrichmentRecord:
        return cls(
            source=found.source,
            status=found.status,
            facts=dict(found.facts),
            summary=found.summary,
            reason=found.reason,
            elapsed_seconds=round(found.elapsed_seconds, 4),
        )


class GraphRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The dependency graph around the ranked causes, for the dashboard."""

    nodes: tuple[str, ...] = ()
    edges: tuple[tuple[str, str], ...] = ()
    causes: tuple[str, ...] = ()


class SubjectRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The object the alert is about (`{"kind", "namespace", "name"}`, as the API shows it)."""

    kind: str
    namespace: str | None = None  # None for cluster-scoped kinds
    name: str

    @classmethod
    def of(cls, subject: Subject) -> SubjectRecord:
        return cls(kind=subject.kind, namespace=subject.namespace, name=subject.name)

    @classmethod
    def of_labels(cls, labels: Mapping[str, str]) -> SubjectRecord:
        return cls.of(resolve(labels).subject)

    @property
    def ref(self) -> str:
        """As people read it: "HorizontalPodAutoscaler shop/frontend", "Node worker-3"."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    @property
    def names_an_object(self) -> bool:
        """False for the cluster as a whole: the labels named nothing in it."""
        return self.kind != "Cluster"


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What happened to one alert (no secrets: routes are redacted before they get here)."""

    fingerprint: str
    alertname: str
    decision: Action
    reason: str | None = None
    rule: str | None = None
    routes: tuple[str, ...] = ()
    root_causes: tuple[CauseRecord, ...] = ()
    enrichment: dict[str, EnrichmentRecord] = {}
    alert: AlertRecord
    group: GroupRecord
    graph: GraphRecord | None = None
    # None only in rows written before correlation: the group is the incident then.
    incident_key: str | None = None
    sent_with: str | None = None  # paged in the message of this alert of its group
    # Unset (and so left out of the JSON) only in rows written before subjects: `about`
    # resolves those from their labels, which is what the pipeline does too.
    subject: SubjectRecord | msgspec.UnsetType = msgspec.UNSET

    @property
    def key(self) -> str:
        """The incident this alert belongs to."""
        return self.incident_key or self.group.group_key

    @property
    def paged(self) -> bool:
        return self.decision == "notify" and bool(self.routes)

    @property
    def about(self) -> SubjectRecord:
        """The object the alert is about, for rows of every version."""
        if isinstance(self.subject, SubjectRecord):
            return self.subject
        return SubjectRecord.of_labels(self.alert.labels)

    def as_decision(self) -> Decision:
        return Decision(self.decision, self.reason, self.rule)

    def facts_of(self, source: str) -> Mapping[str, Any]:
        found = self.enrichment.get(source)
        return found.facts if found is not None else {}

    def encode(self) -> bytes:
        # Anything a source put in its facts that JSON has no type for is written as text,
        # as json.dumps(default=str) wrote it before.
        return _ENCODER.encode(self)

    def to_json(self) -> dict[str, Any]:
        """The outcome as plain JSON data, as the API and replay show it."""
        plain: dict[str, Any] = msgspec.json.decode(self.encode())
        return plain


_ENCODER = msgspec.json.Encoder(enc_hook=str)
_DECODER = msgspec.json.Decoder(Outcome)


def decode_outcome(raw: str | bytes) -> Outcome:
    """A stored outcome; msgspec.DecodeError (a ValidationError among them) when the row
    is not one (damaged, or of a shape no version wrote)."""
    return _DECODER.decode(raw)
