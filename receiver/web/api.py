"""The JSON API over incidents: GET /api/v1/incidents and GET /api/v1/incidents/{id}.

Everything read from the store is shown as data, never as markup; Apprise URLs are
redacted before they leave the process.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from receiver.incidents import subject_json
from receiver.redact import redact_url
from receiver.service.runtime import RUNTIME
from receiver.store.base import IncidentAction, IncidentDetail, IncidentQuery
from receiver.web.openapi import OPENAPI_PATH, openapi_json

MAX_LIMIT = 500
MAX_ID = 2**63 - 1  # SQLite's largest integer
_MAX_ID_DIGITS = len(str(MAX_ID))


def canonical_int(text: str) -> int | None:
    """The integer `text` spells in canonical form (ASCII digits, no sign, no leading zero,
    at most int64), else None. int() also takes "١٢", "+1", " 1", "01" and "1_0": each would
    be a second name for one incident, or a 500 where the check and int() disagree."""
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_ID_DIGITS or (text[0] == "0" and text != "0"):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


class BadQuery(ValueError):
    pass


def parse_incident_query(params: Any) -> IncidentQuery:
    """Query string -> IncidentQuery; every bad parameter is a 400 naming it."""

    def integer(name: str, default: int | None, low: int, high: int) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        value = canonical_int(raw)
        if value is None:
            raise BadQuery(f"{name} must be an integer, in plain digits")
        if not low <= value <= high:
            raise BadQuery(f"{name} must be between {low} and {high}")
        return value

    status = params.get("status") or None
    if status not in (None, "firing", "resolved"):
        raise BadQuery("status must be firing or resolved")
    text = params.get("text") or params.get("q") or None
    if text is not None and len(text) > 200:
        raise BadQuery("text must be at most 200 characters")
    return IncidentQuery(
        status=status,
        severity=params.get("severity") or None,
        namespace=params.get("namespace") or None,
        text=text,
        limit=integer("limit", 50, 1, MAX_LIMIT) or 50,
        before_id=integer("cursor", None, 1, 2**62),
    )


async def list_incidents(request: web.Request) -> web.Response:
    try:
        query = parse_incident_query(request.query)
    except BadQuery as exc:
        return web.json_response({"error": str(exc)}, status=400)
    found = await request.app[RUNTIME].store.incidents(query)
    next_cursor = str(found[-1].id) if len(found) == query.limit and found else None
    return web.json_response({"incidents": [i.to_json() for i in found], "next": next_cursor})


async def get_incident(request: web.Request) -> web.Response:
    incident_id = canonical_int(request.match_info["id"])
    # Anything but an id in canonical form names no incident: 404, as an unknown id.
    detail = await request.app[RUNTIME].store.incident(incident_id) if incident_id else None
    if detail is None:
        return web.json_response({"error": "no such incident"}, status=404)
    actions = await request.app[RUNTIME].store.actions(detail.incident.id or 0)
    return web.json_response({**incident_json(detail), **actions_json(actions)})


def incident_json(detail: IncidentDetail) -> dict[str, Any]:
    latest_causes = next((a.outcome.root_causes for a in reversed(detail.alerts) if a.outcome.root_causes), ())
    return {
        **detail.incident.to_json(),
        "alerts": [
            {
                "alert_id": a.alert_id,
                "received_at": a.received_at,
                "processed_at": a.processed_at,
                **_plain(a.outcome.alert),
                "subject": subject_json(a.outcome.about),
                # Its own: a group can hold unrelated faults, each naming its own cause first.
                "root_causes": [_plain(cause) for cause in a.outcome.root_causes],
            }
            for a in detail.alerts
        ],
        "enrichments": [
            {
                "alert_id": a.alert_id,
                "fingerprint": a.outcome.alert.fingerprint,
                **{name: _plain(found) for name, found in a.outcome.enrichment.items()},
            }
            for a in detail.alerts
        ],
        "root_causes": [_plain(cause) for cause in latest_causes],
        "decisions": [
            {
                "alert_id": a.alert_id,
                "fingerprint": a.outcome.alert.fingerprint,
                "status": a.outcome.alert.status,
                "decision": a.outcome.decision,
                "reason": a.outcome.reason,
                "rule": a.outcome.rule,
                "sent_with": a.outcome.sent_with,
            }
            for a in detail.alerts
        ],
        "notifications": [
            {
                "id": d.id,
                "alert_id": d.alert_id,
                "channel": redact_url(d.url),
                "state": d.state,
                "dead_letter": d.state == "dead",
                "attempts": d.attempts,
                "last_error": d.last_error,
                "created_at": d.created_at,
                "updated_at": d.updated_at,
            }
            for d in detail.deliveries
        ],
    }


def actions_json(actions: list[IncidentAction]) -> dict[str, Any]:
    """The incident's actions for the API: the timeline entries and the open acknowledgement."""
    acks = [a for a in actions if a.kind == "ack"]
    return {
        "actions": [a.to_json() for a in actions],
        "acknowledged": {"by": acks[-1].by, "at": acks[-1].at} if acks else None,
        "feedback": [
            {"by": a.by, "at": a.at, "note": a.note, **{k: a.details.get(k) for k in ("verdict", "cause")}}
            for a in actions
            if a.kind == "feedback"
        ],
    }


def _plain(record: msgspec.Struct) -> dict[str, Any]:
    """A part of a stored outcome as the JSON it is stored as (facts that JSON has no
    type for as text, as they were stored)."""
    plain: dict[str, Any] = msgspec.to_builtins(record, enc_hook=str)
    return plain


async def list_quarantine(request: web.Request) -> web.Response:
    """Alerts set aside because a stage failed on them, newest first, with the error."""
    limit = canonical_int(request.query.get("limit") or "100")
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        return web.json_response({"error": f"limit must be an integer between 1 and {MAX_LIMIT}"}, status=400)
    items = await request.app[RUNTIME].store.quarantined(limit)
    return web.json_response({"items": [item.to_json() for item in items]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/quarantine", list_quarantine)
    app.router.add_get("/api/v1/incidents", list_incidents)
    app.router.add_get("/api/v1/incidents/{id}", get_incident)
    app.router.add_get(OPENAPI_PATH, openapi_json)
