"""Incidents: the alerts that belong together, with one status and one ranked cause.

Pure code: `apply_outcome` folds one processed alert into its incident. The store keeps
the rows; the pipeline decides the incident key (the Alertmanager group by default, the
cause's incident when correlation finds one).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import msgspec

from receiver.pipeline.outcome import Outcome, SubjectRecord

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
    # What the alert that opened it is about; None only for incidents stored before subjects.
    subject: SubjectRecord | None = None

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
            "subject": subject_json(self.subject),
        }


def subject_json(subject: SubjectRecord | None) -> dict[str, Any] | None:
    """`{"kind", "namespace", "name"}`, as the API shows a subject."""
    if subject is None:
        return None
    plain: dict[str, Any] = msgspec.to_builtins(subject)
    return plain


def severity_rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else 0


def apply_outcome(current: Incident | None, outcome: Outcome, now: float, was_firing: bool) -> Incident:
    """The incident after one more processed alert (pure; `current` None opens a new one).

    `was_firing` says whether this alert's fingerprint already counts as firing in the
    incident: the store keeps that set in its own table, so an incident of a storm's
    50,000 alerts costs one row lookup per alert, not a copy of the whole set.
    """
    severity = outcome.alert.labels.get("severity", "none")
    causes = outcome.root_causes
    subject = outcome.about
    if current is None:
        current = Incident(
            id=None,
            key=outcome.key,
            title=_title(outcome.alertname, subject),
            status="firing",
            severity=severity,
            namespace=_namespace(subject),
            started_at=now,
            updated_at=now,
            resolved_at=None,
            top_cause=None,
            paged=False,
            firing_count=0,
            alert_count=0,
            subject=subject,
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
        subject=current.subject or subject,
    )


def _title(alertname: str, subject: SubjectRecord) -> str:
    """The alert and its subject: "KubeHpaMaxedOut HorizontalPodAutoscaler shop/frontend"."""
    return f"{alertname} {subject.ref}" if subject.names_an_object else alertname


def _namespace(subject: SubjectRecord) -> str:
    """The subject's namespace (a Namespace's own name), never the exporter's."""
    if subject.kind == "Namespace":
        return subject.name
    return subject.namespace or ""
