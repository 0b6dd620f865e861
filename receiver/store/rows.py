"""Rows and the domain objects they hold, the same for the SQLite and the PostgreSQL store:
converting one to the other, reading stored outcomes and bodies, describing what cannot be
read (quarantine), and the SQL fragments both dialects write alike. Nothing here touches a
connection: what depends on the database stays with its backend.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
import structlog

from receiver.incidents import Incident
from receiver.models import WebhookMessage, message_from_body
from receiver.pipeline.outcome import Outcome, SubjectRecord, decode_outcome
from receiver.store.base import (
    ActionKind,
    ConfirmedCause,
    DeliveryRecord,
    IncidentAction,
    IncidentDetail,
    IncidentQuery,
    Quarantine,
    QueuedAlert,
    StoredOutcome,
)

log = structlog.get_logger("kubebot.store")


@dataclass
class Expanded:
    """What expanding the inbox found: duplicate alerts, alerts in bodies that no longer
    parse, and the messages just decoded whose alerts the same claim may take (each body
    is decoded once)."""

    duplicates: int = 0
    unreadable: int = 0
    messages: dict[int, WebhookMessage] = field(default_factory=dict)


def read_claimed(
    rows: Sequence[tuple[Any, ...]],
    messages: Mapping[int, WebhookMessage],
    parse: Callable[[bytes], WebhookMessage | Exception],
) -> tuple[list[QueuedAlert], list[Quarantine]]:
    """Claimed rows (id, message_id, position, received_at, held, fingerprint, body) as
    queued alerts, in id order, each body parsed once (`messages` are parsed already); and
    the rows no alert can be read from, to quarantine."""
    parsed: dict[int, WebhookMessage | Exception] = dict(messages)
    queued = []
    unreadable_rows = []
    for alert_id, message_id, position, received_at, held, fingerprint, body in sorted(rows):
        if message_id not in parsed:
            parsed[message_id] = parse(body)
        message = parsed[message_id]
        try:
            if isinstance(message, Exception):
                raise message
            alert = message.alerts[position]
        except Exception as exc:  # a row an older version expanded that this one cannot read
            log.error("stored_alert_unreadable", alert_id=alert_id, message_id=message_id, error=str(exc)[:300])
            unreadable_rows.append(Quarantine(alert_id, "expand", describe_error(exc), fingerprint))
            continue
        queued.append(QueuedAlert(alert_id, alert, message.group, utc_time(received_at), bool(held)))
    return queued, unreadable_rows


def held_state(fingerprint: str, status: str, dedup_key: str, received_at: float) -> tuple[str, str, datetime]:
    """A held alert's (fingerprint, startsAt, received at) from its row."""
    # The key is "fingerprint:status:startsAt"; the fingerprint may hold colons too.
    return fingerprint, dedup_key[len(fingerprint) + len(status) + 2 :], utc_time(received_at)


def parse_stored_body(body: bytes) -> WebhookMessage | Exception:
    """A stored body's message, or the error that reading it raised (never raised here)."""
    try:
        return message_from_body(body)
    except Exception as exc:
        return exc


def describe_error(exc: Exception) -> str:
    """An error as a quarantine row keeps it: its type and message, bounded."""
    return f"{type(exc).__name__}: {exc}"[:500]


def unreadable_alerts(body: bytes, error: str) -> list[Quarantine]:
    """One quarantine item per alert of a body that does not parse, with whatever can still
    be read of its identity; one for the whole body when not even that can."""
    try:
        alerts = json.loads(body)["alerts"]
        items = [
            Quarantine(
                None, "expand", error, _text(a.get("fingerprint")), _text((a.get("labels") or {}).get("alertname"))
            )
            for a in alerts
        ]
    except Exception:  # anything at all: the body is only described here
        return [Quarantine(None, "expand", error)]
    return items or [Quarantine(None, "expand", error)]


def utc_time(ts: float) -> datetime:
    """A stored timestamp (seconds since the epoch, as both stores keep times) in UTC."""
    return datetime.fromtimestamp(ts, UTC)


def _text(value: object) -> str | None:
    return value[:256] if isinstance(value, str) else None


INCIDENT_COLUMNS = (
    "id, key, title, status, severity, namespace, started_at, updated_at, resolved_at,"
    " top_cause, paged, firing_count, alert_count, subject"
)
_SUBJECT_DECODER = msgspec.json.Decoder(SubjectRecord)


def read_outcome(alert_id: int, raw: str) -> Outcome | None:
    """A stored outcome, or None (logged) for a row no version of the outcome reads:
    damaged, or of a shape nobody planned for. One such row must not fail a page."""
    try:
        return decode_outcome(raw)
    except msgspec.DecodeError as exc:
        log.warning("outcome_unreadable", alert_id=alert_id, error=str(exc)[:200])
        return None


def incident_row(incident: Incident) -> tuple[Any, ...]:
    """An incident's column values, in the order of the INSERT/UPDATE both stores write."""
    return (
        incident.key,
        incident.title,
        incident.status,
        incident.severity,
        incident.namespace,
        incident.started_at,
        incident.updated_at,
        incident.resolved_at,
        incident.top_cause,
        int(incident.paged),
        incident.firing_count,
        incident.alert_count,
        msgspec.json.encode(incident.subject).decode() if incident.subject is not None else None,
    )


def incidents_query(query: IncidentQuery, placeholder: str) -> tuple[str, tuple[object, ...]]:
    """The incidents list's SQL and parameters, newest first, in the dialect whose
    parameter placeholder is `placeholder` (`?` for SQLite, `%s` for psycopg)."""
    clauses: list[str] = ["1 = 1"]
    params: list[object] = []
    for column, value in (("status", query.status), ("severity", query.severity), ("namespace", query.namespace)):
        if value is not None:
            clauses.append(f"{column} = {placeholder}")
            params.append(value)
    if query.text:
        clauses.append(f"(title LIKE {placeholder} ESCAPE '\\' OR top_cause LIKE {placeholder} ESCAPE '\\')")
        pattern = "%" + query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params += [pattern, pattern]
    if query.before_id is not None:
        clauses.append(f"id < {placeholder}")
        params.append(query.before_id)
    sql = (
        f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE {' AND '.join(clauses)}"  # noqa: S608
        f" ORDER BY id DESC LIMIT {placeholder}"
    )
    return sql, (*params, query.limit)


def incident_from_row(row: tuple[Any, ...]) -> Incident:
    """An incident from a row of `INCIDENT_COLUMNS`."""
    return Incident(
        id=row[0],
        key=row[1],
        title=row[2],
        status=row[3],
        severity=row[4],
        namespace=row[5],
        started_at=row[6],
        updated_at=row[7],
        resolved_at=row[8],
        top_cause=row[9],
        paged=bool(row[10]),
        firing_count=row[11],
        alert_count=row[12],
        subject=_read_subject(row[13]),
    )


def incident_detail(
    row: tuple[Any, ...], alerts: Sequence[tuple[Any, ...]], deliveries: Sequence[tuple[Any, ...]]
) -> IncidentDetail:
    """An incident's page from its row, its alerts (id, received_at, processed_at,
    outcome_json; unreadable outcomes left out) and its deliveries (`DeliveryRecord` columns)."""
    readable = [(a, outcome) for a in alerts if (outcome := read_outcome(a[0], a[3])) is not None]
    return IncidentDetail(
        incident=incident_from_row(row),
        alerts=tuple(
            StoredOutcome(alert_id=a[0], received_at=a[1], processed_at=a[2], outcome=outcome)
            for a, outcome in readable
        ),
        deliveries=tuple(DeliveryRecord(*d) for d in deliveries),
    )


def _read_subject(raw: str | None) -> SubjectRecord | None:
    if raw is None:
        return None
    try:
        return _SUBJECT_DECODER.decode(raw)
    except msgspec.DecodeError:
        return None  # a damaged cell: the next alert of the incident fills it again


def read_nullable_outcome(alert_id: int, raw: str | None) -> Outcome | None:
    """As `read_outcome`, for the actions' reads: NULL is None, and any error reading it is logged."""
    if raw is None:
        return None
    try:
        return decode_outcome(raw)
    except Exception as exc:  # one damaged row must not fail a page or a report
        log.warning("outcome_unreadable", alert_id=alert_id, error=str(exc)[:200])
        return None


def action_from_row(row: tuple[Any, ...]) -> IncidentAction:
    """An action from a row of its columns (details as JSON text; unreadable details are empty)."""
    try:
        details = json.loads(row[6])
    except ValueError:
        details = {}
    return IncidentAction(
        id=row[0],
        incident_id=row[1],
        kind=cast(ActionKind, row[2]),
        by=row[3],
        at=row[4],
        note=row[5],
        details=details if isinstance(details, dict) else {},
    )


def confirmed_causes_from_rows(rows: Iterable[tuple[Any, ...]]) -> list[ConfirmedCause]:
    """Causes engineers confirmed, from rows (by_whom, at, details, alert_id, outcome_json);
    a row whose outcome or cause cannot be read is left out."""
    confirmed = []
    for by, at, details, alert_id, raw in rows:
        outcome = read_nullable_outcome(alert_id, raw)
        cause = json.loads(details).get("cause")
        if outcome is None or not isinstance(cause, str):
            continue
        confirmed.append(ConfirmedCause(cause, by, at, outcome.alertname, dict(outcome.alert.labels)))
    return confirmed
