"""Keep secrets out of logs, metrics, pages and notifications.

Apprise URLs carry tokens and passwords anywhere in them, so a whole URL is treated as
secret: it is shown as its scheme plus a short stable digest that tells channels apart.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]{1,20})://[^\s\"'<>]+")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)\b(\s*[=:]\s*)(\"?)[^\s\"',;&]+"
)
_SECRET_KEYS = ("token", "password", "secret", "authorization", "api_key", "apikey", "credential")
_URL_KEYS = ("url", "urls")


def url_scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep and scheme.isascii() and scheme.replace("+", "").isalnum() else "unknown"


def redact_url(url: str) -> str:
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{url_scheme(url)}://<redacted:{digest}>"


def redact_text(text: str) -> str:
    """Scrub URLs with credentials, bearer tokens and `password=...` pairs from free text."""
    text = _URL.sub(lambda m: redact_url(m.group(0)) if _has_credentials(m.group(0)) else m.group(0), text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} <redacted>", text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}<redacted>", text)


def _has_credentials(url: str) -> bool:
    rest = url.split("://", 1)[1]
    authority = rest.split("/", 1)[0]
    return "@" in authority or bool(re.search(r"(?i)(token|key|secret|pass|auth)", rest))


def redact_event(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """structlog processor: secret-named keys are dropped to a marker, URLs are digested."""
    for key, value in list(event.items()):
        lowered = key.lower()
        if any(s in lowered for s in _SECRET_KEYS):
            event[key] = "<redacted>"
        elif lowered in _URL_KEYS or lowered.endswith("_url"):
            event[key] = (
                [redact_url(v) for v in value]
                if isinstance(value, list | tuple)
                else (redact_url(value) if isinstance(value, str) else value)
            )
        elif isinstance(value, str):
            event[key] = redact_text(value)
    return event
