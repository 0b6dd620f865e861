"""Pure helpers for the alert's own expression: find it, strip its threshold, summarise it."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from enrichers.telemetry.promclient import Series, finite

SPARK_BARS = "▁▂▃▄▅▆▇█"
_COMPARISONS = (">=", "<=", "==", "!=", ">", "<")


def expression_from_generator_url(url: str) -> str | None:
    """The PromQL of `g0.expr` in a Prometheus generatorURL, if there is one."""
    if not url:
        return None
    exprs = parse_qs(urlsplit(url).query).get("g0.expr")
    if not exprs or not exprs[0].strip():
        return None
    return exprs[0].strip()


def strip_threshold(expr: str) -> str:
    """`rate(x[5m]) > 0.05` -> `rate(x[5m])`: the threshold would hide the baseline.

    Only a top-level comparison against a number literal at the end is removed; anything
    else (`a > b`, comparisons inside parentheses, `and`/`unless`) is left alone.
    """
    depth = 0
    quote = ""
    last: tuple[int, int] | None = None  # (position, operator length)
    i = 0
    while i < len(expr):
        char = expr[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            for op in _COMPARISONS:
                if expr.startswith(op, i) and not expr.startswith("=~", i):
                    last = (i, len(op))
                    i += len(op) - 1
                    break
        i += 1
    if last is None:
        return expr
    position, length = last
    right = expr[position + length :].strip().removeprefix("bool").strip()
    try:
        float(right)
    except ValueError:
        return expr
    left = expr[:position].strip()
    return left or expr


def sparkline(values: Sequence[float], width: int = 24) -> str:
    """Unicode bars for the values, averaged down to at most `width` buckets; gaps are spaces."""
    if not values:
        return ""
    buckets: list[float] = []
    size = max(1, math.ceil(len(values) / width))
    for start in range(0, len(values), size):
        chunk = finite(values[start : start + size])
        buckets.append(sum(v / len(chunk) for v in chunk) if chunk else math.nan)
    present = finite(buckets)
    if not present:
        return " " * len(buckets)
    # Halved so that the span of any two finite floats stays finite.
    low, high = min(present) / 2, max(present) / 2
    span = high - low
    bars = []
    for value in buckets:
        if not math.isfinite(value):
            bars.append(" ")
        elif span == 0:
            bars.append(SPARK_BARS[0])
        else:
            index = round((value / 2 - low) / span * (len(SPARK_BARS) - 1))
            bars.append(SPARK_BARS[index])
    return "".join(bars)


def pick_alert_series(series: Sequence[Series], alert_labels: Mapping[str, str]) -> Series | None:
    """The series that fired this alert: the one whose labels the alert carries.

    An alert's labels are its series' labels plus the rule's own, so the match is the
    series whose every label (but the metric name) has the same value on the alert; with
    several, the most specific one.
    """
    matching = [s for s in series if all(alert_labels.get(k) == v for k, v in s.labels.items() if k != "__name__")]
    if matching:
        return max(matching, key=lambda s: len(s.labels))
    return series[0] if len(series) == 1 else None


@dataclass(frozen=True)
class ExpressionSummary:
    expr: str
    current: float | None
    baseline: float | None
    change_ratio: float | None
    sparkline: str
    series_count: int
    points: tuple[tuple[float, float], ...]

    def to_facts(self) -> dict[str, Any]:
        return {
            "expr": self.expr,
            "current": _json_number(self.current),
            "baseline": _json_number(self.baseline),
            "change_ratio": _json_number(self.change_ratio),
            "sparkline": self.sparkline,
            "series_count": self.series_count,
            "points": [[t, _json_number(v)] for t, v in self.points],
        }

    def line(self) -> str:
        """e.g. `Alert expression: 0.231 now vs 0.0099 before (x23.3) ▁▁▁▃▅▇██`."""
        if self.current is None:
            return "Alert expression: no data in the window"
        text = f"Alert expression: {format_number(self.current)} now"
        if self.baseline is not None:
            text += f" vs {format_number(self.baseline)} before"
        if self.change_ratio is not None:
            text += f" (x{format_number(self.change_ratio)})"
        return f"{text} {self.sparkline}".rstrip()


def summarize_expression(
    expr: str, series: Sequence[Series], alert_labels: Mapping[str, str], starts_at: datetime
) -> ExpressionSummary:
    """Current value, baseline (median before the alert started), change and a sparkline."""
    chosen = pick_alert_series(series, alert_labels)
    if chosen is None or not chosen.points:
        return ExpressionSummary(expr, None, None, None, "", len(series), ())
    start_ts = starts_at.timestamp()
    before = finite([v for t, v in chosen.points if t < start_ts])
    current = chosen.points[-1][1]
    baseline = statistics.median(before) if before else None
    ratio = None
    if baseline is not None and baseline != 0 and math.isfinite(current):
        ratio = current / baseline
    return ExpressionSummary(
        expr=expr,
        current=current if math.isfinite(current) else None,
        baseline=baseline,
        change_ratio=ratio,
        sparkline=sparkline(chosen.values),
        series_count=len(series),
        points=chosen.points,
    )


def format_number(value: float) -> str:
    """Three significant digits, with k/M/G for large values."""
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def _json_number(value: float | None) -> float | None:
    # JSON has no NaN or Infinity.
    return value if value is not None and math.isfinite(value) else None
