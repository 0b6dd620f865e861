"""The service dependency graph: caller -> callee, merged from every graph source.

`build_graph` gives a networkx DiGraph (for callers that want graph algorithms);
`index_calls` gives the same calls as index arrays, which is what the ranking uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import numpy.typing as npt

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


@dataclass(frozen=True)
class CallIndex:
    """Calls among a fixed list of services as index arrays: services[callers[i]] calls
    services[callees[i]]. What the ranking walks on: arrays scale to 100,000s of edges."""

    services: tuple[str, ...]
    callers: npt.NDArray[np.intp]
    callees: npt.NDArray[np.intp]

    def __len__(self) -> int:
        return len(self.callers)


def index_calls(edges: Iterable[Edge], services: Sequence[str]) -> CallIndex:
    """Distinct caller -> callee pairs among `services`, in first-seen order.

    Edges that name another service, and self-calls, are left out; duplicates from
    several sources count once.
    """
    index = {service: i for i, service in enumerate(services)}
    pairs = dict.fromkeys(
        (index[e.caller], index[e.callee])
        for e in edges
        if e.caller != e.callee and e.caller in index and e.callee in index
    )
    array = np.array(list(pairs), dtype=np.intp).reshape(-1, 2)
    return CallIndex(tuple(services), array[:, 0].copy(), array[:, 1].copy())


def nearby(edges: Iterable[Edge], seeds: Iterable[str], *, downstream: int = 2, upstream: int = 1) -> set[str]:
    """The seeds and the services within `downstream` calls below them (what they depend
    on, where their causes hide) or `upstream` calls above (who calls them)."""
    callees: dict[str, set[str]] = {}
    callers: dict[str, set[str]] = {}
    for edge in edges:
        callees.setdefault(edge.caller, set()).add(edge.callee)
        callers.setdefault(edge.callee, set()).add(edge.caller)
    start = set(seeds)
    found = set(start)
    for links, radius in ((callees, downstream), (callers, upstream)):
        reached, frontier = set(start), set(start)
        for _ in range(radius):
            frontier = {n for s in frontier for n in links.get(s, ())} - reached
            reached |= frontier
        found |= reached
    return found
