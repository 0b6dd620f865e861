"""What every enrichment source implements, and the runner that keeps them on budget.

An enricher never raises into the pipeline and never mutates the alert: the runner wraps
each one in its own timeout and turns any failure into an "unavailable (reason)" result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import structlog

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
    name: str

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment: ...


async def run_enrichers(
    enrichers: Sequence[Enricher],
    alert: AlertInput,
    ctx: EnrichContext,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Enrichment]:
    """Run every source concurrently; none may take longer than the context's budget."""
    if not enrichers:
        return {}
    started = clock()

    async def one(enricher: Enricher) -> Enrichment:
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
            async with asyncio.timeout(ctx.timeout_seconds):
                return await enricher.enrich(alert, ctx)
        except TimeoutError:
            reason = f"timed out after {ctx.timeout_seconds:g}s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an enricher bug must not drop the alert
            reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        log.warning("enrichment_unavailable", source=enricher.name, reason=reason)
        return Enrichment.unavailable(enricher.name, reason, clock() - started)

    results = await asyncio.gather(*(one(e) for e in enrichers))
    return {result.source: result for result in results}
