"""What every enrichment source implements, and the runner that keeps them on budget.

An enricher never raises into the pipeline and never mutates the alert: the runner keeps
each source on the budget and turns any failure into an "unavailable (reason)" result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import structlog

from enrichers import eager

EnrichmentStatus = Literal["ok", "partial", "unavailable"]
DEFAULT_BUDGET_SECONDS = 5.0  # per alert, every source together (config: enrichment.timeout_seconds)
log = structlog.get_logger("kubebot.enrich")


class AlertInput(Protocol):
    """What an enricher reads of an alert. The receiver's alert satisfies it as it is;
    enrichers depend on this, never on the receiver's model (dependencies point down)."""

    @property
    def fingerprint(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime | None: ...  # None while firing
    @property
    def generator_url(self) -> str: ...


class GroupInput(Protocol):
    """What an enricher may read of the notification its alerts arrived in."""

    @property
    def group_key(self) -> str: ...
    @property
    def common_labels(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Enrichment:
    """What one source found out about one alert. `facts` must be JSON-serialisable."""

    source: str
    status: EnrichmentStatus
    facts: Mapping[str, Any] = field(default_factory=dict)
    # Short human lines for the notification body, most important first.
    summary: tuple[str, ...] = ()
    reason: str | None = None
    elapsed_seconds: float = 0.0

    @classmethod
    def unavailable(cls, source: str, reason: str, elapsed: float = 0.0) -> Enrichment:
        return cls(source=source, status="unavailable", reason=reason, elapsed_seconds=elapsed)

    @classmethod
    def found(
        cls,
        source: str,
        facts: dict[str, Any],
        summary: tuple[str, ...],
        problems: Sequence[str] = (),
        elapsed: float = 0.0,
    ) -> Enrichment:
        """An answer: "ok", or "partial" when some of it is missing (listed in facts)."""
        if problems:
            facts = {**facts, "problems": list(problems)}
        status: EnrichmentStatus = "partial" if problems else "ok"
        return cls(source, status, facts, summary, None, elapsed)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "facts": dict(self.facts),
            "summary": list(self.summary),
            "reason": self.reason,
            "elapsed_seconds": round(self.elapsed_seconds, 4),
        }


@dataclass
class EnrichContext:
    """Shared by the enrichers of one alert group.

    `cache` lets several alerts of one group for the same workload share lookups: store
    the awaitable (an asyncio.Task) under a key so concurrent callers await one request.
    """

    group: GroupInput
    now: datetime
    timeout_seconds: float
    cache: dict[str, Any] = field(default_factory=dict)
    # The alerts enriched together, so a source can ask once for all of them.
    alerts: tuple[AlertInput, ...] = ()


class Enricher(Protocol):
    """One source. Optional, found by `getattr`: `steps_eagerly = True` where `enrich` never
    enters `asyncio.timeout`, `current_task()` or an aiohttp request before its first wait
    (see enrichers/eager.py), and `async def prepare(ctx)` to ask once, before `enrich`, for
    what every alert of `ctx.alerts` needs."""

    name: str

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment: ...


async def run_enrichers(
    enrichers: Sequence[Enricher],
    alert: AlertInput,
    ctx: EnrichContext,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Enrichment]:
    """Every source for one alert: `enrich_batch` of a batch of one."""
    (found,) = await enrich_batch(enrichers, (alert,), ctx, clock)
    return found


async def enrich_batch(
    enrichers: Sequence[Enricher],
    alerts: Sequence[AlertInput],
    ctx: EnrichContext,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict[str, Enrichment]]:
    """Every source for every alert, concurrently; none may take longer than the budget.

    Per alert, by source name. One Task per source for the whole batch, not one per source
    per alert: in a storm that bookkeeping cost more than the enrichment itself.
    """
    if not enrichers or not alerts:
        return [{} for _ in alerts]
    started = clock()
    by_source = await asyncio.gather(*(_one_source(e, alerts, ctx, started, clock) for e in enrichers))
    return [{found[i].source: found[i] for found in by_source} for i in range(len(alerts))]


async def _one_source(
    enricher: Enricher,
    alerts: Sequence[AlertInput],
    ctx: EnrichContext,
    started: float,
    clock: Callable[[], float],
) -> list[Enrichment]:
    found: list[Enrichment | None] = [None] * len(alerts)

    def give_up(reason: str) -> Enrichment:
        log.warning("enrichment_unavailable", source=enricher.name, reason=reason)
        return Enrichment.unavailable(enricher.name, reason, clock() - started)

    async def one(i: int, alert: AlertInput) -> None:
        try:
            found[i] = await enricher.enrich(alert, ctx)
        except Exception as exc:  # an enricher bug must not drop the alert
            found[i] = give_up(f"{type(exc).__name__}: {str(exc)[:200]}")

    steps = (one(i, alert) for i, alert in enumerate(alerts))
    waiting: list[asyncio.Future[None]] = []
    try:
        async with asyncio.timeout(ctx.timeout_seconds - (clock() - started)):
            await _prepare(enricher, ctx)
            if getattr(enricher, "steps_eagerly", False):
                waiting = eager.start(steps)
            else:
                waiting = [asyncio.ensure_future(step) for step in steps]
            if waiting:
                await asyncio.wait(waiting)
    except TimeoutError:
        pass
    finally:
        # On time out (or the worker stopping), steps still waiting are cut off.
        for task in waiting:
            task.cancel()
    timed_out = f"timed out after {ctx.timeout_seconds:g}s"
    return [result if result is not None else give_up(timed_out) for result in found]


async def _prepare(enricher: Enricher, ctx: EnrichContext) -> None:
    """The source's questions for the whole batch, asked before its alerts are enriched.
    A failure here is only logged: each alert then asks, and reports, for itself."""
    prepare = getattr(enricher, "prepare", None)
    if prepare is None:
        return
    try:
        await prepare(ctx)
    except Exception as exc:
        log.warning("enrichment_prepare_failed", source=enricher.name, error=f"{type(exc).__name__}: {exc}"[:300])
