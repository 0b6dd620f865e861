"""Logging set-up: JSON lines on stderr, secrets redacted before anything is written.

Two paths write lines: structlog (KubeBot's own events) and the stdlib `logging` tree that
the libraries use (Apprise, aiohttp, asyncio, urllib3, kubernetes_asyncio). Both end in the
same redaction (`receiver.redact`), so a library that echoes a channel URL, a request
header or an exception repr cannot put a secret on stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from aiohttp.http_exceptions import HttpProcessingError

from receiver.redact import redact_event, redact_text

# Libraries log request URLs, payloads and headers at debug/info.
QUIET_LOGGERS = ("apprise", "urllib3", "kubernetes_asyncio", "aiohttp.access", "aiohttp.client")


class RedactingFormatter(logging.Formatter):
    """A library's record as one JSON line like structlog's; the whole line, exception and
    stack text included, goes through redaction."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "event": record.getMessage(),
            "logger": record.name,
            "level": record.levelname.lower(),
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return redact_text(json.dumps(line, ensure_ascii=False))


class RequestEchoFilter(logging.Filter):
    """aiohttp's parser puts the raw offending request line (an `Authorization` header,
    say) in its exception; a malformed request is worth one line, not the bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"{record.getMessage()}: malformed request ({type(exc).__name__}, {exc.code})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class _KubeBotHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler configure_logging owns, so calling it again replaces it."""


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    out = stream if stream is not None else sys.stderr
    handler = _KubeBotHandler(out)
    handler.setFormatter(RedactingFormatter())
    handler.addFilter(RequestEchoFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        # Ours from an earlier call, or a plain unredacted one (basicConfig) on the same streams.
        plain = type(old) is logging.StreamHandler and old.stream in (sys.stderr, sys.stdout, out)
        if isinstance(old, _KubeBotHandler) or plain:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        quiet = logging.getLogger(name)
        quiet.setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,
            _redacted_json,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=True,
    )


_render_json = structlog.processors.JSONRenderer()


def _redacted_json(logger: Any, method: str, event: Any) -> str:
    """Last pass over the whole line: values nested in dicts or lists are covered too."""
    return redact_text(str(_render_json(logger, method, event)))
