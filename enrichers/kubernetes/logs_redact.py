"""Turn raw container log text into a short excerpt that is safe to put in a notification.

Pure functions: strip terminal colour codes, redact anything that looks like a secret,
keep the last lines within a size bound, and mark the lines that look like errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

REDACTED = "[REDACTED]"
MAX_LINE_CHARS = 300

# CSI sequences (colours, cursor moves) and OSC sequences (titles, hyperlinks).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# Order matters: whole-token shapes first, then key=value forms that could overlap them.
# Quantifiers that may start anywhere are bounded, so a long line costs linear time.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
        REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    # JSON Web Tokens: three base64url parts, the first two starting with '{"'.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), REDACTED),  # AWS access key ids
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), REDACTED),  # GitHub tokens
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), REDACTED),  # Slack tokens
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"), REDACTED),  # OpenAI/Stripe-style keys
    # Credentials inside URLs: scheme://user:password@host
    (re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,20}://[^\s:/@]{1,100}:)[^\s@/]{1,200}@"), rf"\1{REDACTED}@"),
    # key=value, key: value, "key": "value" for names that announce a secret.
    (
        re.compile(
            r"""(?ix)
            (["']?
             (?<![a-z0-9_.-])[a-z0-9_.-]{0,60}?
             (?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key
                |private[_-]?key|client[_-]?secret|credentials?|auth)
             [a-z0-9_.-]{0,60}
             ["']?\s{0,5}[:=]\s{0,5}["']?)
            ([^\s"',;]+)
            """
        ),
        rf"\1{REDACTED}",
    ),
)

_ERROR_WORDS = re.compile(
    r"(?i)(\b(error|err|fatal|panic|exception|traceback|critical|crit|failed|failure"
    r"|refused|denied|killed|oom|segfault|unhandled|cannot|can't|unable)\b"
    r"|\blevel[=:]\s*\"?(error|fatal|panic|crit)|\bE\d{4} )"
)


def strip_ansi(text: str) -> str:
    """Remove terminal escape sequences and stray control characters (tabs survive)."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def redact_secrets(text: str) -> str:
    """Replace secret-looking tokens; errs on the side of hiding too much."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def looks_like_error(line: str) -> bool:
    return _ERROR_WORDS.search(line) is not None


def clean_text(text: str, max_chars: int = MAX_LINE_CHARS) -> str:
    """One free-text field (an event message, a termination message) made safe to show."""
    # Cut first (with room for what redaction and stripping remove): bounded work per field.
    cleaned = redact_secrets(strip_ansi(text[: max_chars * 4])).strip()
    return cleaned if len(cleaned) <= max_chars else cleaned[: max_chars - 1] + "…"


@dataclass(frozen=True)
class LogExcerpt:
    container: str
    previous: bool  # the log of the container instance before the last restart
    lines: tuple[str, ...]
    error_lines: tuple[int, ...]  # indexes into `lines` that look like errors
    truncated: bool  # older lines or over-long lines were cut

    def to_json(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "previous": self.previous,
            "lines": list(self.lines),
            "error_lines": list(self.error_lines),
            "truncated": self.truncated,
        }

    def render(self) -> tuple[str, ...]:
        """Lines for a plain-text notification: error lines marked with '!'."""
        marks = set(self.error_lines)
        return tuple(("! " if i in marks else "  ") + line for i, line in enumerate(self.lines))


def log_excerpt(
    text: str,
    *,
    container: str,
    previous: bool,
    max_lines: int,
    max_chars: int,
    max_line_chars: int = MAX_LINE_CHARS,
) -> LogExcerpt:
    """The last `max_lines` lines of `text`, cleaned, within `max_chars` in total."""
    raw_lines = [line for line in text.splitlines() if line.strip()]
    truncated = len(raw_lines) > max_lines
    kept: list[str] = []
    used = 0
    # Walk from the newest line back: the end of a log is where a crash explains itself.
    for raw in reversed(raw_lines[-max_lines:] if max_lines > 0 else []):
        line = redact_secrets(strip_ansi(raw[: max_line_chars * 4])).rstrip()
        if len(line) > max_line_chars:
            line, truncated = line[: max_line_chars - 1] + "…", True
        if used + len(line) + 1 > max_chars:
            truncated = True
            break
        kept.append(line)
        used += len(line) + 1
    kept.reverse()
    errors = tuple(i for i, line in enumerate(kept) if looks_like_error(line))
    return LogExcerpt(container, previous, tuple(kept), errors, truncated)
