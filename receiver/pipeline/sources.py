"""Which enrichment and graph sources run, decided from the config at start-up.

Each configured source is created here and closed through `Sources.close`; an
unconfigured source is simply absent, so the pipeline never special-cases it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from enrichers.base import Enricher
from enrichers.kubernetes.enricher import KubernetesEnricher, KubernetesSettings, connect_kubernetes
from enrichers.telemetry.factory import Telemetry, TelemetrySettings, build_telemetry, signals_from_config
from enrichers.telemetry.jaeger import JaegerSettings
from enrichers.telemetry.loki import LokiSettings
from enrichers.telemetry.probe import prometheus_answers
from enrichers.telemetry.tempo import TempoSettings
from receiver.config import Config, KubernetesConfig

Closer = Callable[[], Awaitable[None]]
log = structlog.get_logger("kubebot.sources")


@dataclass
class Sources:
    enrichers: list[Enricher] = field(default_factory=list)
    telemetry: Telemetry | None = None
    kubernetes: KubernetesEnricher | None = None
    closers: list[Closer] = field(default_factory=list)

    async def close(self) -> None:
        for close in reversed(self.closers):
            try:
                await close()
            except Exception as exc:  # one source failing to close must not stop the others
                log.warning("source_close_failed", error=str(exc))


async def build_sources(config: Config) -> Sources:
    sources = Sources()
    kubernetes = await connect_kubernetes(
        "incluster" if config.kubernetes.mode == "in-cluster" else config.kubernetes.mode,
        config.kubernetes.kubeconfig,
        config.kubernetes.host,
        token_file=config.kubernetes.token_file,
        settings=kubernetes_settings(config.kubernetes),
    )
    if kubernetes is not None:
        sources.kubernetes = kubernetes
        sources.enrichers.append(kubernetes)
        sources.closers.append(kubernetes.close)
    telemetry = build_telemetry(telemetry_settings(config))
    sources.telemetry = telemetry
    sources.enrichers.extend(telemetry.enrichers)
    sources.closers.append(telemetry.close)
    if config.prometheus.url is not None:
        # Said once at start: a wrong URL shows here, not only as "unavailable" on each page.
        answers = await prometheus_answers(config.prometheus.url, config.enrichment.timeout_seconds)
        log.info("prometheus_checked", answers=answers)
    log.info("sources", enrichers=[e.name for e in sources.enrichers])
    return sources


def telemetry_settings(config: Config) -> TelemetrySettings:
    """Each backend's settings from its own config section (None where it has no URL)."""
    jaeger, tempo, loki = config.traces.jaeger, config.traces.tempo, config.logs.loki
    return TelemetrySettings(
        prometheus_url=config.prometheus.url,
        jaeger=JaegerSettings(jaeger.url, ui_url=jaeger.ui_url) if jaeger.url else None,
        tempo=(
            TempoSettings(tempo.url, trace_url_template=tempo.trace_url_template, tenant=tempo.tenant)
            if tempo.url
            else None
        ),
        loki=LokiSettings(loki.url, tenant=loki.tenant) if loki.url else None,
        budget_seconds=config.enrichment.timeout_seconds,
        window=timedelta(seconds=config.prometheus.window_seconds),
        service_label=config.rca.service_label,
        signals=signals_from_config((s.name, s.query) for s in config.rca.signals),
    )


def kubernetes_settings(kubernetes: KubernetesConfig) -> KubernetesSettings:
    """The enricher's settings from the `kubernetes` config section (here only)."""
    return KubernetesSettings(
        log_lines=kubernetes.log_lines,
        events_window_seconds=kubernetes.events_window_seconds,
        call_timeout_seconds=kubernetes.call_timeout_seconds,
        max_concurrency=kubernetes.max_concurrency,
        max_log_reads=kubernetes.max_log_reads,
        watch=kubernetes.watch,
    )
