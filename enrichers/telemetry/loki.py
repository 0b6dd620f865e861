"""Loki enricher: the workload's error lines in the alert window.

Useful where the Kubernetes enricher cannot help: the pod is gone, or was replaced.
GET /loki/api/v1/query_range?query=<LogQL>&start=&end=&limit=&direction=backward (ns).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from enrichers.base import AlertInput, EnrichContext, Enrichment
from enrichers.telemetry.http import HttpBackend, MalformedResponse, alert_window
from enrichers.telemetry.naming import alert_service, promql_regex_literal, promql_string

DEFAULT_LINE_FILTER = "(?i)(error|exception|fatal|panic|traceback)"
MAX_LINE_CHARS = 300


def log_selector(labels: Mapping[str, str]) -> str | None:
    """A LogQL stream selector for the alert's pods (Kubernetes labels: namespace, pod,
    container, as promtail and Grafana Alloy set them), or None when the alert names none.
    """
    matchers = []
    namespace = labels.get("namespace")
    if namespace:
        matchers.append(f"namespace={promql_string(namespace)}")
    if labels.get("pod"):
        matchers.append(f"pod={promql_string(labels['pod'])}")
    else:
        workload = next(
            (labels[k] for k in ("deployment", "statefulset", "daemonset") if labels.get(k)),
            None,
        ) or alert_service(labels)
        if workload is None:
            return None
        pattern = promql_regex_literal(workload) + "-.+"
        matchers.append(f"pod=~{promql_string(pattern)}")
    if labels.get("container"):
        matchers.append(f"container={promql_string(labels['container'])}")
    return "{" + ", ".join(matchers) + "}"


def error_query(selector: str, line_filter: str = DEFAULT_LINE_FILTER) -> str:
    return f"{selector} |~ {promql_string(line_filter)}"


@dataclass(frozen=True)
class LogLine:
    timestamp_ns: int
    pod: str
    line: str


@dataclass(frozen=True)
class LogSummary:
    total: int
    count_is_capped: bool
    newest: tuple[LogLine, ...]
    by_pod: tuple[tuple[str, int], ...]

    def to_facts(self) -> dict[str, Any]:
        return {
            "error_lines": self.total,
            "error_lines_capped": self.count_is_capped,
            "by_pod": [{"pod": pod, "lines": n} for pod, n in self.by_pod],
            "newest": [
                {"timestamp_ns": str(line.timestamp_ns), "pod": line.pod, "line": line.line} for line in self.newest
            ],
        }

    def lines(self) -> tuple[str, ...]:
        if self.total == 0:
            return ("Loki: no error lines in the window",)
        count = f"{self.total}{'+' if self.count_is_capped else ''}"
        where = f" from {len(self.by_pod)} pods" if len(self.by_pod) > 1 else ""
        head = f"Loki: {count} error lines{where}"
        return (head, *(f"  {line.line[:160]}" for line in self.newest[:3]))


def summarize_streams(body: Any, *, limit: int, keep: int = 5) -> LogSummary:
    """Shape a query_range answer of resultType "streams": newest lines first."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or data.get("resultType") != "streams":
        raise MalformedResponse("query_range did not return streams")
    result = data.get("result")
    if not isinstance(result, list):
        raise MalformedResponse("query_range result is not a list")
    lines: list[LogLine] = []
    for stream in result:
        if not isinstance(stream, dict) or not isinstance(stream.get("values"), list):
            raise MalformedResponse("stream without values")
        labels = stream.get("stream")
        if not isinstance(labels, dict):
            labels = {}
        pod = str(labels.get("pod", labels.get("app", "")))
        for value in stream["values"]:
            if not isinstance(value, list) or len(value) < 2 or not isinstance(value[1], str):
                raise MalformedResponse("log entry is not [timestamp, line]")
            try:
                timestamp = int(value[0])
            except (TypeError, ValueError):
                raise MalformedResponse("log timestamp is not nanoseconds") from None
            lines.append(LogLine(timestamp, pod, value[1][:MAX_LINE_CHARS]))
    lines.sort(key=lambda line: line.timestamp_ns, reverse=True)
    by_pod = Counter(line.pod for line in lines if line.pod)
    return LogSummary(
        total=len(lines),
        count_is_capped=len(lines) >= limit,
        newest=tuple(lines[:keep]),
        by_pod=tuple(by_pod.most_common(5)),
    )


@dataclass(frozen=True)
class LokiSettings:
    url: str
    tenant: str | None = None  # X-Scope-OrgID
    limit: int = 200  # lines asked for
    line_filter: str = DEFAULT_LINE_FILTER


class LokiEnricher(HttpBackend[LokiSettings]):
    name = "loki"

    async def lookup(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        selector = log_selector(alert.labels)
        if selector is None:
            return Enrichment.unavailable(self.name, "the alert names no workload")
        query = error_query(selector, self.settings.line_filter)
        start, end = alert_window(alert, ctx.now, self.window)
        limit = self.settings.limit
        params = {
            "query": query,
            "start": str(int(start.timestamp() * 1e9)),
            "end": str(int(end.timestamp() * 1e9)),
            "limit": str(limit),
            "direction": "backward",
        }
        body = await self._http.get("/loki/api/v1/query_range", params)
        summary = summarize_streams(body, limit=limit)
        return Enrichment.found(self.name, {"query": query, **summary.to_facts()}, summary.lines())
