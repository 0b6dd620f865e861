"""Prometheus enricher: the shape of the alert's own expression and the workload's vitals."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from enrichers.base import AlertInput, EnrichContext, Enrichment
from enrichers.telemetry.golden import (
    SIGNAL_LABEL,
    GoldenSignals,
    PodSet,
    Workload,
    one_query,
    pod_set_queries,
    pod_sets,
    request_queries,
    resource_queries,
    workload_from_labels,
)
from enrichers.telemetry.http import DEFAULT_TIMEOUT_SECONDS, DEFAULT_WINDOW, SourceUnavailable, alert_window
from enrichers.telemetry.naming import alert_service
from enrichers.telemetry.promclient import PromClient, Series, step_for
from enrichers.telemetry.promql import (
    ExpressionSummary,
    expression_from_generator_url,
    strip_threshold,
    summarize_expression,
)

SHARE_SECONDS = 5.0  # an answer this recent serves a storm's later groups (scrapes are 15-30 s apart)
SHARED_KEPT = 512


class RecentAnswers:
    """Answers shared across the groups of a storm: a query asked again within `seconds`
    after it was first asked (by the asker's own clock) awaits the first answer instead
    of asking Prometheus again. A failed answer is never shared; `seconds` 0 shares none."""

    def __init__(self, seconds: float) -> None:
        self._seconds = timedelta(seconds=seconds)
        self._answers: dict[tuple[object, ...], tuple[datetime, asyncio.Future[tuple[Series, ...]]]] = {}

    def get(
        self,
        key: tuple[object, ...],
        at: datetime,
        query: Callable[[], Coroutine[Any, Any, tuple[Series, ...]]],
    ) -> asyncio.Future[tuple[Series, ...]]:
        found = self._answers.get(key)
        if found is not None and self._seconds and found[0] <= at <= found[0] + self._seconds:
            task = found[1]
            if not (task.done() and (task.cancelled() or task.exception() is not None)):
                return task
        task = asyncio.ensure_future(query())
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        if self._seconds:
            if len(self._answers) >= SHARED_KEPT:
                self._answers = {k: v for k, v in self._answers.items() if v[0] + self._seconds >= at}
            self._answers[key] = (at, task)
        return task


class PrometheusEnricher:
    name = "prometheus"

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        window: timedelta = DEFAULT_WINDOW,
        max_workers: int = 4,
        headers: Mapping[str, str] | None = None,
        share_seconds: float = SHARE_SECONDS,
    ) -> None:
        self.window = window
        self._recent = RecentAnswers(share_seconds)
        # Public so graph_sources and signals can share the one connection pool.
        self.client = PromClient(url, timeout_seconds=timeout_seconds, max_workers=max_workers, headers=headers)
        self._owns_client = True

    @classmethod
    def from_client(
        cls, client: PromClient, *, window: timedelta = DEFAULT_WINDOW, share_seconds: float = SHARE_SECONDS
    ) -> PrometheusEnricher:
        """Share a client (and its connection pool) with graph sources and signals."""
        enricher = cls.__new__(cls)
        enricher.window = window
        enricher._recent = RecentAnswers(share_seconds)
        enricher.client = client
        enricher._owns_client = False
        return enricher

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        started = time.monotonic()
        expression, (golden, golden_problems) = await asyncio.gather(
            self._expression(alert, ctx), self._golden(alert, ctx)
        )
        problems = list(golden_problems)
        facts: dict[str, Any] = {}
        lines: list[str] = []
        if isinstance(expression, SourceUnavailable):
            problems.insert(0, f"expression: {expression.reason}")
        elif expression is not None:
            facts["expression"] = expression.to_facts()
            lines.append(expression.line())
        if golden is not None:
            facts["golden_signals"] = golden.to_facts()
            lines.extend(golden.lines())
        elapsed = time.monotonic() - started
        if expression is None and golden is None and not problems:
            reason = "the alert has no expression in its generatorURL and names no workload"
            return Enrichment.unavailable(self.name, reason, elapsed)
        if problems and not lines:
            return Enrichment.unavailable(self.name, _common_reason(problems), elapsed)
        return Enrichment.found(self.name, facts, tuple(lines), problems, elapsed)

    async def _expression(self, alert: AlertInput, ctx: EnrichContext) -> ExpressionSummary | SourceUnavailable | None:
        expr = _range_expression(alert.generator_url)
        if expr is None:
            return None
        start, end = alert_window(alert, ctx.now, self.window)
        try:
            step = step_for(start, end)
            series = await _shared(
                ctx,
                ("range", expr, start, end, step),
                lambda: self._recent.get(
                    ("range", expr, start, step), end, lambda: self.client.range_query(expr, start, end, step)
                ),
            )
        except SourceUnavailable as exc:
            return exc
        return summarize_expression(expr, series, alert.labels, alert.starts_at)

    async def _golden(self, alert: AlertInput, ctx: EnrichContext) -> tuple[GoldenSignals | None, tuple[str, ...]]:
        workload = workload_from_labels(alert.labels)
        window = _duration(self.window)
        asked: list[Awaitable[dict[str, float | SourceUnavailable | None]]] = []
        if workload is not None and workload.pod is not None:
            asked.append(self._pod_resources(workload, ctx, window))
        elif workload is not None:
            asked.append(self._signals(resource_queries(workload, window), ctx))
        service = alert_service(alert.labels)
        if service is not None:
            asked.append(self._signals(request_queries(service), ctx))
        if not asked:
            return None, ()
        answers: dict[str, float | SourceUnavailable | None] = {}
        for found in await asyncio.gather(*asked):
            answers.update(found)
        values = {name: value for name, value in answers.items() if not isinstance(value, SourceUnavailable)}
        problems = [
            f"{name}: {value.reason}" for name, value in answers.items() if isinstance(value, SourceUnavailable)
        ]
        if not values:
            return None, (problems[0],)
        return GoldenSignals(values, window), tuple(problems)

    async def _signals(
        self, queries: Mapping[str, str], ctx: EnrichContext, pod: str | None = None
    ) -> dict[str, float | SourceUnavailable | None]:
        """One instant value per query (None where the metric does not exist); with `pod`,
        that pod's series of a `sum by (pod)` query. Every query in one request: a storm's
        groups each ask once, not once per signal."""
        try:
            answer = await self._instant(one_query(queries), ctx)
        except SourceUnavailable as exc:
            return dict.fromkeys(queries, exc)
        by_signal: dict[str, list[Series]] = {}
        for series in answer:
            by_signal.setdefault(series.labels.get(SIGNAL_LABEL, ""), []).append(series)
        return {name: _value_of(by_signal.get(name, ()), pod) for name in queries}

    async def _pod_resources(
        self, workload: Workload, ctx: EnrichContext, window: str
    ) -> dict[str, float | SourceUnavailable | None]:
        """The pod's resource signals, asked once for every pod the batch names alike."""
        sets = ctx.cache.get("prometheus:pod_sets")
        if sets is None:
            batch = [w for w in (workload_from_labels(a.labels) for a in ctx.alerts) if w is not None]
            sets = ctx.cache["prometheus:pod_sets"] = pod_sets(batch)
        scope = (workload.namespace, workload.container)
        mine = next((s for s in sets if (s.namespace, s.container) == scope and workload.pod in s.pods), None)
        if mine is None:  # an alert outside ctx.alerts (enriched alone)
            mine = PodSet(workload.namespace, workload.container, (workload.pod or "",))
        return await self._signals(pod_set_queries(mine, window), ctx, workload.pod)

    async def _instant(self, expr: str, ctx: EnrichContext) -> tuple[Series, ...]:
        return await _shared(
            ctx,
            ("instant", expr, ctx.now),
            lambda: self._recent.get(("instant", expr), ctx.now, lambda: self.client.instant_query(expr, ctx.now)),
        )

    async def close(self) -> None:
        if self._owns_client:
            await self.client.close()


async def _shared(
    ctx: EnrichContext,
    key: tuple[object, ...],
    query: Callable[[], Awaitable[tuple[Series, ...]]],
) -> tuple[Series, ...]:
    """Alerts of one group often share a rule and a workload: ask Prometheus once.

    The task is shielded so one alert's enrichment being cut off by its budget does not
    cancel the query another alert is waiting for.
    """
    cache_key = f"prometheus:{key!r}"
    task = ctx.cache.get(cache_key)
    if task is None:
        task = asyncio.ensure_future(query())
        # Retrieve the outcome even if every waiter is gone, so it is never reported
        # as "exception was never retrieved".
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        ctx.cache[cache_key] = task
    result: tuple[Series, ...] = await asyncio.shield(task)
    return result


def _common_reason(problems: list[str]) -> str:
    """ "cannot connect" once rather than per query, when every query failed alike."""
    reasons = {problem.split(": ", 1)[-1] for problem in problems}
    return reasons.pop() if len(reasons) == 1 else problems[0]


def _value_of(result: Sequence[Series], pod: str | None) -> float | None:
    """One golden value from a signal's series: the pod's series of a `sum by (pod)` query,
    or the one series of a `sum()` or histogram_quantile (None when there is none)."""
    if pod is None:
        return result[0].last if result else None
    return next((series.last for series in result if series.labels.get("pod") == pod), None)


def _duration(window: timedelta) -> str:
    """A PromQL duration for the window, e.g. `30m`."""
    seconds = int(window.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


@functools.lru_cache(maxsize=256)
def _range_expression(generator_url: str) -> str | None:
    """The rule's expression without its threshold; a storm's alerts share a few rules,
    so the parse is remembered rather than redone per alert."""
    expr = expression_from_generator_url(generator_url)
    return None if expr is None else strip_threshold(expr)
