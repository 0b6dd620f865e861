"""Keep secrets out of logs, metrics, pages and notifications.

Apprise URLs carry tokens and passwords anywhere in them, so a whole URL is treated as
secret: it is shown as its scheme plus a short stable digest that tells channels apart.
An http(s) URL keeps its host readable, but its path and query are digested too: webhook
URLs (Slack, Discord) carry their token in the path. Secret values KubeBot reads at start
(tokens, passwords, channel URLs and their parts) are registered and blanked wherever
they appear, whatever the text around them.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]{1,20})://[^\s\"'<>]+")
_HTTP_URL = re.compile(r"(?i)^(https?://)([^/?#@\s]*@)?([^/?#\s]*)(.*)$")
_AUTHORIZATION = re.compile(r"(?i)\b((?:proxy-)?authorization)(\s*[:=]\s*)(?:[A-Za-z]+\s+)?[^\s\"',;]+")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+(?!<redacted>)[^\s\"',;]+")
# `user:pass@host` outside a well-formed URL: Apprise echoes mistyped URLs (`json:/u:p@h`).
_USERINFO = re.compile(r"[^\s/:@\"'<>=]+:[^\s/@\"'<>]+@(?=[\w\[])")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)\b(\s*[=:]\s*)(\"?)(?!<redacted)[^\s\"',;&]+"
)
_SECRET_KEYS = ("token", "password", "secret", "authorization", "api_key", "apikey", "credential")
_URL_KEYS = ("url", "urls")
MARK = "<redacted>"
# Parts of a channel URL this short are ordinary words (a host `x`, a path `hook`), not tokens.
MIN_URL_PART = 8

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secrets_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """From now on `value` is blanked in every log line (and its URL- and JSON-escaped forms)."""
    global _secrets_pattern
    if value is None or not value.strip():
        return
    forms = {value, value.strip(), quote(value, safe=""), json.dumps(value)[1:-1]}
    with _secrets_lock:
        if forms <= _secrets:
            return
        _secrets.update(f for f in forms if f)
        # Longest first, so a secret that contains another is blanked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secrets_pattern = re.compile("|".join(_secret_pattern(s) for s in ordered))


# A secret this short is blanked only where it stands alone: a test password `t` must not
# turn every `t` of every log line into a mark.
SHORT_SECRET = 6


def _secret_pattern(secret: str) -> str:
    if len(secret) >= SHORT_SECRET:
        return re.escape(secret)
    return rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])"


def register_channel_url(url: str) -> None:
    """A channel URL, its password and each long part of it (Apprise logs tokens one by one)."""
    register_secret(url)
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    register_secret(unquote(password) if password else None)
    if parts.scheme.lower() in ("http", "https"):
        pieces = re.split(r"[/?&=#]", f"{parts.path}?{parts.query}")
    else:
        pieces = re.split(r"[/?&=#:@]", url.split("://", 1)[-1])
    for piece in pieces:
        if len(piece) >= MIN_URL_PART:
            register_secret(unquote(piece))


def blank_secrets(text: str) -> str:
    pattern = _secrets_pattern
    return pattern.sub(MARK, text) if pattern is not None else text


def url_scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep and scheme.isascii() and scheme.replace("+", "").isalnum() else "unknown"


def redact_url(url: str) -> str:
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{url_scheme(url)}://<redacted:{digest}>"


def _redact_any_url(url: str) -> str:
    """http(s): the host stays readable; anything else is an Apprise URL, secret as a whole."""
    found = _HTTP_URL.match(url)
    if found is None:
        return redact_url(url)
    scheme, userinfo, host, rest = found.groups()
    if not userinfo and rest in ("", "/"):
        return url
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{scheme}{host}/<redacted:{digest}>"


def redact_text(text: str) -> str:
    """Scrub registered secrets, URLs, authorization values and `password=...` pairs from free text."""
    text = blank_secrets(text)
    text = _URL.sub(lambda m: _redact_any_url(m.group(0)), text)
    text = _AUTHORIZATION.sub(lambda m: f"{m.group(1)}{m.group(2)}{MARK}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MARK}", text)
    text = _USERINFO.sub(f"{MARK}@", text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MARK}", text)


def redact_event(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """structlog processor: secret-named keys are dropped to a marker, URLs are digested."""
    for key, value in list(event.items()):
        lowered = key.lower()
        if any(s in lowered for s in _SECRET_KEYS):
            event[key] = MARK
        elif lowered in _URL_KEYS or lowered.endswith("_url"):
            event[key] = (
                [redact_url(v) for v in value]
                if isinstance(value, list | tuple)
                else (redact_url(value) if isinstance(value, str) else value)
            )
        elif isinstance(value, str):
            event[key] = redact_text(value)
    return event
