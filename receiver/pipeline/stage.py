"""The alert pipeline: small stages run in order, assembled by hand in `build_pipeline`.

As in Alertmanager's notify package each stage is one type with one method. Stages see a
batch (the alerts of one group claimed together, so enrichers can share lookups) and
return it with their part filled in. Suppression never drops an alert from the batch: it
sets a decision with a reason, and later stages skip what is not to be sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from enrichers.base import Enrichment
from rca.model import RootCause
from receiver.models import Alert, Group
from receiver.pipeline.outcome import (
    AlertRecord,
    CauseRecord,
    Decision,
    EnrichmentRecord,
    GraphRecord,
    GroupRecord,
    Outcome,
    SubjectRecord,
)
from receiver.redact import redact_url


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    notify_type: str  # apprise NotifyType value: info, success, warning, failure


@dataclass(frozen=True)
class Work:
    alert: Alert
    group: Group
    received_at: datetime
    held: bool = False  # already held once for a grace period
    enrichment: Mapping[str, Enrichment] = field(default_factory=dict)
    root_causes: tuple[RootCause, ...] = ()
    decision: Decision = field(default_factory=Decision)
    routes: tuple[str, ...] = ()
    message: Message | None = None
    # The dependency graph around the ranked causes, for the dashboard.
    graph: GraphRecord | None = None
    # Alerts with one key share one incident; the Alertmanager group unless correlated.
    incident_key: str | None = None
    # Paged in the message of another alert of its group (that alert's fingerprint).
    sent_with: str | None = None
    # Who acknowledged this alert's open incident, if anyone: its repeats are not paged.
    acknowledged_by: str | None = None

    def outcome(self) -> Outcome:
        """The stored and printed record of what happened to this alert (no secrets)."""
        return Outcome(
            fingerprint=self.alert.fingerprint,
            alertname=self.alert.name,
            decision=self.decision.action,
            reason=self.decision.reason,
            rule=self.decision.rule,
            routes=tuple(redact_url(u) for u in self.routes),
            root_causes=tuple(CauseRecord.of(c) for c in self.root_causes),
            enrichment={name: EnrichmentRecord.of(e) for name, e in self.enrichment.items()},
            alert=AlertRecord.of(self.alert),
            group=GroupRecord.of(self.group),
            graph=self.graph,
            incident_key=self.incident_key or self.group.group_key,
            sent_with=self.sent_with,
            subject=SubjectRecord.of_labels(self.alert.labels),
        )


class Stage(Protocol):
    async def exec(self, batch: Sequence[Work]) -> list[Work]: ...


class StageFailed(Exception):
    """A stage raised: `stage` names it (a word, for metrics and the quarantine list)."""

    def __init__(self, stage: str, error: Exception) -> None:
        super().__init__(f"{stage}: {type(error).__name__}: {error}")
        self.stage = stage


def stage_name(stage: object) -> str:
    """EnrichAndRankStage -> enrich_and_rank: a small fixed set, safe as a label value."""
    name = type(stage).__name__.removesuffix("Stage")
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


class Pipeline:
    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)

    async def run(self, batch: Sequence[Work]) -> list[Work]:
        items = list(batch)
        for stage in self.stages:
            try:
                items = await stage.exec(items)
            except Exception as exc:
                raise StageFailed(stage_name(stage), exc) from exc
        return items
