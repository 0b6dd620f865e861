"""Root-cause ranking time for 100, 1,000 and 10,000 services.

Each service calls 5 others at random and has 6 signals over 35 minutes at 15 s steps;
one service has a fault that its callers inherit. Prints the median time per size and
the growth factor per tenfold (10 means linear). Run: `python -m bench.rca`.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from rca.model import Edge, SignalTable
from rca.ranking import rank

SIZES = (100, 1_000, 10_000)
EDGES_PER_SERVICE = 5
SIGNALS = ("cpu", "mem", "net_rx", "workload", "latency_p99", "client_latency_p99")
STEPS = 35 * 60 // 15
FAULT_STEPS = 5 * 60 // 15
REPEATS = {100: 7, 1_000: 5, 10_000: 2}


def make_case(services: int, seed: int = 0) -> tuple[SignalTable, float, list[Edge]]:
    rng = np.random.default_rng(seed)
    names = [f"svc{i}" for i in range(services)]
    callees = rng.integers(0, services, size=(services, EDGES_PER_SERVICE))
    edges = [
        Edge(names[caller], names[int(callee)], "bench")
        for caller in range(services)
        for callee in callees[caller]
        if callee != caller
    ]
    times = 1_700_000_000.0 + 15.0 * np.arange(STEPS, dtype=np.float64)
    values = 1 + 0.05 * rng.standard_normal((STEPS, services * len(SIGNALS)))
    root = int(rng.integers(0, services))
    after = slice(STEPS - FAULT_STEPS, STEPS)
    values[after, root * len(SIGNALS) : (root + 1) * len(SIGNALS)] *= 5
    for caller in np.nonzero((callees == root).any(axis=1))[0]:
        latency = int(caller) * len(SIGNALS) + SIGNALS.index("latency_p99")
        values[after, latency] *= 3
    columns = tuple(f"{name}_{signal}" for name in names for signal in SIGNALS)
    return SignalTable(times, columns, values), float(times[STEPS - FAULT_STEPS]), edges


def time_ranking(services: int) -> float:
    table, inject_time, edges = make_case(services)
    rank(table, inject_time, edges)  # warm-up: imports, caches
    runs = []
    for _ in range(REPEATS[services]):
        started = time.perf_counter()
        rank(table, inject_time, edges)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> list[tuple[str, str]]:
    print(f"rca ranking: {EDGES_PER_SERVICE} edges/service, {len(SIGNALS)} signals, {STEPS} steps")
    rows: list[tuple[str, str]] = []
    previous: float | None = None
    for services in SIZES:
        seconds = time_ranking(services)
        growth = f"  x{seconds / previous:.1f} per 10x services" if previous else ""
        print(f"{services:>7,} services  {seconds:8.3f} s{growth}")
        rows.append((f"rca ranking, {services:,} services (goal < 0.2 s at 1,000)", f"{seconds:.3f} s{growth}"))
        previous = seconds
    return rows


if __name__ == "__main__":
    main()
