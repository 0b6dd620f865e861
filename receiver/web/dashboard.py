"""The dashboard: GET / (incidents) and GET /incidents/{id}, server-rendered HTML.

Every label, annotation, log line and event message is untrusted: Jinja2 escapes all of
it (autoescape on for every template), links are only made from http(s) URLs, and the
Content-Security-Policy allows no inline script or style, so a payload that slipped
through would still not run. Auth is the app's middleware, as for the API.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from base64 import b64decode
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import jinja2
import yaml
from aiohttp import web

from receiver.incidents import SEVERITY_ORDER, Incident
from receiver.insights import load_insights
from receiver.service.runtime import RUNTIME
from receiver.store.base import Incidents
from receiver.web import csrf
from receiver.web.api import BadQuery, canonical_int, parse_incident_query
from receiver.web.view import IncidentRow, incident_rows, incident_view, paging_note

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
    " frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
REFRESH_SECONDS = 30
PAGE_SIZE = 50
FIRING_LIMIT = 200  # firing incidents are all shown above the paged history, up to this many
QUARANTINE_PAGE = 200
INSIGHT_DAYS = (1, 7, 30, 90)
MAX_DAYS = 365
MAX_PAGING_LOOKUPS = 60  # each reads an incident's alerts; a storm must not make the list slow
SILENCE_DURATIONS = ((3600, "1 hour"), (4 * 3600, "4 hours"), (86400, "1 day"), (7 * 86400, "7 days"))
STATIC_TYPES: Mapping[str, str] = {"style.css": "text/css", "app.js": "text/javascript"}


@cache
def _templates() -> jinja2.Environment:
    # autoescape=True, not select_autoescape: every template is HTML, including the SVG parts.
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("receiver.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = asset_url
    env.globals["refresh_seconds"] = REFRESH_SECONDS
    return env


@cache
def static_file(name: str) -> bytes:
    return resources.files("receiver.web").joinpath("static", name).read_bytes()


@cache
def asset_url(name: str) -> str:
    """A versioned URL, so browsers may cache static files and still see a new release."""
    return f"/static/{name}?v={hashlib.sha256(static_file(name)).hexdigest()[:10]}"


@dataclass(frozen=True)
class ActionForms:
    """What the incident page's forms need: the CSRF token, who is acting (when the
    browser said so through basic auth), the silence durations offered, a failed post's error."""

    csrf: str
    actor: str | None
    durations: tuple[tuple[int, str], ...]
    error: str | None = None


@dataclass(frozen=True)
class ListPage:
    firing: list[IncidentRow]
    history: list[IncidentRow]
    firing_capped: bool
    show_firing: bool
    show_history: bool
    filters: Mapping[str, str]
    older: str | None  # URL of the next page of history
    error: str | None
    quarantined: int = 0  # alerts set aside because a stage failed on them (newest few counted)


def render(template: str, **context: Any) -> str:
    return _templates().get_template(template).render(**context)


def render_list_page(page: ListPage, now: float) -> str:
    return render("incidents.html", page=page, severities=SEVERITY_ORDER[::-1], now=now)


async def list_page(request: web.Request) -> web.Response:
    store: Incidents = request.app[RUNTIME].store
    filters = {k: request.query.get(k, "") for k in ("status", "severity", "namespace", "text", "cursor")}
    try:
        query = parse_incident_query({**filters, "limit": str(PAGE_SIZE)})
    except BadQuery as exc:
        page = ListPage([], [], False, False, False, filters, None, str(exc))
        return _html(render_list_page(page, time.time()), status=400)
    now = time.time()
    # Everything firing stays on top; resolved history below it, a page at a time.
    show_firing = query.status == "firing" or (query.status is None and query.before_id is None)
    show_history = query.status != "firing"
    firing: list[Incident] = []
    if show_firing:
        firing = await store.incidents(replace(query, status="firing", limit=FIRING_LIMIT, before_id=None))
    history: list[Incident] = []
    if show_history:
        history = await store.incidents(replace(query, status="resolved"))
    notes = await _paging_notes(store, [*firing, *history])
    older = None
    if len(history) == PAGE_SIZE and history[-1].id is not None:
        kept = {k: v for k, v in filters.items() if v and k != "cursor"}
        older = "/?" + urlencode({**kept, "cursor": str(history[-1].id)})
    quarantined = len(await store.quarantined(QUARANTINE_PAGE))
    page = ListPage(
        quarantined=quarantined,
        firing=incident_rows(firing, notes, now),
        history=incident_rows(history, notes, now),
        firing_capped=len(firing) == FIRING_LIMIT,
        show_firing=show_firing,
        show_history=show_history,
        filters=filters,
        older=older,
        error=None,
    )
    return _html(render_list_page(page, now))


async def _paging_notes(store: Incidents, incidents: list[Incident]) -> dict[int, str]:
    """Why an incident paged nobody needs its alerts' decisions; paged ones need no lookup."""
    quiet = [i.id for i in incidents if not i.paged and i.id is not None][:MAX_PAGING_LOOKUPS]
    details = await asyncio.gather(*(store.incident(i) for i in quiet))
    return {
        d.incident.id or 0: paging_note(d.incident, [a.outcome for a in d.alerts]) for d in details if d is not None
    }


async def incident_page(request: web.Request) -> web.Response:
    return await render_incident(request)


async def render_incident(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    """The incident page; with the error of a form post that failed shown above its forms."""
    raw_id = request.match_info["id"]
    incident_id = canonical_int(raw_id)
    store = request.app[RUNTIME].store
    detail = await store.incident(incident_id) if incident_id else None
    if detail is None:
        return _html(render("not_found.html", what=f"incident {raw_id}", now=time.time()), status=404)
    actions = await store.actions(detail.incident.id or 0)
    now = time.time()
    forms = ActionForms(
        csrf=csrf.token(request.app, detail.incident.id or 0, now),
        actor=basic_user(request),
        durations=SILENCE_DURATIONS,
        error=error,
    )
    view = incident_view(detail, now, actions)
    return _html(render("incident.html", view=view, forms=forms, now=now), status=status)


# Alertmanager's fingerprints are 16 hex digits; the webhook's are kept as sent: word characters.
_FINGERPRINT = re.compile(r"[A-Za-z0-9_-]{1,128}")


async def alert_page(request: web.Request) -> web.Response:
    """A page links to its alert by fingerprint (its incident is not known when it is
    rendered): the newest incident holding that alert."""
    fingerprint = request.match_info["fingerprint"]
    found = None
    if _FINGERPRINT.fullmatch(fingerprint):
        found = await request.app[RUNTIME].store.incident_of_fingerprint(fingerprint)
    if found is None:
        return _html(render("not_found.html", what="incident holding this alert", now=time.time()), status=404)
    raise web.HTTPSeeOther(f"/incidents/{found}", headers=SECURITY_HEADERS)


def basic_user(request: web.Request) -> str | None:
    """The username of the request's basic auth (the middleware checked the password)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user = b64decode(value.strip(), validate=True).decode().partition(":")[0]
    except (ValueError, UnicodeDecodeError):
        return None
    return user or None


async def quarantine_page(request: web.Request) -> web.Response:
    items = await request.app[RUNTIME].store.quarantined(QUARANTINE_PAGE)
    now = time.time()
    return _html(render("quarantine.html", items=items, limit=QUARANTINE_PAGE, now=now))


async def insights_page(request: web.Request) -> web.Response:
    raw = request.query.get("days") or str(INSIGHT_DAYS[1])
    days = canonical_int(raw)
    now = time.time()
    if days is None or not 1 <= days <= MAX_DAYS:
        error = f"days must be an integer between 1 and {MAX_DAYS}"
        page = render("insights.html", rows=[], days=raw, choices=INSIGHT_DAYS, error=error, now=now)
        return _html(page, status=400)
    runtime = request.app[RUNTIME]
    rows = [InsightRow.of(row) for row in await load_insights(runtime.store, runtime.clock(), days)]
    return _html(render("insights.html", rows=rows, days=days, choices=INSIGHT_DAYS, error=None, now=now))


@dataclass(frozen=True)
class InsightRow:
    alertname: str
    labels: str
    fired: int
    paged: int
    median_firing: str
    short: int
    useful: int
    noise: int
    noise_score: float
    pages_saved: int | None
    resolved_grace_seconds: int | None
    rule_yaml: str | None  # a ready suppression.rules entry, to copy into the configuration

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> InsightRow:
        suggestion = row["suggestion"]
        median = row["median_firing_seconds"]
        return cls(
            alertname=row["alertname"],
            labels=", ".join(f"{k}={v}" for k, v in sorted(row["labels"].items()) if k != "alertname"),
            fired=row["fired"],
            paged=row["paged"],
            median_firing="–" if median is None else f"{median / 60:.1f} min",
            short=row["resolved_within_5m"],
            useful=row["feedback"]["useful"],
            noise=row["feedback"]["noise"],
            noise_score=row["noise_score"],
            pages_saved=suggestion["pages_saved"] if suggestion else None,
            resolved_grace_seconds=suggestion.get("resolved_grace_seconds") if suggestion else None,
            rule_yaml=(
                yaml.safe_dump({"suppression": {"rules": [suggestion["rule"]]}}, sort_keys=False, allow_unicode=True)
                if suggestion
                else None
            ),
        )


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_TYPES:  # a fixed list: no paths from the request reach the file system
        return _html(render("not_found.html", what=f"file {name}", now=time.time()), status=404)
    response = web.Response(body=static_file(name), content_type=STATIC_TYPES[name], charset="utf-8")
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def _html(text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
    response.headers.update(SECURITY_HEADERS)
    # Incident data sits behind auth: no shared cache may keep it.
    response.headers["Cache-Control"] = "no-store"
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", list_page)
    app.router.add_get("/incidents/{id}", incident_page)
    app.router.add_get("/alerts/{fingerprint}", alert_page)
    app.router.add_get("/quarantine", quarantine_page)
    app.router.add_get("/insights", insights_page)
    app.router.add_get("/static/{name}", static)
