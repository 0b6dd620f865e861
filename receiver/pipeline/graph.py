"""The service dependency graph the ranking walks, from every edge source, cached."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

import networkx as nx
import structlog

from enrichers.kubernetes.enricher import KubernetesEnricher
from enrichers.telemetry.factory import Telemetry
from rca.graph import build_graph
from rca.model import Edge

log = structlog.get_logger("kubebot.rca")


class GraphCache:
    """Dependency edges from every source, fetched at most once per `refresh_seconds`.

    A source that fails leaves the graph smaller, never the pipeline waiting: the last
    good edges are kept and the next refresh tries again.
    """

    def __init__(
        self,
        telemetry: Telemetry | None,
        kubernetes: KubernetesEnricher | None,
        static_edges: Iterable[tuple[str, str]],
        refresh_seconds: float,
        timeout_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._telemetry = telemetry
        self._kubernetes = kubernetes
        self._static = tuple(Edge(caller, callee, "static") for caller, callee in static_edges)
        self._refresh = refresh_seconds
        self._timeout = timeout_seconds
        self._monotonic = monotonic
        self._edges: tuple[Edge, ...] = self._static
        self._graph = build_graph(self._static)
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def edges(self) -> tuple[Edge, ...]:
        async with self._lock:
            now = self._monotonic()
            if self._fetched_at is None or now - self._fetched_at >= self._refresh:
                self._fetched_at = now
                self._edges = self._static + await self._fetch()
                self._graph = build_graph(self._edges)
        return self._edges

    def graph(self) -> nx.DiGraph:
        """The last known graph, without waiting: for decisions that must not block."""
        return self._graph

    async def _fetch(self) -> tuple[Edge, ...]:
        found: list[Edge] = []
        try:
            async with asyncio.timeout(self._timeout):
                if self._telemetry is not None:
                    fetched = await self._telemetry.edges()
                    found.extend(fetched.edges)
                    for problem in fetched.problems:
                        log.warning("graph_source_unavailable", problem=problem)
                if self._kubernetes is not None:
                    found.extend(await self._kubernetes.dependency_edges())
        except TimeoutError:
            log.warning("graph_sources_timed_out", seconds=self._timeout)
        except Exception as exc:  # a graph source is optional; its failure is logged
            log.warning("graph_source_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        return tuple(found)
