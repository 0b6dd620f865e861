"""Geometry for the dashboard's inline SVG: a metric line chart and a dependency graph.

Pure code: numbers and labels in, coordinates out. The templates turn these into SVG
elements, so every label still goes through the template engine's escaping; nothing
here builds markup.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from enrichers.telemetry.promql import format_number

# ---- line chart --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    position: float  # pixels along the axis
    label: str


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    # One SVG `points` string per run of known values: a gap in the data stays a gap.
    segments: tuple[str, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    marker_x: float | None  # where the alert started, when inside the window


def line_chart(
    points: Sequence[Sequence[object]],
    *,
    marker_time: float | None = None,
    width: int = 640,
    height: int = 200,
) -> LineChart | None:
    """[[unix seconds, value or None], ...] -> chart geometry; None when nothing is plottable."""
    samples = _samples(points)
    known = [(t, v) for t, v in samples if v is not None]
    if not known:
        return None
    left, right, top, bottom = 56.0, width - 8.0, 8.0, height - 24.0
    t_low, t_high = samples[0][0], samples[-1][0]
    if t_high <= t_low:
        t_high = t_low + 1.0
    v_low, v_high = min(v for _, v in known), max(v for _, v in known)
    if v_high - v_low < 1e-12:  # a flat line sits in the middle, not on an edge
        pad = abs(v_high) * 0.1 or 1.0
        v_low, v_high = v_low - pad, v_high + pad

    def x_of(t: float) -> float:
        return left + (t - t_low) / (t_high - t_low) * (right - left)

    def y_of(v: float) -> float:
        return bottom - (v - v_low) / (v_high - v_low) * (bottom - top)

    segments: list[str] = []
    run: list[str] = []
    for t, v in samples:
        if v is None:
            if run:
                segments.append(" ".join(run))
            run = []
            continue
        run.append(f"{x_of(t):.1f},{y_of(v):.1f}")
    if run:
        segments.append(" ".join(run))
    y_ticks = tuple(Tick(round(y_of(v), 1), format_number(v)) for v in (v_low, (v_low + v_high) / 2, v_high))
    x_ticks = tuple(Tick(round(x_of(t), 1), _clock(t)) for t in (t_low, (t_low + t_high) / 2, t_high))
    marker_x = round(x_of(marker_time), 1) if marker_time is not None and t_low <= marker_time <= t_high else None
    return LineChart(width, height, left, right, top, bottom, tuple(segments), y_ticks, x_ticks, marker_x)


def _samples(points: Sequence[Sequence[object]]) -> list[tuple[float, float | None]]:
    """Well-formed, time-ordered samples; anything else in the stored facts is skipped."""
    samples: list[tuple[float, float | None]] = []
    for point in points:
        if not isinstance(point, Sequence) or isinstance(point, str) or len(point) != 2:
            continue
        t = _finite(point[0])
        if t is not None:
            samples.append((t, _finite(point[1])))
    samples.sort(key=lambda s: s[0])
    return samples


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M")


# ---- dependency graph --------------------------------------------------------------------------

NODE_WIDTH = 150
NODE_HEIGHT = 30
GAP_X = 24
GAP_Y = 56
MARGIN = 12
MAX_NODES = 40
MAX_LABEL = 20
BACK_EDGE_SHIFT = 10


@dataclass(frozen=True)
class GraphNode:
    name: str
    label: str  # shortened to fit the box; `name` goes in the tooltip
    x: float  # top-left corner
    y: float
    rank: int | None  # 1 = the top ranked cause


@dataclass(frozen=True)
class GraphEdge:
    caller: str
    callee: str
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class GraphLayout:
    width: int
    height: int
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    hidden_nodes: int  # left out to keep the picture readable
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


def layout_graph(
    nodes: Sequence[str],
    edges: Sequence[Sequence[str]],
    causes: Sequence[str] = (),
) -> GraphLayout | None:
    """Callers above callees, one row per call depth; ranked causes carry their rank.

    A longest-path layering with one barycentre pass: enough for the tens of services an
    incident touches. Cycles are broken where a depth-first walk meets them again.
    """
    given = [(str(e[0]), str(e[1])) for e in edges if isinstance(e, Sequence) and len(e) == 2]
    names = list(dict.fromkeys([*map(str, nodes), *(n for pair in given for n in pair)]))
    pairs = [(a, b) for a, b in given if a != b]  # a service calling itself is not drawn
    if not names:
        return None
    ranks = {service: i + 1 for i, service in enumerate(dict.fromkeys(causes))}
    kept = _keep(names, pairs, ranks)
    pairs = [(a, b) for a, b in dict.fromkeys(pairs) if a in kept and b in kept]
    depth = _depths([n for n in names if n in kept], pairs)
    rows: dict[int, list[str]] = {}
    for name in names:
        if name in kept:
            rows.setdefault(depth[name], []).append(name)
    callers: dict[str, list[str]] = {}
    for a, b in pairs:
        callers.setdefault(b, []).append(a)
    order: dict[str, float] = {}
    for level in sorted(rows):
        row = rows[level]
        if level > 0:  # place each service under the services that call it
            row.sort(key=lambda n: _mean([order[c] for c in callers.get(n, []) if c in order], default=len(row)))
        for i, name in enumerate(row):
            order[name] = i
    widest = max(len(row) for row in rows.values())
    width = 2 * MARGIN + widest * NODE_WIDTH + (widest - 1) * GAP_X
    height = 2 * MARGIN + len(rows) * NODE_HEIGHT + (len(rows) - 1) * GAP_Y
    placed: dict[str, GraphNode] = {}
    for row_index, level in enumerate(sorted(rows)):
        row = rows[level]
        row_width = len(row) * NODE_WIDTH + (len(row) - 1) * GAP_X
        start = (width - row_width) / 2
        for i, name in enumerate(row):
            x = start + i * (NODE_WIDTH + GAP_X)
            y = MARGIN + row_index * (NODE_HEIGHT + GAP_Y)
            placed[name] = GraphNode(name, _shorten(name), round(x, 1), round(y, 1), ranks.get(name))
    drawn = tuple(_edge(placed[a], placed[b]) for a, b in pairs)
    return GraphLayout(width, height, tuple(placed[n] for n in names if n in placed), drawn, len(names) - len(kept))


def _edge(caller: GraphNode, callee: GraphNode) -> GraphEdge:
    """Bottom of the caller to the top of the callee; an edge pointing up (a cycle) runs
    a little to the side, so a pair calling each other shows two arrows, not one line."""
    down = callee.y > caller.y
    shift = 0.0 if down else BACK_EDGE_SHIFT
    return GraphEdge(
        caller.name,
        callee.name,
        caller.x + NODE_WIDTH / 2 + shift,
        caller.y + (NODE_HEIGHT if down else 0),
        callee.x + NODE_WIDTH / 2 + shift,
        callee.y + (0 if down else NODE_HEIGHT),
    )


def _keep(names: list[str], pairs: list[tuple[str, str]], ranks: Mapping[str, int]) -> set[str]:
    """At most MAX_NODES: the ranked causes first, then their neighbours, then the rest."""
    if len(names) <= MAX_NODES:
        return set(names)
    neighbours = {b for a, b in pairs if a in ranks} | {a for a, b in pairs if b in ranks}
    preferred = sorted(ranks, key=lambda n: ranks[n]) + [n for n in names if n in neighbours] + names
    return set(list(dict.fromkeys(n for n in preferred if n in set(names)))[:MAX_NODES])


def _depths(names: list[str], pairs: list[tuple[str, str]]) -> dict[str, int]:
    """Longest path from any caller-less service, over the graph without its back edges."""
    callees: dict[str, list[str]] = {n: [] for n in names}
    for a, b in pairs:
        callees[a].append(b)
    acyclic: dict[str, list[str]] = {n: [] for n in names}
    state: dict[str, int] = {}  # 1 on the current walk, 2 finished
    finished: list[str] = []
    for root in names:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack.pop()
            if i < len(callees[node]):
                stack.append((node, i + 1))
                nxt = callees[node][i]
                if state.get(nxt) == 1:
                    continue  # a back edge: drawing it upwards is fine, layering on it is not
                acyclic[node].append(nxt)
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                finished.append(node)
    depth = dict.fromkeys(names, 0)
    for node in reversed(finished):  # reverse post-order is a topological order
        for nxt in acyclic[node]:
            depth[nxt] = max(depth[nxt], depth[node] + 1)
    return depth


def _mean(values: list[int] | list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _shorten(name: str) -> str:
    return name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…"
