"""The service dependency graph: caller -> callee, merged from every graph source."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from rca.model import Edge


def build_graph(edges: Iterable[Edge], services: Iterable[str] = ()) -> nx.DiGraph:
    """A DiGraph with one edge per (caller, callee) however many sources saw it.

    Edge attributes: `sources` (sorted tuple of source names), `request_rate` and
    `error_rate` (the largest any source reported, None if none did: sources observe the
    same traffic, so adding them would double count). Self-calls are dropped; `services`
    adds nodes that have no edge.
    """
    graph = nx.DiGraph()
    graph.add_nodes_from(services)
    for edge in edges:
        if edge.caller == edge.callee:
            continue
        if graph.has_edge(edge.caller, edge.callee):
            data = graph.edges[edge.caller, edge.callee]
            data["sources"] = tuple(sorted({*data["sources"], edge.source}))
            data["request_rate"] = _larger(data["request_rate"], edge.request_rate)
            data["error_rate"] = _larger(data["error_rate"], edge.error_rate)
        else:
            graph.add_edge(
                edge.caller,
                edge.callee,
                sources=(edge.source,),
                request_rate=edge.request_rate,
                error_rate=edge.error_rate,
            )
    return graph


def _larger(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
