"""What engineers do from KubeBot: silence (in Alertmanager), acknowledge, give feedback.

POST /api/v1/silences, POST /api/v1/incidents/{id}/ack, POST /api/v1/incidents/{id}/feedback.
Every bad input is a 400 naming its field, an unknown incident or alert a 404, and
Alertmanager failing a 503 (unreachable) or 502 (refused): never a 500. Each action is
stored with its incident (who, when, what) and shown on it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from receiver.insights import load_insights
from receiver.matchers import MatcherError, parse_matcher
from receiver.service.runtime import RUNTIME, Runtime
from receiver.service.silences import (
    AlertmanagerRefused,
    AlertmanagerUnavailable,
    CreatedSilence,
    SilenceMatcher,
    distinct_matcher_sets,
)
from receiver.store.base import IncidentAction, IncidentDetail, NewAction
from receiver.web.api import MAX_ID, canonical_int
from receiver.web.edge import BodyRefused, read_decoded

MIN_SILENCE_SECONDS = 1
MAX_SILENCE_SECONDS = 30 * 86400
MAX_NAME = 200
MAX_NOTE = 2000
MAX_MATCHERS = 32
MAX_SILENCES = 100  # one per distinct alert identity of an incident
VERDICTS = ("useful", "noise")


class BadInput(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return web.json_response(body, status=status)


async def _json_object(request: web.Request) -> dict[str, Any]:
    limit = request.app[RUNTIME].config.server.max_body_bytes
    try:
        body = json.loads(await read_decoded(request, limit))
    except BodyRefused as exc:
        if exc.status == 413:  # as aiohttp answers a body past client_max_size
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=limit + 1) from None
        raise BadInput("$", exc.message) from None
    except (ValueError, UnicodeDecodeError):
        raise BadInput("$", "body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadInput("$", "body must be a JSON object")
    return body


def _text(body: Mapping[str, Any], name: str, limit: int, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadInput(name, "required, a non-empty string" if required else "must be a string")
    if len(value) > limit:
        raise BadInput(name, f"at most {limit} characters")
    return value.strip()


def _id(body: Mapping[str, Any], name: str) -> int:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise BadInput(name, "must be a positive integer")
    return value


def _duration(body: Mapping[str, Any]) -> timedelta:
    value = body.get("duration_seconds")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput("duration_seconds", "required, a number of seconds")
    if not MIN_SILENCE_SECONDS <= value <= MAX_SILENCE_SECONDS:
        raise BadInput("duration_seconds", f"must be between {MIN_SILENCE_SECONDS} and {MAX_SILENCE_SECONDS} (30 days)")
    return timedelta(seconds=value)


def _explicit_matchers(value: Any) -> tuple[SilenceMatcher, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_MATCHERS:
        raise BadInput("matchers", f"must be a list of 1 to {MAX_MATCHERS} matchers such as 'alertname=\"X\"'")
    parsed = []
    for i, text in enumerate(value):
        if not isinstance(text, str) or len(text) > 1000:
            raise BadInput(f"matchers[{i}]", 'must be a matcher such as alertname="X"')
        try:
            parsed.append(parse_matcher(text))
        except MatcherError as exc:
            raise BadInput(f"matchers[{i}]", str(exc)) from None
    if all(m.matches({}) for m in parsed):
        # Alertmanager refuses these too: such a silence would cover every alert there is.
        raise BadInput("matchers", "at least one matcher must not match the empty string")
    return tuple(SilenceMatcher.of(m) for m in parsed)


@dataclass(frozen=True)
class SilenceRequest:
    incident_id: int | None
    alert_id: int | None
    matchers: tuple[SilenceMatcher, ...]
    duration: timedelta
    comment: str
    created_by: str


def parse_silence(body: Mapping[str, Any]) -> SilenceRequest:
    targets = [name for name in ("incident_id", "alert_id", "matchers") if body.get(name) is not None]
    if len(targets) != 1:
        raise BadInput("incident_id", "give exactly one of incident_id, alert_id or matchers")
    target = targets[0]
    return SilenceRequest(
        incident_id=_id(body, "incident_id") if target == "incident_id" else None,
        alert_id=_id(body, "alert_id") if target == "alert_id" else None,
        matchers=_explicit_matchers(body["matchers"]) if target == "matchers" else (),
        duration=_duration(body),
        comment=_text(body, "comment", MAX_NOTE),
        created_by=_text(body, "created_by", MAX_NAME),
    )


def firing_labels(detail: IncidentDetail) -> list[Mapping[str, str]]:
    """The labels of the incident's alerts still firing (each alert's latest state); all
    its alerts when none is (a resolved incident silenced against coming back)."""
    latest = {a.outcome.alert.fingerprint: a.outcome.alert for a in detail.alerts}
    firing: list[Mapping[str, str]] = [alert.labels for alert in latest.values() if alert.status == "firing"]
    return firing or [alert.labels for alert in latest.values()]


class ActionFailed(Exception):
    """An action that could not be done: the status and message the caller answers with."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


async def silence(runtime: Runtime, wanted: SilenceRequest) -> list[CreatedSilence]:
    """Create the silences in Alertmanager and put them on the incident's timeline (the API
    and the dashboard alike); ActionFailed says why not."""
    incident_id = wanted.incident_id
    matcher_sets = [wanted.matchers] if wanted.matchers else []
    if wanted.incident_id is not None:
        detail = await runtime.store.incident(wanted.incident_id)
        if detail is None:
            raise ActionFailed(404, "no such incident", "incident_id")
        matcher_sets = distinct_matcher_sets(firing_labels(detail))[:MAX_SILENCES]
    elif wanted.alert_id is not None:
        ref = await runtime.store.alert_ref(wanted.alert_id)
        if ref is None:
            raise ActionFailed(404, "no such alert (or not processed yet)", "alert_id")
        incident_id = ref.incident_id
        matcher_sets = distinct_matcher_sets([ref.outcome.alert.labels])
    if runtime.alertmanager is None:
        raise ActionFailed(409, "silences need alertmanager.url in the configuration")
    created: list[CreatedSilence] = []
    failure: ActionFailed | None = None
    try:
        for matchers in matcher_sets:
            created.append(
                await runtime.alertmanager.create_silence(
                    matchers, runtime.clock(), wanted.duration, wanted.created_by, wanted.comment
                )
            )
    except AlertmanagerUnavailable as exc:
        failure = ActionFailed(503, str(exc))
    except AlertmanagerRefused as exc:
        failure = ActionFailed(502, str(exc))
    if created:  # those Alertmanager took are on the timeline, even when a later one failed
        await _record_silences(runtime, incident_id, wanted, created)
    if failure is not None:
        raise failure
    return created


async def create_silences(request: web.Request) -> web.Response:
    try:
        created = await silence(request.app[RUNTIME], parse_silence(await _json_object(request)))
    except BadInput as exc:
        return _error(400, str(exc), exc.field)
    except ActionFailed as exc:
        return _error(exc.status, str(exc), exc.field)
    return web.json_response({"silences": [s.to_json() for s in created]})


async def _record_silences(
    runtime: Runtime, incident_id: int | None, wanted: SilenceRequest, created: list[CreatedSilence]
) -> None:
    now = runtime.clock()
    details = {
        "silences": [{**s.to_json(), "matchers": [str(m) for m in s.matchers]} for s in created],
        "duration_seconds": wanted.duration.total_seconds(),
        "ends_at": (now + wanted.duration).timestamp(),
    }
    action = NewAction(incident_id, "silence", wanted.created_by, wanted.comment, details)
    await runtime.store.record_action(action, now)


@dataclass(frozen=True)
class Feedback:
    verdict: str
    cause: str | None
    note: str


def parse_ack(body: Mapping[str, Any]) -> str:
    """The acknowledgement's note."""
    return _text(body, "note", MAX_NOTE, required=False)


def parse_feedback(body: Mapping[str, Any]) -> Feedback:
    verdict = body.get("verdict")
    if verdict not in VERDICTS:
        raise BadInput("verdict", "required, useful or noise")
    cause = _text(body, "cause", MAX_NAME, required=False) or None
    return Feedback(str(verdict), cause, _text(body, "note", MAX_NOTE, required=False))


def parse_actor(body: Mapping[str, Any], field: str = "by") -> str:
    return _text(body, field, MAX_NAME)


async def record_ack(runtime: Runtime, incident_id: int, by: str, note: str) -> IncidentAction:
    return await runtime.store.record_action(NewAction(incident_id, "ack", by, note), runtime.clock())


async def record_feedback(runtime: Runtime, incident_id: int, by: str, feedback: Feedback) -> IncidentAction:
    details = {"verdict": feedback.verdict, "cause": feedback.cause}
    action = NewAction(incident_id, "feedback", by, feedback.note, details)
    return await runtime.store.record_action(action, runtime.clock())


async def acknowledge(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    incident_id = await _known_incident(request)
    if incident_id is None:
        return _error(404, "no such incident")
    try:
        body = await _json_object(request)
        by, note = parse_actor(body), parse_ack(body)
    except BadInput as exc:
        return _error(400, str(exc), exc.field)
    action = await record_ack(runtime, incident_id, by, note)
    return web.json_response({"action": action.to_json()})


async def give_feedback(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    incident_id = await _known_incident(request)
    if incident_id is None:
        return _error(404, "no such incident")
    try:
        body = await _json_object(request)
        feedback = parse_feedback(body)
        by = parse_actor(body)
    except BadInput as exc:
        return _error(400, str(exc), exc.field)
    action = await record_feedback(runtime, incident_id, by, feedback)
    return web.json_response({"action": action.to_json()})


async def _known_incident(request: web.Request) -> int | None:
    incident_id = canonical_int(request.match_info["id"])
    if not incident_id:
        return None
    detail = await request.app[RUNTIME].store.incident(incident_id)
    return incident_id if detail is not None else None


MAX_DAYS = 365


async def get_insights(request: web.Request) -> web.Response:
    raw = request.query.get("days") or "7"
    days = canonical_int(raw)
    if days is None or not 1 <= days <= MAX_DAYS:
        return _error(400, f"days must be an integer between 1 and {MAX_DAYS}", "days")
    runtime = request.app[RUNTIME]
    return web.json_response({"alerts": await load_insights(runtime.store, runtime.clock(), days)})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/insights", get_insights)
    app.router.add_post("/api/v1/silences", create_silences)
    app.router.add_post("/api/v1/incidents/{id}/ack", acknowledge)
    app.router.add_post("/api/v1/incidents/{id}/feedback", give_feedback)
