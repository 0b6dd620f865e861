"""Prometheus enricher: the shape of the alert's own expression and the workload's vitals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from enrichers.base import EnrichContext, Enrichment, EnrichmentStatus
from enrichers.telemetry_golden import (
    GoldenSignals,
    request_queries,
    resource_queries,
    workload_from_labels,
)
from enrichers.telemetry_http import SourceUnavailable, alert_window
from enrichers.telemetry_naming import alert_service
from enrichers.telemetry_promclient import PromClient, Series, step_for
from enrichers.telemetry_promql import (
    ExpressionSummary,
    expression_from_generator_url,
    strip_threshold,
    summarize_expression,
)
from receiver.models import Alert


class PrometheusEnricher:
    name = "prometheus"

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 4.0,
        window: timedelta = timedelta(minutes=30),
        max_workers: int = 4,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.window = window
        # Public so graph_sources and signals can share the one connection pool.
        self.client = PromClient(
            url, timeout_seconds=timeout_seconds, max_workers=max_workers, headers=headers
        )

    async def enrich(self, alert: Alert, ctx: EnrichContext) -> Enrichment:
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
        if problems:
            facts["problems"] = problems
            if not lines:
                return Enrichment.unavailable(self.name, problems[0], elapsed)
        status: EnrichmentStatus = "partial" if problems else "ok"
        return Enrichment(self.name, status, facts, tuple(lines), None, elapsed)

    async def _expression(
        self, alert: Alert, ctx: EnrichContext
    ) -> ExpressionSummary | SourceUnavailable | None:
        expr = expression_from_generator_url(alert.generator_url)
        if expr is None:
            return None
        expr = strip_threshold(expr)
        start, end = alert_window(alert, ctx.now, self.window)
        try:
            series = await self.client.range_query(expr, start, end, step_for(start, end))
        except SourceUnavailable as exc:
            return exc
        return summarize_expression(expr, series, alert.labels, alert.starts_at)

    async def _golden(
        self, alert: Alert, ctx: EnrichContext
    ) -> tuple[GoldenSignals | None, tuple[str, ...]]:
        queries: dict[str, str] = {}
        workload = workload_from_labels(alert.labels)
        window = _duration(self.window)
        if workload is not None:
            queries.update(resource_queries(workload, window))
        service = alert_service(alert.labels)
        if service is not None:
            queries.update(request_queries(service))
        if not queries:
            return None, ()
        names = list(queries)
        results = await asyncio.gather(
            *(self.client.instant_query(queries[n], ctx.now) for n in names),
            return_exceptions=True,
        )
        values: dict[str, float | None] = {}
        problems: list[str] = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, SourceUnavailable):
                problems.append(f"{name}: {result.reason}")
            elif isinstance(result, BaseException):
                raise result
            else:
                values[name] = _single_value(result)
        if len(problems) == len(names):
            return None, (problems[0],)
        return GoldenSignals(values, window), tuple(problems)

    async def close(self) -> None:
        await self.client.close()


def _single_value(series: tuple[Series, ...]) -> float | None:
    # Every golden query aggregates with sum() or histogram_quantile: one series or none.
    return series[0].last if series else None


def _duration(window: timedelta) -> str:
    """A PromQL duration for the window, e.g. `30m`."""
    seconds = int(window.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
