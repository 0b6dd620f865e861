"""Causes engineers confirmed are remembered: when an alert of the same name fires again in
the same namespace (or for the same service), a cause confirmed in feedback on an earlier
incident is among its root causes, with evidence saying who confirmed it and when.

Remembered causes come after the fresh ranking, never before it: they add a candidate
(or evidence to a fresh cause of the same name), they do not override evidence that points
elsewhere now.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

import structlog

from enrichers.kubernetes.subject import label_value
from enrichers.telemetry.naming import alert_service
from rca.model import RootCause
from receiver.pipeline.stage import Work
from receiver.store.base import ConfirmedCause, StoreUnavailable

log = structlog.get_logger("kubebot.remembered")

ConfirmedLookup = Callable[[str], Awaitable[list[ConfirmedCause]]]
# A remembered cause ranks below every fresh one: this share of the lowest fresh score.
BELOW_FRESH = 0.9
ALONE_SCORE = 0.5  # the only candidate there is


def same_scope(labels: Mapping[str, str], other: Mapping[str, str]) -> bool:
    """The same namespace, or the same service: where a confirmed cause still applies."""
    namespace = label_value(labels, "namespace")
    if namespace is not None and namespace == label_value(other, "namespace"):
        return True
    service = alert_service(labels)
    return service is not None and service == alert_service(other)


def confirmation(found: ConfirmedCause) -> str:
    day = datetime.fromtimestamp(found.at, UTC).date().isoformat()
    return f"confirmed by {found.by} on {day}"


def _names(cause: RootCause) -> set[str]:
    names = {cause.service}
    if cause.kind is not None:
        names.add(
            f"{cause.kind} {cause.namespace}/{cause.service}" if cause.namespace else f"{cause.kind} {cause.service}"
        )
    return names


def with_remembered(causes: Sequence[RootCause], confirmed: Sequence[ConfirmedCause]) -> tuple[RootCause, ...]:
    """The fresh causes, plus (after them) each confirmed one not among them; a fresh cause
    that was confirmed before gains that evidence. `confirmed` newest first."""
    result = list(causes)
    seen: set[str] = set()
    for found in confirmed:
        if found.cause in seen:
            continue  # the newest confirmation of each cause speaks
        seen.add(found.cause)
        evidence = confirmation(found)
        match = next((i for i, c in enumerate(result) if found.cause in _names(c)), None)
        if match is not None:
            fresh = result[match]
            result[match] = dataclasses.replace(fresh, evidence=(*fresh.evidence, evidence))
            continue
        floor = min((c.score for c in result), default=None)
        score = round(floor * BELOW_FRESH, 6) if floor is not None else ALONE_SCORE
        result.append(RootCause(service=found.cause, score=score, evidence=(evidence,)))
    return tuple(result)


class RememberedCausesStage:
    def __init__(self, lookup: ConfirmedLookup, clock: Callable[[], datetime], ttl_seconds: float = 30.0) -> None:
        self._lookup = lookup
        self._clock = clock
        self._ttl = ttl_seconds
        # alertname -> (fetched at, confirmations): one store query per name and period.
        self._cache: dict[str, tuple[float, list[ConfirmedCause]]] = {}

    async def exec(self, batch: Sequence[Work]) -> list[Work]:
        out = []
        for work in batch:
            if work.alert.status != "firing":
                out.append(work)
                continue
            confirmed = [c for c in await self._confirmed(work.alert.name) if same_scope(work.alert.labels, c.labels)]
            out.append(
                dataclasses.replace(work, root_causes=with_remembered(work.root_causes, confirmed))
                if confirmed
                else work
            )
        return out

    async def _confirmed(self, alertname: str) -> list[ConfirmedCause]:
        now = self._clock().timestamp()
        cached = self._cache.get(alertname)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            found = await self._lookup(alertname)
        except StoreUnavailable as exc:  # nothing remembered this time; the page goes on
            log.warning("confirmed_causes_unreadable", error=str(exc)[:200])
            return []
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[alertname] = (now, found)
        return found
