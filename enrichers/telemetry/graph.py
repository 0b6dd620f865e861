"""Dependency edges for the RCA graph, from whatever the cluster has.

Prometheus: the OpenTelemetry servicegraph metrics (also Tempo's metrics-generator),
Istio's and Linkerd's request metrics; one probe query finds which families exist, and
only those are asked for. Jaeger: GET /api/dependencies.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from enrichers.telemetry.http import JsonHttp, MalformedResponse, gather_available
from enrichers.telemetry.naming import column_service
from enrichers.telemetry.promclient import PromClient, Series
from rca.model import Edge


@dataclass(frozen=True)
class EdgeFamily:
    """One Prometheus metric family that describes calls between services."""

    source: str  # Edge.source
    metric: str  # the probed metric name
    caller_label: str
    callee_label: str
    requests: str  # PromQL, grouped by caller and callee labels
    errors: str


def _rate(metric: str, matchers: str, by: str, window: str) -> str:
    return f"sum by ({by}) (rate({metric}{{{matchers}}}[{window}]))"


def edge_families(window: str = "5m") -> tuple[EdgeFamily, ...]:
    servicegraph_by = "client, server"
    istio_by = "source_workload, destination_workload"
    linkerd_by = "deployment, dst_deployment"
    istio = 'reporter="destination"'
    linkerd = 'direction="outbound"'
    return (
        EdgeFamily(
            "servicegraph",
            "traces_service_graph_request_total",
            "client",
            "server",
            _rate("traces_service_graph_request_total", "", servicegraph_by, window),
            _rate("traces_service_graph_request_failed_total", "", servicegraph_by, window),
        ),
        EdgeFamily(
            "istio",
            "istio_requests_total",
            "source_workload",
            "destination_workload",
            _rate("istio_requests_total", istio, istio_by, window),
            _rate("istio_requests_total", istio + ', response_code=~"5.."', istio_by, window),
        ),
        EdgeFamily(
            "linkerd",
            "response_total",
            "deployment",
            "dst_deployment",
            _rate("response_total", linkerd, linkerd_by, window),
            _rate("response_total", linkerd + ', classification="failure"', linkerd_by, window),
        ),
    )


def probe_query(families: Sequence[EdgeFamily]) -> str:
    names = "|".join(family.metric for family in families)
    return f'count by (__name__) ({{__name__=~"{names}"}})'


def present_metrics(series: Sequence[Series]) -> frozenset[str]:
    return frozenset(s.labels.get("__name__", "") for s in series) - {""}


# Placeholders for "not a known workload" (Istio: unknown; servicegraph virtual node: user).
_UNKNOWN = frozenset({"", "unknown", "user"})


def edges_from_series(family: EdgeFamily, requests: Sequence[Series], errors: Sequence[Series]) -> tuple[Edge, ...]:
    """One edge per caller/callee pair; rates are per second, self-calls dropped."""
    error_rates = {_pair(family, s): s.last for s in errors}
    edges = []
    for series in requests:
        caller, callee = _pair(family, series)
        if caller in _UNKNOWN or callee in _UNKNOWN or caller == callee:
            continue
        edges.append(
            Edge(
                caller=caller,
                callee=callee,
                source=family.source,
                request_rate=_finite(series.last),
                error_rate=_finite(error_rates.get((caller, callee))),
            )
        )
    return tuple(sorted(edges, key=lambda e: (e.caller, e.callee)))


def _pair(family: EdgeFamily, series: Series) -> tuple[str, str]:
    caller = series.labels.get(family.caller_label, "")
    callee = series.labels.get(family.callee_label, "")
    return column_service(caller), column_service(callee)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def edges_from_jaeger_dependencies(body: Any, lookback: timedelta) -> tuple[Edge, ...]:
    """`{"data": [{"parent", "child", "callCount"}]}` -> edges; callCount over the lookback."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise MalformedResponse("/api/dependencies has no data list")
    seconds = max(lookback.total_seconds(), 1.0)
    edges = []
    for item in data:
        if not isinstance(item, dict):
            raise MalformedResponse("/api/dependencies item is not an object")
        parent, child = item.get("parent"), item.get("child")
        count = item.get("callCount", 0)
        if not isinstance(parent, str) or not isinstance(child, str):
            raise MalformedResponse("/api/dependencies item without parent and child")
        if not parent or not child or parent == child:
            continue
        rate = count / seconds if isinstance(count, int | float) else None
        edges.append(Edge(column_service(parent), column_service(child), "jaeger", rate))
    return tuple(edges)


@dataclass(frozen=True)
class EdgeFetch:
    edges: tuple[Edge, ...]
    sources: tuple[str, ...]  # the families that answered with data
    problems: tuple[str, ...]  # "<source>: <reason>" for the ones that failed


class GraphSources:
    """Fetches edges from every configured source concurrently; a failing source is skipped."""

    def __init__(
        self,
        *,
        prometheus: PromClient | None = None,
        jaeger_url: str | None = None,
        timeout_seconds: float = 4.0,
        rate_window: str = "5m",
        jaeger_lookback: timedelta = timedelta(hours=1),
    ) -> None:
        self.prometheus = prometheus
        self.families = edge_families(rate_window)
        self.jaeger_lookback = jaeger_lookback
        self._jaeger = JsonHttp(jaeger_url, timeout_seconds=timeout_seconds) if jaeger_url else None

    async def fetch_edges(self, at: datetime | None = None) -> EdgeFetch:
        jobs: list[tuple[str, Awaitable[tuple[list[Edge], list[str], list[str]]]]] = []
        if self.prometheus is not None:
            jobs.append(("prometheus", self._prometheus_edges(self.prometheus, at)))
        if self._jaeger is not None:
            jobs.append(("jaeger", self._jaeger_edges(self._jaeger, at)))
        results, unavailable = await gather_available(jobs)
        edges: list[Edge] = []
        sources: list[str] = []
        problems: list[str] = []
        for _, (found, found_sources, found_problems) in results:
            edges.extend(found)
            sources.extend(found_sources)
            problems.extend(found_problems)
        # Prometheus' own problems first: the order they had before Jaeger's.
        return EdgeFetch(tuple(edges), tuple(sources), (*problems, *unavailable))

    async def _prometheus_edges(
        self, client: PromClient, at: datetime | None
    ) -> tuple[list[Edge], list[str], list[str]]:
        present = present_metrics(await client.instant_query(probe_query(self.families), at))
        families = [f for f in self.families if f.metric in present]
        answers, problems = await gather_available(
            [(family.source, self._family_edges(client, family, at)) for family in families]
        )
        edges: list[Edge] = []
        sources: list[str] = []
        for source, answer in answers:
            if answer:
                edges.extend(answer)
                sources.append(source)
        return edges, sources, problems

    @staticmethod
    async def _family_edges(client: PromClient, family: EdgeFamily, at: datetime | None) -> tuple[Edge, ...]:
        requests, errors = await asyncio.gather(
            client.instant_query(family.requests, at), client.instant_query(family.errors, at)
        )
        return edges_from_series(family, requests, errors)

    async def _jaeger_edges(self, jaeger: JsonHttp, at: datetime | None) -> tuple[list[Edge], list[str], list[str]]:
        end = at or datetime.now().astimezone()
        lookback_ms = int(self.jaeger_lookback.total_seconds() * 1000)
        body = await jaeger.get(
            "/api/dependencies",
            {"endTs": str(int(end.timestamp() * 1000)), "lookback": str(lookback_ms)},
        )
        edges = list(edges_from_jaeger_dependencies(body, self.jaeger_lookback))
        return edges, ["jaeger"] if edges else [], []

    async def close(self) -> None:
        # The Prometheus client is shared and closed by its owner.
        if self._jaeger is not None:
            await self._jaeger.close()
