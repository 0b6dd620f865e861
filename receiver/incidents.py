"""Incidents: the alerts that belong together, with one status and one ranked cause.

Pure code: `apply_outcome` folds one processed alert into its incident. The store keeps
the rows; the pipeline decides the incident key (the Alertmanager group by default, the
cause's incident when correlation finds one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from receiver.pipeline.outcome import Outcome

SEVERITY_ORDER = ("none", "info", "warning", "error", "critical")


@dataclass(frozen=True)
class Incident:
    id: int | None
    key: str
    title: str
    status: str  # firing | resolved
    severity: str
    namespace: str
    started_at: float
    updated_at: float
    resolved_at: float | None
    top_cause: str | None
    paged: bool
    firing_count: int  # alerts of this incident still firing
    alert_count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "severity": self.severity,
            "namespace": self.namespace,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "resolved_at": self.resolved_at,
            "top_cause": self.top_cause,
            "paged": self.paged,
            "firing_alerts": self.firing_count,
            "alert_count": self.alert_count,
        }


def severity_rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else 0


def apply_outcome(current: Incident | None, outcome: Outcome, now: float, was_firing: bool) -> Incident:
    """The incident after one more processed alert (pure; `current` None opens a new one).

    `was_firing` says whether this alert's fingerprint already counts as firing in the
    incident: the store keeps that set in its own table, so an incident of a storm's
    50,000 alerts costs one row lookup per alert, not a copy of the whole set.
    """
    labels = outcome.alert.labels
    severity = labels.get("severity", "none")
    causes = outcome.root_causes
    if current is None:
        current = Incident(
            id=None,
            key=outcome.key,
            title=_title(labels),
            status="firing",
            severity=severity,
            namespace=labels.get("namespace", ""),
            started_at=now,
            updated_at=now,
            resolved_at=None,
            top_cause=None,
            paged=False,
            firing_count=0,
            alert_count=0,
        )
    now_firing = outcome.alert.status == "firing"
    firing = current.firing_count + int(now_firing) - int(was_firing)
    status = "firing" if firing else "resolved"
    return dataclasses.replace(
        current,
        status=status,
        severity=severity if severity_rank(severity) > severity_rank(current.severity) else current.severity,
        updated_at=now,
        resolved_at=None if firing else now,
        top_cause=causes[0].service if causes else current.top_cause,
        paged=current.paged or outcome.paged,
        firing_count=firing,
        alert_count=current.alert_count + 1,
    )


def _title(labels: Mapping[str, str]) -> str:
    where = labels.get("namespace") or labels.get("node") or labels.get("job") or ""
    name = labels.get("alertname", "unnamed")
    return f"{name} in {where}" if where else name
