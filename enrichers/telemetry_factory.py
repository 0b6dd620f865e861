"""Every configured telemetry source, built in one place and closed in one place.

One Prometheus client (one thread pool) serves the enricher, the graph sources and the
signal table. Requests get most of the enrichment budget, so a slow backend ends in the
source's own classified reason rather than the runner's cut-off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from enrichers.base import Enricher
from enrichers.graph_sources import EdgeFetch, GraphSources
from enrichers.jaeger import JaegerEnricher
from enrichers.loki import LokiEnricher
from enrichers.prometheus import PrometheusEnricher
from enrichers.signals import (
    DEFAULT_SERVICE_LABEL,
    DEFAULT_SIGNALS,
    SignalFetch,
    SignalQuery,
    fetch_signal_table,
)
from enrichers.telemetry_promclient import PromClient
from enrichers.tempo import TempoEnricher

REQUEST_SHARE_OF_BUDGET = 0.8


@dataclass(frozen=True)
class TelemetrySettings:
    prometheus_url: str | None = None
    jaeger_url: str | None = None
    tempo_url: str | None = None
    loki_url: str | None = None
    budget_seconds: float = 5.0  # enrichment.timeout_seconds
    window: timedelta = timedelta(minutes=30)  # looked at before the alert started
    jaeger_ui_url: str | None = None  # links; default: jaeger_url
    tempo_trace_url_template: str | None = None  # "...{trace_id}"; default: Tempo's API
    tempo_tenant: str | None = None  # X-Scope-OrgID for a multi-tenant Tempo
    loki_tenant: str | None = None  # X-Scope-OrgID for a multi-tenant Loki
    service_label: str = DEFAULT_SERVICE_LABEL  # rca.service_label
    signals: tuple[SignalQuery, ...] = DEFAULT_SIGNALS  # rca.signals


@dataclass(frozen=True)
class Telemetry:
    enrichers: tuple[Enricher, ...]
    prometheus: PromClient | None
    graph: GraphSources | None
    settings: TelemetrySettings
    closers: tuple[Callable[[], Awaitable[None]], ...]

    async def edges(self, at: datetime | None = None) -> EdgeFetch:
        if self.graph is None:
            return EdgeFetch((), (), ())
        return await self.graph.fetch_edges(at)

    async def signal_table(
        self, start: datetime, end: datetime, step_seconds: float = 30.0
    ) -> SignalFetch | None:
        """The RCA case table for [start, end], or None without Prometheus."""
        if self.prometheus is None:
            return None
        return await fetch_signal_table(
            self.prometheus,
            self.settings.signals,
            start=start,
            end=end,
            step_seconds=step_seconds,
            service_label=self.settings.service_label,
        )

    async def close(self) -> None:
        # Users of the shared Prometheus client first, the client last.
        for close in self.closers:
            await close()


def build_telemetry(settings: TelemetrySettings) -> Telemetry:
    """Create the configured sources; an unconfigured one is simply absent."""
    timeout = settings.budget_seconds * REQUEST_SHARE_OF_BUDGET
    window = settings.window
    prometheus = (
        PromClient(settings.prometheus_url, timeout_seconds=timeout)
        if settings.prometheus_url
        else None
    )
    enrichers: list[Enricher] = []
    closers: list[Callable[[], Awaitable[None]]] = []
    if prometheus is not None:
        enrichers.append(PrometheusEnricher.from_client(prometheus, window=window))
    if settings.jaeger_url:
        jaeger = JaegerEnricher(
            settings.jaeger_url,
            ui_url=settings.jaeger_ui_url,
            timeout_seconds=timeout,
            window=window,
        )
        enrichers.append(jaeger)
        closers.append(jaeger.close)
    if settings.tempo_url:
        tempo = TempoEnricher(
            settings.tempo_url,
            trace_url_template=settings.tempo_trace_url_template,
            timeout_seconds=timeout,
            window=window,
            tenant=settings.tempo_tenant,
        )
        enrichers.append(tempo)
        closers.append(tempo.close)
    if settings.loki_url:
        loki = LokiEnricher(
            settings.loki_url, timeout_seconds=timeout, window=window, tenant=settings.loki_tenant
        )
        enrichers.append(loki)
        closers.append(loki.close)
    graph = None
    if prometheus is not None or settings.jaeger_url:
        graph = GraphSources(
            prometheus=prometheus, jaeger_url=settings.jaeger_url, timeout_seconds=timeout
        )
        closers.append(graph.close)
    if prometheus is not None:
        closers.append(prometheus.close)
    return Telemetry(tuple(enrichers), prometheus, graph, settings, tuple(closers))


def signals_from_config(pairs: Iterable[tuple[str, str]]) -> tuple[SignalQuery, ...]:
    """`rca.signals` entries as queries; none configured means the defaults."""
    queries = tuple(SignalQuery(name, query) for name, query in pairs)
    return queries or DEFAULT_SIGNALS
