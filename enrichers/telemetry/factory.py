"""Every configured telemetry source, built in one place and closed in one place.

One Prometheus client (one thread pool) serves the enricher, the graph sources and the
signal table. Requests get most of the enrichment budget, so a slow backend ends in the
source's own classified reason rather than the runner's cut-off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from enrichers.base import DEFAULT_BUDGET_SECONDS, Enricher
from enrichers.telemetry.graph import EdgeFetch, GraphSources
from enrichers.telemetry.http import DEFAULT_WINDOW
from enrichers.telemetry.jaeger import JaegerEnricher, JaegerSettings
from enrichers.telemetry.loki import LokiEnricher, LokiSettings
from enrichers.telemetry.promclient import PromClient
from enrichers.telemetry.prometheus import PrometheusEnricher
from enrichers.telemetry.signals import (
    DEFAULT_SERVICE_LABEL,
    DEFAULT_SIGNALS,
    SignalFetch,
    SignalQuery,
    fetch_signal_table,
)
from enrichers.telemetry.tempo import TempoEnricher, TempoSettings

REQUEST_SHARE_OF_BUDGET = 0.8


@dataclass(frozen=True)
class TelemetrySettings:
    """Each backend its own settings (None: not configured), plus what they share."""

    prometheus_url: str | None = None
    jaeger: JaegerSettings | None = None
    tempo: TempoSettings | None = None
    loki: LokiSettings | None = None
    budget_seconds: float = DEFAULT_BUDGET_SECONDS  # enrichment.timeout_seconds
    window: timedelta = DEFAULT_WINDOW  # looked at before the alert started
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

    async def signal_table(self, start: datetime, end: datetime, step_seconds: float = 30.0) -> SignalFetch | None:
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
    prometheus = PromClient(settings.prometheus_url, timeout_seconds=timeout) if settings.prometheus_url else None
    enrichers: list[Enricher] = []
    closers: list[Callable[[], Awaitable[None]]] = []
    if prometheus is not None:
        enrichers.append(PrometheusEnricher.from_client(prometheus, window=window))
    backends: list[JaegerEnricher | TempoEnricher | LokiEnricher] = []
    if settings.jaeger is not None:
        backends.append(JaegerEnricher(settings.jaeger, timeout_seconds=timeout, window=window))
    if settings.tempo is not None:
        backends.append(TempoEnricher(settings.tempo, timeout_seconds=timeout, window=window))
    if settings.loki is not None:
        backends.append(LokiEnricher(settings.loki, timeout_seconds=timeout, window=window))
    enrichers.extend(backends)
    closers.extend(backend.close for backend in backends)
    jaeger_url = settings.jaeger.url if settings.jaeger is not None else None
    graph = None
    if prometheus is not None or jaeger_url:
        graph = GraphSources(prometheus=prometheus, jaeger_url=jaeger_url, timeout_seconds=timeout)
        closers.append(graph.close)
    if prometheus is not None:
        closers.append(prometheus.close)
    return Telemetry(tuple(enrichers), prometheus, graph, settings, tuple(closers))


def signals_from_config(pairs: Iterable[tuple[str, str]]) -> tuple[SignalQuery, ...]:
    """`rca.signals` entries as queries; none configured means the defaults."""
    queries = tuple(SignalQuery(name, query) for name, query in pairs)
    return queries or DEFAULT_SIGNALS
