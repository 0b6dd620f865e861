"""Root-cause ranking inside the pipeline: the same `rca.rank` as `kubebot rca`, fed online,
scoped to the incident.

The candidates are the incident's neighbourhood (receiver.pipeline.neighbourhood): the
Kubernetes objects its alerts are about, their owners, nodes and recent rollouts, with
what the enricher found wrong with them, and the services among them and their
dependencies in the graph. The signal table comes from the `rca.signals` Prometheus
queries around the alert, the graph from every configured edge source (cached); the
metric ranking names only neighbourhood services. Without Prometheus only objects that
something was found wrong with rank; without edges every service keeps its plain rank.

One Alertmanager group can hold unrelated faults (kube-prometheus groups by namespace:
a full claim, a crash loop and an HPA at its maximum in one group). Each alert's causes
are the batch's, its own neighbourhood's first: the page about the claim names the claim
before the crash loop next door.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from enrichers.telemetry.factory import Telemetry
from enrichers.telemetry.signals import SignalFetch
from rca.model import Edge, RootCause, SignalTable
from rca.ranking import rank
from rca.suspects import blend
from receiver.pipeline.enrich import EnrichStage
from receiver.pipeline.graph import GraphCache
from receiver.pipeline.neighbourhood import Neighbourhood, joined, neighbourhood
from receiver.pipeline.outcome import GraphRecord
from receiver.pipeline.stage import Work

log = structlog.get_logger("kubebot.rca")

MAX_GRAPH_NODES = 30
TABLES_KEPT = 8  # signal tables remembered for groups that arrive together


def graph_view(edges: Sequence[Edge], causes: Sequence[RootCause]) -> GraphRecord:
    """The part of the graph worth drawing: the top causes and their neighbours. A cause
    that is a Kubernetes object off the graph (a node, a claim) is not drawn."""
    named = {e.caller for e in edges} | {e.callee for e in edges}
    causes = [c for c in causes if c.kind is None or c.service in named]
    keep: list[str] = [c.service for c in causes]
    for edge in edges:
        if len(keep) >= MAX_GRAPH_NODES:
            break
        for a, b in ((edge.caller, edge.callee), (edge.callee, edge.caller)):
            if a in keep[: len(causes)] and b not in keep:
                keep.append(b)
    kept = set(keep)
    pairs = sorted({(e.caller, e.callee) for e in edges if e.caller in kept and e.callee in kept})
    return GraphRecord(nodes=tuple(keep), edges=tuple(pairs), causes=tuple(c.service for c in causes))


def own_first(
    causes: Sequence[RootCause], own: Neighbourhood, services: Iterable[str], edges: Sequence[Edge]
) -> tuple[RootCause, ...]:
    """The batch's causes, those of one alert's own neighbourhood first (its objects, and
    the services its metric ranking may name), each part in the batch's order. A service
    whose signals stayed normal (score 0) is no cause to put ahead of another's facts."""
    objects = {(s.kind, s.namespace, s.name) for s in own.suspects}
    named = own.candidates(services, edges) if services else set()

    def is_own(cause: RootCause) -> bool:
        if cause.score <= 0:
            return False
        if cause.kind is not None:
            return (cause.kind, cause.namespace, cause.service) in objects
        return cause.service in named

    return tuple(sorted(causes, key=lambda c: not is_own(c)))


@dataclass(frozen=True)
class Evidence:
    table: SignalTable
    edges: tuple[Edge, ...]
    began: datetime


class RankStage:
    """Ranks likely root causes once per batch (one Alertmanager group) of firing alerts."""

    def __init__(
        self,
        telemetry: Telemetry | None,
        graph: GraphCache,
        *,
        window_seconds: float,
        step_seconds: float,
        timeout_seconds: float,
        max_causes: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._telemetry = telemetry
        self._graph = graph
        self._window = timedelta(seconds=window_seconds)
        self._step = step_seconds
        self._timeout = timeout_seconds
        self._max_causes = max_causes
        self._clock = clock
        self._tables: dict[tuple[int, int], asyncio.Future[SignalFetch | None]] = {}

    async def _signals(self, start: datetime, end: datetime) -> SignalFetch | None:
        """The signal table, shared by the groups of a storm: times are aligned to the step,
        so groups whose alerts began within one step ask Prometheus once."""
        assert self._telemetry is not None
        step = self._step
        key = (int(start.timestamp() // step), int(end.timestamp() // step))
        task = self._tables.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            aligned = (datetime.fromtimestamp(key[0] * step, UTC), datetime.fromtimestamp(key[1] * step, UTC))
            task = asyncio.ensure_future(self._telemetry.signal_table(*aligned, step))
            self._tables[key] = task
            for old in list(self._tables)[:-TABLES_KEPT]:
                del self._tables[old]
        return await asyncio.shield(task)

    async def fetch(self, batch: Sequence[Work]) -> Evidence | None:
        """The signal table and the graph for a batch; needs no enrichment, so it can run
        while the enrichers do."""
        firing = [w for w in batch if w.alert.status == "firing"]
        if not firing or self._telemetry is None or self._telemetry.prometheus is None:
            return None
        began = min(w.alert.starts_at for w in firing)
        end = max(self._clock(), began + timedelta(seconds=2 * self._step))
        try:
            async with asyncio.timeout(self._timeout):
                fetched, edges = await asyncio.gather(self._signals(began - self._window, end), self._graph.edges())
        except TimeoutError:
            log.warning("rca_unavailable", reason=f"signals timed out after {self._timeout:g}s")
            return None
        if fetched is None or not fetched.table.columns:
            problems = list(fetched.problems if fetched else ())
            # Without failures this is a Prometheus that lacks the signals' metrics: said for
            # every group of a storm, so only at debug; a failing query is worth an info line.
            say = log.info if problems else log.debug
            say("rca_unavailable", reason="no signal series", problems=problems)
            return None
        return Evidence(fetched.table, edges, began)

    async def rank(self, batch: Sequence[Work], evidence: Evidence | None) -> list[Work]:
        """Ranks the incident's neighbourhood: the Kubernetes objects its alerts are about
        and what the enrichers found around them, and the metric anomalies of the services
        among them and their dependencies. Without signals, only objects something was
        found wrong with rank."""
        # Each alert's own neighbourhood orders its causes; together they are the batch's.
        alone = [neighbourhood([w]) for w in batch]
        around = joined(alone)
        view: GraphRecord | None = None
        services: set[str] = set()
        edges: tuple[Edge, ...] = ()
        if evidence is None:
            if not around.found_something:
                return list(batch)
            causes = blend(around.suspects, ())
        else:
            services = {SignalTable.service_of(c) for c in evidence.table.columns}
            edges = evidence.edges
            among = around.candidates(services, edges)
            ranked = await asyncio.to_thread(rank, evidence.table, evidence.began.timestamp(), edges, among=among)
            causes = blend(around.suspects, ranked)
            view = graph_view(edges, causes[: self._max_causes])
        return [
            dataclasses.replace(w, root_causes=own_first(causes, own, services, edges)[: self._max_causes], graph=view)
            if w.alert.status == "firing"
            else w
            for w, own in zip(batch, alone, strict=True)
        ]

    async def exec(self, batch: Sequence[Work]) -> list[Work]:
        return await self.rank(batch, await self.fetch(batch))


class EnrichAndRankStage:
    """Enrichment and the ranking's Prometheus queries at the same time, then the ranking:
    an alert waits for the slowest source once, not for the enrichers and then the signals."""

    def __init__(self, enrich: EnrichStage, ranking: RankStage) -> None:
        self._enrich = enrich
        self._ranking = ranking

    async def exec(self, batch: Sequence[Work]) -> list[Work]:
        enriched, evidence = await asyncio.gather(self._enrich.exec(batch), self._ranking.fetch(batch))
        return await self._ranking.rank(enriched, evidence)
