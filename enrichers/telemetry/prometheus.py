"""Prometheus enricher: the shape of the alert's own expression and the workload's vitals."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from enrichers import eager
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
                fresh = [(k, v) for k, v in self._answers.items() if v[0] + self._seconds >= at]
                # All still fresh in a storm of distinct queries: the older half goes, or
                # every later query would rebuild the whole dict again.
                self._answers = dict(fresh[-SHARED_KEPT // 2 :])
            self._answers[key] = (at, task)
        return task


class PrometheusEnricher:
    name = "prometheus"
    steps_eagerly = True  # its queries run (and time out) in Tasks of their own

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

    async def prepare(self, ctx: EnrichContext) -> None:
        """Every query the batch's alerts need, asked at once: their enrichment then finds
        the answers at hand and finishes without waiting (or a Task) of its own."""
        asked: list[asyncio.Future[tuple[Series, ...]]] = []
        for alert in ctx.alerts:
            wanted = self._wanted(alert, ctx)
            if wanted.window is not None:
                asked.append(self._range(wanted.window, ctx))
            asked.extend(self._instant(signals.query.expression, ctx) for signals in wanted.signals)
        if asked:
            await asyncio.wait(asked)

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        started = time.monotonic()
        wanted = self._wanted(alert, ctx)
        expression, (golden, golden_problems) = await eager.gather(
            self._expression(alert, wanted.window, ctx), self._golden(wanted.signals, ctx)
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

    def _wanted(self, alert: AlertInput, ctx: EnrichContext) -> _Wanted:
        """What the alert asks of Prometheus, worked out once per alert and batch."""
        key = f"prometheus:wanted:{id(alert)}"
        found: tuple[AlertInput, _Wanted] | None = ctx.cache.get(key)
        if found is not None and found[0] is alert:  # an id is unique while its object lives
            return found[1]
        wanted = _Wanted(self._window_of(alert, ctx), self._signals_of(alert, ctx))
        ctx.cache[key] = (alert, wanted)
        return wanted

    def _window_of(self, alert: AlertInput, ctx: EnrichContext) -> _RangeAsk | None:
        expr = _range_expression(alert.generator_url)
        if expr is None:
            return None
        start, end = alert_window(alert, ctx.now, self.window)
        return _RangeAsk(expr, start, end)

    def _signals_of(self, alert: AlertInput, ctx: EnrichContext) -> tuple[_SignalsAsk, ...]:
        workload = workload_from_labels(alert.labels)
        window = _duration(self.window)
        asks: list[_SignalsAsk] = []
        if workload is not None and workload.pod is not None:
            asks.append(_SignalsAsk(self._pod_set_query(workload, ctx, window), workload.pod))
        elif workload is not None:
            asks.append(_SignalsAsk(_one_query(resource_queries(workload, window))))
        service = alert_service(alert.labels)
        if service is not None:
            asks.append(_SignalsAsk(_request_query(service)))
        return tuple(asks)

    def _pod_set_query(self, workload: Workload, ctx: EnrichContext, window: str) -> _Query:
        """The query for the resource signals of every pod the batch names alike: asked
        once for them all, and built once, not once per alert."""
        sets = ctx.cache.get("prometheus:pod_sets")
        if sets is None:
            batch = [w for w in (workload_from_labels(a.labels) for a in ctx.alerts) if w is not None]
            sets = ctx.cache["prometheus:pod_sets"] = {
                (s.namespace, s.container, pod): s for s in pod_sets(batch) for pod in s.pods
            }
        mine = sets.get((workload.namespace, workload.container, workload.pod))
        if mine is None:  # an alert outside ctx.alerts (enriched alone)
            mine = PodSet(workload.namespace, workload.container, (workload.pod or "",))
        built: dict[PodSet, _Query] = ctx.cache.setdefault("prometheus:pod_set_queries", {})
        query = built.get(mine)
        if query is None:
            query = built[mine] = _one_query(pod_set_queries(mine, window))
        return query

    async def _expression(
        self, alert: AlertInput, window: _RangeAsk | None, ctx: EnrichContext
    ) -> ExpressionSummary | SourceUnavailable | None:
        if window is None:
            return None
        try:
            series = await asyncio.shield(self._range(window, ctx))
        except SourceUnavailable as exc:
            return exc
        return summarize_expression(window.expr, series, alert.labels, alert.starts_at)

    async def _golden(
        self, asks: Sequence[_SignalsAsk], ctx: EnrichContext
    ) -> tuple[GoldenSignals | None, tuple[str, ...]]:
        if not asks:
            return None, ()
        answers: dict[str, float | SourceUnavailable | None] = {}
        for found in await eager.gather(*(self._signals(ask, ctx) for ask in asks)):
            answers.update(found)
        values = {name: value for name, value in answers.items() if not isinstance(value, SourceUnavailable)}
        problems = [
            f"{name}: {value.reason}" for name, value in answers.items() if isinstance(value, SourceUnavailable)
        ]
        if not values:
            return None, (problems[0],)
        return GoldenSignals(values, _duration(self.window)), tuple(problems)

    async def _signals(self, ask: _SignalsAsk, ctx: EnrichContext) -> dict[str, float | SourceUnavailable | None]:
        """One instant value per signal (None where the metric does not exist); with a pod,
        that pod's series of a `sum by (pod)` query. Every signal in one request: a storm's
        groups each ask once, not once per signal."""
        query = ask.query
        try:
            answer = await asyncio.shield(self._instant(query.expression, ctx))
        except SourceUnavailable as exc:
            return dict.fromkeys(query.signals, exc)
        indexed: dict[str, _Values] = ctx.cache.setdefault("prometheus:values", {})
        values = indexed.get(query.expression)
        if values is None:
            values = indexed[query.expression] = _values_by_signal(answer)
        return {name: values.get((name, ask.pod)) for name in query.signals}

    def _range(self, window: _RangeAsk, ctx: EnrichContext) -> asyncio.Future[tuple[Series, ...]]:
        expr, start, end = window
        step = step_for(start, end)
        return _shared(
            ctx,
            ("range", expr, start, end, step),
            lambda: self._recent.get(
                ("range", expr, start, step), end, lambda: self.client.range_query(expr, start, end, step)
            ),
        )

    def _instant(self, expr: str, ctx: EnrichContext) -> asyncio.Future[tuple[Series, ...]]:
        return _shared(
            ctx,
            ("instant", expr, ctx.now),
            lambda: self._recent.get(("instant", expr), ctx.now, lambda: self.client.instant_query(expr, ctx.now)),
        )

    async def close(self) -> None:
        if self._owns_client:
            await self.client.close()


class _RangeAsk(NamedTuple):
    """The alert rule's expression, over the window around the alert."""

    expr: str
    start: datetime
    end: datetime


class _Query(NamedTuple):
    """Several golden signals asked in one PromQL expression."""

    expression: str
    signals: tuple[str, ...]


class _SignalsAsk(NamedTuple):
    query: _Query
    pod: str | None = None  # that pod's series of a `sum by (pod)` query; else the one series


class _Wanted(NamedTuple):
    window: _RangeAsk | None
    signals: tuple[_SignalsAsk, ...]


# A signal's value by (signal, pod); pod None: the signal's first series.
_Values = dict[tuple[str, str | None], float | None]


def _one_query(queries: Mapping[str, str]) -> _Query:
    return _Query(one_query(queries), tuple(queries))


def _values_by_signal(answer: Sequence[Series]) -> _Values:
    values: _Values = {}
    for series in answer:
        signal = series.labels.get(SIGNAL_LABEL, "")
        values.setdefault((signal, None), series.last)
        pod = series.labels.get("pod")
        if pod is not None:
            values.setdefault((signal, pod), series.last)
    return values


def _shared(
    ctx: EnrichContext,
    key: tuple[object, ...],
    query: Callable[[], asyncio.Future[tuple[Series, ...]]],
) -> asyncio.Future[tuple[Series, ...]]:
    """Alerts of one group often share a rule and a workload: ask Prometheus once.

    Callers await it through `asyncio.shield`, so one alert's enrichment being cut off by
    its budget does not cancel the query another alert is waiting for.
    """
    asked: dict[tuple[object, ...], asyncio.Future[tuple[Series, ...]]] = ctx.cache.setdefault("prometheus:asked", {})
    task = asked.get(key)
    if task is None:
        task = asked[key] = query()
    return task


def _common_reason(problems: list[str]) -> str:
    """ "cannot connect" once rather than per query, when every query failed alike."""
    reasons = {problem.split(": ", 1)[-1] for problem in problems}
    return reasons.pop() if len(reasons) == 1 else problems[0]


def _duration(window: timedelta) -> str:
    """A PromQL duration for the window, e.g. `30m`."""
    seconds = int(window.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


@functools.lru_cache(maxsize=256)
def _request_query(service: str) -> _Query:
    """A service's request signals in one query: a storm's alerts name a few services, so
    the query is built once per service rather than once per alert."""
    return _one_query(request_queries(service))


@functools.lru_cache(maxsize=256)
def _range_expression(generator_url: str) -> str | None:
    """The rule's expression without its threshold; a storm's alerts share a few rules,
    so the parse is remembered rather than redone per alert."""
    expr = expression_from_generator_url(generator_url)
    return None if expr is None else strip_threshold(expr)
