"""What error traces say, whichever backend found them (Jaeger or Tempo)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from enrichers.telemetry.promql import format_number

TOP_OPERATIONS = 3
MAX_LINKS = 3


@dataclass(frozen=True)
class SpanInfo:
    """A span reduced to what the summary needs; `parent_id` is None for a root."""

    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    operation: str
    duration_ms: float
    is_error: bool
    error_message: str | None = None


@dataclass(frozen=True)
class ErrorSpan:
    trace_id: str
    service: str
    operation: str
    message: str | None
    duration_ms: float
    depth: int

    def to_facts(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "service": self.service,
            "operation": self.operation,
            "message": self.message,
            "duration_ms": self.duration_ms,
            "depth": self.depth,
        }


def span_depths(spans: Iterable[SpanInfo]) -> dict[str, int]:
    """Depth of every span in one trace (root 0); a span whose parent is missing is a root."""
    parents: dict[str, str | None] = {}
    for span in spans:
        parents.setdefault(span.span_id, span.parent_id)  # Jaeger may repeat a span id
    depths: dict[str, int] = {}
    for span_id in parents:
        chain: list[str] = []
        current: str | None = span_id
        while current is not None and current in parents and current not in depths:
            if current in chain:  # a reference cycle: treat as root
                break
            chain.append(current)
            current = parents[current]
        base = depths.get(current, -1) if current is not None else -1
        for offset, node in enumerate(reversed(chain), start=1):
            depths[node] = base + offset
    return depths


def deepest_error(spans: Iterable[SpanInfo]) -> ErrorSpan | None:
    """The erroring span farthest from its root: usually where the failure began.

    Depth is per trace; ties go to the longer span (it waited on nothing deeper).
    """
    by_trace: dict[str, list[SpanInfo]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    best: ErrorSpan | None = None
    for trace_spans in by_trace.values():
        depths = span_depths(trace_spans)
        for span in trace_spans:
            if not span.is_error:
                continue
            candidate = ErrorSpan(
                span.trace_id,
                span.service,
                span.operation,
                span.error_message,
                span.duration_ms,
                depths.get(span.span_id, 0),
            )
            if best is None or (candidate.depth, candidate.duration_ms) > (
                best.depth,
                best.duration_ms,
            ):
                best = candidate
    return best


@dataclass(frozen=True)
class TraceSummary:
    backend: str
    service: str
    error_trace_count: int
    count_is_capped: bool  # the backend's limit was reached: there may be more
    top_operations: tuple[tuple[str, int], ...]
    deepest: ErrorSpan | None
    links: tuple[str, ...]

    def to_facts(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "error_traces": self.error_trace_count,
            "error_traces_capped": self.count_is_capped,
            "top_failing_operations": [{"operation": op, "count": n} for op, n in self.top_operations],
            "deepest_error_span": self.deepest.to_facts() if self.deepest else None,
            "links": list(self.links),
        }

    def lines(self) -> tuple[str, ...]:
        if self.error_trace_count == 0:
            return (f"{self.backend}: no error traces for {self.service} in the window",)
        count = f"{self.error_trace_count}{'+' if self.count_is_capped else ''}"
        lines = [f"{self.backend}: {count} error traces for {self.service}"]
        if self.top_operations:
            ops = ", ".join(f"{op} ({n})" for op, n in self.top_operations)
            lines[0] += f"; failing: {ops}"
        if self.deepest is not None:
            span = self.deepest
            text = f"Deepest error: {span.service} {span.operation}"
            if span.message:
                text += f": {span.message[:160]}"
            text += f" ({format_number(span.duration_ms)} ms)"
            lines.append(text)
        if self.links:
            lines.append(f"Trace: {self.links[0]}")
        return tuple(lines)


def top_operations(names: Iterable[str], limit: int = TOP_OPERATIONS) -> tuple[tuple[str, int], ...]:
    counts = Counter(name for name in names if name)
    # most_common keeps first-seen order among ties, so the result is stable.
    return tuple(counts.most_common(limit))


def resolve_service(wanted: str, known: Iterable[str]) -> str | None:
    """The backend's name for a service: exact, else `wanted.<namespace>` (Istio style)."""
    names = list(known)
    if wanted in names:
        return wanted
    prefixed = sorted(n for n in names if n.startswith(f"{wanted}."))
    return prefixed[0] if prefixed else None


def string_attributes(attributes: object) -> Mapping[str, str]:
    """OTLP JSON attributes `[{"key", "value": {"stringValue": ...}}]` as a plain mapping."""
    result: dict[str, str] = {}
    if not isinstance(attributes, list):
        return result
    for attribute in attributes:
        if not isinstance(attribute, dict) or not isinstance(attribute.get("key"), str):
            continue
        value = attribute.get("value")
        if isinstance(value, dict) and value:
            raw = next(iter(value.values()))
            result[attribute["key"]] = raw if isinstance(raw, str) else str(raw)
    return result
