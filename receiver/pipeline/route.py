"""Which channels an alert goes to: `notify.routes` in order, else `notify.default_urls`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from receiver.config import Route
from receiver.matchers import all_match


def route_urls(routes: Sequence[Route], default_urls: Sequence[str], labels: Mapping[str, str]) -> tuple[str, ...]:
    """The first matching route wins unless it says `continue`; no match -> default_urls."""
    urls: list[str] = []
    matched = False
    for route in routes:
        if all_match(route.matchers, labels):
            matched = True
            urls.extend(u for u in route.urls if u not in urls)
            if not route.continue_:
                break
    return tuple(urls) if matched else tuple(default_urls)
