"""The incident page's forms: POST /incidents/{id}/silence, /ack and /feedback.

Plain HTML form posts (no script needed) that do what the JSON API does, through the same
code, then send the browser back to the incident (303). The actor is the basic-auth user
when the browser sent one, else the form's required "by". Every post carries the form's
CSRF token, checked before anything else: missing, forged or for another incident is a
403. Bad input and Alertmanager failing show on the page with their status, never a 500.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from receiver.service.runtime import RUNTIME, Runtime
from receiver.web import csrf
from receiver.web.actions import (
    ActionFailed,
    BadInput,
    parse_ack,
    parse_actor,
    parse_feedback,
    parse_silence,
    record_ack,
    record_feedback,
    silence,
)
from receiver.web.api import canonical_int
from receiver.web.dashboard import _html, basic_user, render, render_incident
from receiver.web.edge import COMPRESSED, BodyRefused, accepted_encoding, read_decoded

Act = Callable[[Runtime, int, str, Mapping[str, Any]], Awaitable[None]]


async def _silence(runtime: Runtime, incident_id: int, by: str, form: Mapping[str, Any]) -> None:
    seconds = canonical_int(str(form.get("duration_seconds") or ""))
    if seconds is None:
        raise BadInput("duration_seconds", "required, a number of seconds")
    body = {"incident_id": incident_id, "duration_seconds": seconds, "comment": form.get("comment"), "created_by": by}
    await silence(runtime, parse_silence(body))


async def _ack(runtime: Runtime, incident_id: int, by: str, form: Mapping[str, Any]) -> None:
    await record_ack(runtime, incident_id, by, parse_ack(form))


async def _feedback(runtime: Runtime, incident_id: int, by: str, form: Mapping[str, Any]) -> None:
    await record_feedback(runtime, incident_id, by, parse_feedback(form))


def _handler(act: Act) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        runtime = request.app[RUNTIME]
        incident_id = canonical_int(request.match_info["id"])
        if not incident_id or await runtime.store.incident(incident_id) is None:
            return _html(render("not_found.html", what="such incident", now=time.time()), status=404)
        try:
            form = await _form(request)
        except BodyRefused as exc:
            return await render_incident(request, error=exc.message, status=exc.status)
        if not csrf.valid(request.app, incident_id, _field(form, csrf.FIELD), time.time()):
            page = render("refused.html", incident_id=incident_id, now=time.time())
            return _html(page, status=403)
        try:
            by = basic_user(request) or parse_actor(form)
            await act(runtime, incident_id, by, form)
        except BadInput as exc:
            return await render_incident(request, error=str(exc), status=400)
        except ActionFailed as exc:
            return await render_incident(request, error=str(exc), status=exc.status)
        raise web.HTTPSeeOther(f"/incidents/{incident_id}#timeline")

    return handle


async def _form(request: web.Request) -> Mapping[str, Any]:
    if accepted_encoding(request) not in COMPRESSED:
        return await request.post()
    # No browser compresses a form, but a script may: decoded as the API's bodies are, and
    # read as urlencoded (what the page's forms send).
    raw = await read_decoded(request, request.app[RUNTIME].config.server.max_body_bytes)
    try:
        fields = urllib.parse.parse_qsl(raw.decode(request.charset or "utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, LookupError):
        raise BodyRefused(400, "form body is not in its charset") from None
    form: dict[str, str] = {}
    for name, value in fields:
        form.setdefault(name, value)  # the first of a repeated field, as request.post() gives it
    return form


def _field(form: Mapping[str, Any], name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def add_routes(app: web.Application) -> None:
    csrf.install(app)
    app.router.add_post("/incidents/{id}/silence", _handler(_silence))
    app.router.add_post("/incidents/{id}/ack", _handler(_ack))
    app.router.add_post("/incidents/{id}/feedback", _handler(_feedback))
