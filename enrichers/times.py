"""Times as the Kubernetes API, Alertmanager and our stored outcomes write them."""

from __future__ import annotations

from datetime import datetime


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time (`...Z` or `+hh:mm`, with or without fractions) as an aware datetime.

    One policy: a time without a zone is refused (None), never guessed as UTC or local,
    as the webhook decoder and the config refuse one. Anything not a time is None too.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
