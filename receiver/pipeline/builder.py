"""Assembles the pipeline by hand, one stage per line, in the order an alert meets them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from receiver.config import Config
from receiver.metrics import KubernetesMetrics, Metrics
from receiver.pipeline.enrich import EnrichStage
from receiver.pipeline.graph import GraphCache
from receiver.pipeline.rank import EnrichAndRankStage, RankStage
from receiver.pipeline.remembered import ConfirmedLookup, RememberedCausesStage
from receiver.pipeline.render import PageLinks, RenderStage
from receiver.pipeline.route import RouteStage
from receiver.pipeline.sources import Sources
from receiver.pipeline.stage import Pipeline
from receiver.pipeline.suppress import AckLookup, Memory, Suppressor, SuppressStage
from receiver.store.base import SuppressionMemory


def build_pipeline(
    config: Config,
    sources: Sources,
    metrics: Metrics,
    clock: Callable[[], datetime],
    memory: Memory | None = None,
    shared: SuppressionMemory | None = None,
    acks: AckLookup | None = None,
    confirmed: ConfirmedLookup | None = None,
) -> Pipeline:
    """The whole pipeline, top to bottom. `memory` is what suppression remembers (shared
    with the heartbeat watch); `shared`, where other replicas' suppression writes come from
    (the store), when there are several; `acks` who acknowledged which open incident,
    `confirmed` the causes engineers confirmed (both the store's)."""
    if sources.kubernetes is not None:
        sources.kubernetes.start(KubernetesMetrics(metrics))  # begins the watch cache, once
    graph = GraphCache(
        sources.telemetry,
        sources.kubernetes,
        config.graph.static_edges,
        refresh_seconds=config.graph.refresh_seconds,
        timeout_seconds=config.enrichment.timeout_seconds,
    )
    return Pipeline(
        [
            EnrichAndRankStage(
                EnrichStage(sources.enrichers, config.enrichment.timeout_seconds, metrics, clock),
                RankStage(
                    sources.telemetry,
                    graph,
                    window_seconds=config.prometheus.window_seconds,
                    step_seconds=config.rca.step_seconds,
                    timeout_seconds=config.enrichment.timeout_seconds,
                    max_causes=config.rca.max_causes,
                    clock=clock,
                ),
            ),
            *([RememberedCausesStage(confirmed, clock)] if confirmed is not None else []),
            SuppressStage(Suppressor(config.suppression, clock, memory, graph=graph.graph), shared, acks),
            RouteStage(config),
            RenderStage(page_links(config)),
        ]
    )


def page_links(config: Config) -> PageLinks:
    """Where a page links to: KubeBot's dashboard and Alertmanager's UI, where configured
    (Alertmanager's UI defaults to its API's address, as for the silences' own links)."""
    alertmanager = config.alertmanager
    return PageLinks(config.server.external_url, alertmanager.external_url or alertmanager.url)
