"""Synthetic RCA cases: a random call graph, a fault in one service, and its callers
inheriting part of its latency, with noise everywhere.

Services are named `svc<i>`; service i only calls services with a larger index, so the
graph is acyclic and the last services are leaves. The table has the case format's
`<service>_<metric>` columns, a normal window, then the fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import numpy.typing as npt

from rca.model import Edge, SignalTable

SIGNALS = ("cpu", "mem", "net_rx", "workload", "latency_p99", "client_latency_p99")
BASE_LEVEL = {
    "cpu": 20.0,
    "mem": 40.0,
    "net_rx": 5000.0,
    "workload": 10.0,
    "latency_p99": 0.05,
    "client_latency_p99": 0.04,
}


@dataclass(frozen=True)
class SyntheticCase:
    table: SignalTable
    inject_time: float
    edges: tuple[Edge, ...]
    root_cause: str
    services: tuple[str, ...]


def service_name(index: int) -> str:
    return f"svc{index}"


def random_call_graph(services: int, edges_per_service: int, seed: int) -> tuple[Edge, ...]:
    """Each service but the last calls up to `edges_per_service` later services."""
    rng = np.random.default_rng(seed)
    edges = []
    for caller in range(services - 1):
        later = np.arange(caller + 1, services)
        # Mostly nearby services, so the graph has depth rather than one hub.
        window = later[: max(1, 4 * edges_per_service)]
        count = int(rng.integers(1, edges_per_service + 1))
        for callee in rng.choice(window, size=min(count, len(window)), replace=False):
            edges.append(Edge(service_name(caller), service_name(int(callee)), "static"))
    return tuple(edges)


def generate_case(
    services: int,
    seed: int,
    fault_service: int | None = None,
    edges_per_service: int = 3,
    steps: int = 140,
    step_seconds: float = 15.0,
    fault_steps: int = 20,
    fault_size: float = 8.0,
    inherited_share: float = 0.6,
    noise: float = 0.05,
    signals: Sequence[str] = SIGNALS,
) -> SyntheticCase:
    """A case whose fault (cpu and latency steps) sits in `fault_service` (random if None).

    Callers inherit `inherited_share` of the latency step per hop, on their latency and
    on the client latency of their outgoing calls; their resources stay normal.
    """
    rng = np.random.default_rng(seed)
    edges = random_call_graph(services, edges_per_service, seed)
    root = int(rng.integers(0, services)) if fault_service is None else fault_service
    names = tuple(service_name(i) for i in range(services))
    times = 1_700_000_000.0 + step_seconds * np.arange(steps, dtype=np.float64)
    inject_index = steps - fault_steps
    after = np.arange(steps) >= inject_index

    hops = _hops_to(names, edges, service_name(root))
    columns = []
    blocks = []
    for name in names:
        level = rng.uniform(0.5, 2.0)
        for signal in signals:
            base = BASE_LEVEL.get(signal, 1.0) * level
            series = base * (1 + noise * rng.standard_normal(steps))
            series += _fault_effect(signal, name, hops, base, fault_size, inherited_share, after)
            columns.append(f"{name}_{signal}")
            blocks.append(np.abs(series))
    values = np.column_stack(blocks).astype(np.float64)
    table = SignalTable(times, tuple(columns), values)
    return SyntheticCase(table, float(times[inject_index]), edges, service_name(root), names)


def _hops_to(names: Sequence[str], edges: Sequence[Edge], root: str) -> dict[str, int]:
    """For the root and every service that reaches it: how many calls away it is."""
    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    graph.add_edges_from((e.caller, e.callee) for e in edges)
    distances: dict[str, int] = nx.single_source_shortest_path_length(graph.reverse(), root)
    return distances


def _fault_effect(
    signal: str,
    name: str,
    hops: dict[str, int],
    base: float,
    fault_size: float,
    inherited_share: float,
    after: npt.NDArray[np.bool_],
) -> npt.NDArray[np.float64]:
    if name not in hops:
        return np.zeros(len(after))
    distance = hops[name]
    if distance == 0:
        step = fault_size if signal in ("cpu", "latency_p99") else 0.0
    elif "latency" in signal:
        step = fault_size * inherited_share**distance
    else:
        step = 0.0
    effect: npt.NDArray[np.float64] = np.where(after, step * base, 0.0)
    return effect
