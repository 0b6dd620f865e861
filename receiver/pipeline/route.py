"""Which channels an alert goes to: `notify.routes` in order, else `notify.default_urls`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from receiver.config import Config, Route
from receiver.matchers import all_match
from receiver.pipeline.stage import Work


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


class RouteStage:
    """Which Apprise URLs each alert goes to, per `notify.routes` and `default_urls`."""

    def __init__(self, config: Config) -> None:
        self._routes = config.notify.routes
        self._default_urls = config.notify.default_urls

    async def exec(self, batch: Sequence[Work]) -> list[Work]:
        return [
            dataclasses.replace(w, routes=route_urls(self._routes, self._default_urls, w.alert.labels))
            if w.decision.action == "notify"
            else w
            for w in batch
        ]
