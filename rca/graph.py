"""The service dependency graph: caller -> callee, merged from every graph source."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx

from rca.model import Edge


@dataclass(frozen=True)
class _Seen:
    """What the sources together know about one caller -> callee pair."""

    sources: frozenset[str]
    request_rate: float | None
    error_rate: float | None

    def merge(self, edge: Edge) -> _Seen:
        return _Seen(
            self.sources | {edge.source},
            _larger(self.request_rate, edge.request_rate),
            _larger(self.error_rate, edge.error_rate),
        )


def build_graph(edges: Iterable[Edge], services: Iterable[str] = ()) -> nx.DiGraph:
    """A DiGraph with one edge per (caller, callee) however many sources saw it.

    Edge attributes: `sources` (sorted tuple of source names), `request_rate` and
    `error_rate` (the largest any source reported, None if none did: sources observe the
    same traffic, so adding them would double count). Self-calls are dropped; `services`
    adds nodes that have no edge.
    """
    seen: dict[tuple[str, str], _Seen] = {}
    for edge in edges:
        if edge.caller == edge.callee:
            continue
        pair = (edge.caller, edge.callee)
        before = seen.get(pair)
        seen[pair] = (
            before.merge(edge) if before else _Seen(frozenset({edge.source}), edge.request_rate, edge.error_rate)
        )
    graph = nx.DiGraph()
    graph.add_nodes_from(services)
    # One bulk insert: much faster than edge by edge for tens of thousands of edges.
    graph.add_edges_from(
        (
            caller,
            callee,
            {
                "sources": tuple(sorted(s.sources)),
                "request_rate": s.request_rate,
                "error_rate": s.error_rate,
            },
        )
        for (caller, callee), s in seen.items()
    )
    return graph


def _larger(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
