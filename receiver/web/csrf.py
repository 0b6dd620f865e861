"""CSRF tokens for the dashboard's forms: an HMAC of a per-process secret, the incident
and the time the form was rendered. A cross-site page cannot read one (the CSP and the
same-origin policy keep our pages to us), so a forged POST arrives without a valid token.
A restart makes open forms stale: the engineer reloads the page and posts again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

CSRF_SECRET = web.AppKey("csrf_secret", bytes)
MAX_AGE_SECONDS = 12 * 3600  # a page left open over a shift still posts
FIELD = "csrf_token"


def install(app: web.Application) -> None:
    app[CSRF_SECRET] = secrets.token_bytes(32)


def _mac(secret: bytes, incident_id: int, stamp: int) -> str:
    return hmac.new(secret, f"{incident_id}:{stamp}".encode(), hashlib.sha256).hexdigest()


def token(app: web.Application, incident_id: int, now: float) -> str:
    stamp = int(now)
    return f"{stamp}.{_mac(app[CSRF_SECRET], incident_id, stamp)}"


def valid(app: web.Application, incident_id: int, presented: str | None, now: float) -> bool:
    stamp_text, _, mac = (presented or "").partition(".")
    if not (stamp_text.isascii() and stamp_text.isdigit()) or len(stamp_text) > 12:
        return False
    stamp = int(stamp_text)
    if not 0 <= now - stamp <= MAX_AGE_SECONDS:
        return False
    return hmac.compare_digest(mac.encode(), _mac(app[CSRF_SECRET], incident_id, stamp).encode())
