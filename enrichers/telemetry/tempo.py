"""Tempo enricher: error traces of the alert's service via TraceQL search.

GET /api/search?q={ resource.service.name = "x" && status = error }&start=&end= (seconds),
then GET /api/traces/<id> for the first few, to find the deepest erroring span.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import string
from dataclasses import dataclass
from typing import Any

from enrichers.base import AlertInput, EnrichContext, Enrichment
from enrichers.telemetry.http import HttpBackend, MalformedResponse, SourceUnavailable, alert_window
from enrichers.telemetry.naming import alert_service
from enrichers.telemetry.traces import (
    MAX_LINKS,
    SpanInfo,
    TraceSummary,
    deepest_error,
    string_attributes,
    top_operations,
)

_HEX = frozenset(string.hexdigits)
_ERROR_CODES = (2, "2", "STATUS_CODE_ERROR", "ERROR")


def traceql_errors(service: str) -> str:
    quoted = service.replace("\\", "\\\\").replace('"', '\\"')
    return f'{{ resource.service.name = "{quoted}" && status = error }}'


def hex_id(raw: object) -> str:
    """Tempo's v1 trace JSON has base64 ids, search answers hex ones: compare them as hex."""
    if not isinstance(raw, str) or not raw:
        return ""
    if len(raw) in (12, 24) and not set(raw) <= _HEX:
        try:
            return base64.b64decode(raw, validate=True).hex()
        except (binascii.Error, ValueError):
            return raw
    return raw.lower()


def search_traces(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("traces", []), list):
        raise MalformedResponse("/api/search has no traces list")
    traces = body.get("traces", [])
    if not all(isinstance(t, dict) and isinstance(t.get("traceID"), str) for t in traces):
        raise MalformedResponse("/api/search trace without a traceID")
    return list(traces)


def matched_spans(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """The spans the TraceQL query matched (spanSets, or the older single spanSet)."""
    sets = trace.get("spanSets") or ([trace["spanSet"]] if trace.get("spanSet") else [])
    spans: dict[str, dict[str, Any]] = {}
    for span_set in sets:
        for span in span_set.get("spans", []) if isinstance(span_set, dict) else []:
            if isinstance(span, dict):
                spans.setdefault(hex_id(span.get("spanID")), span)
    return list(spans.values())


def failing_operations(traces: list[dict[str, Any]]) -> list[str]:
    """Matched span names; Tempo before 2.2 sends none, then the trace's root name."""
    names: list[str] = []
    for trace in traces:
        spans = [s.get("name") for s in matched_spans(trace) if isinstance(s.get("name"), str)]
        if spans:
            names.extend(str(name) for name in spans)
        elif isinstance(trace.get("rootTraceName"), str):
            names.append(trace["rootTraceName"])
    return names


def _resource_spans(body: Any) -> list[Any]:
    if isinstance(body, dict) and isinstance(body.get("trace"), dict):  # /api/v2/traces
        body = body["trace"]
    if isinstance(body, dict):
        for key in ("batches", "resourceSpans"):
            if isinstance(body.get(key), list):
                return list(body[key])
    raise MalformedResponse("trace has neither batches nor resourceSpans")


def _span_error(span: dict[str, Any]) -> tuple[bool, str | None]:
    status = span.get("status")
    if not isinstance(status, dict):
        status = {}
    is_error = status.get("code") in _ERROR_CODES
    message = status.get("message") if isinstance(status.get("message"), str) else None
    for event in span.get("events") or []:
        if isinstance(event, dict) and event.get("name") == "exception":
            attributes = string_attributes(event.get("attributes"))
            message = message or attributes.get("exception.message")
    return is_error, message or None


def tempo_trace_spans(body: Any, matched_ids: frozenset[str] = frozenset()) -> list[SpanInfo]:
    """Spans of GET /api/traces/<id>; a span errs by its status or by having been matched."""
    spans = []
    for resource_spans in _resource_spans(body):
        if not isinstance(resource_spans, dict):
            raise MalformedResponse("batch is not an object")
        resource = resource_spans.get("resource")
        if not isinstance(resource, dict):
            resource = {}
        service = string_attributes(resource.get("attributes")).get("service.name", "")
        scopes = resource_spans.get("scopeSpans") or resource_spans.get("instrumentationLibrarySpans", [])
        for scope in scopes if isinstance(scopes, list) else []:
            for span in scope.get("spans", []) if isinstance(scope, dict) else []:
                if not isinstance(span, dict):
                    raise MalformedResponse("span is not an object")
                span_id = hex_id(span.get("spanId"))
                is_error, message = _span_error(span)
                spans.append(
                    SpanInfo(
                        trace_id=hex_id(span.get("traceId")),
                        span_id=span_id,
                        parent_id=hex_id(span.get("parentSpanId")) or None,
                        service=service,
                        operation=str(span.get("name", "")),
                        duration_ms=_duration_ms(span),
                        is_error=is_error or span_id in matched_ids,
                        error_message=message,
                    )
                )
    return spans


def _duration_ms(span: dict[str, Any]) -> float:
    try:
        return (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e6
    except (KeyError, TypeError, ValueError):
        return 0.0


@dataclass(frozen=True)
class TempoSettings:
    url: str
    # e.g. "https://grafana/explore?...{trace_id}"; default: Tempo's own trace JSON.
    trace_url_template: str | None = None
    tenant: str | None = None  # X-Scope-OrgID
    limit: int = 20  # error traces asked for
    detail_traces: int = 3  # fetched whole, for the deepest error


class TempoEnricher(HttpBackend[TempoSettings]):
    name = "tempo"

    def trace_url(self, trace_id: str) -> str:
        template = self.settings.trace_url_template
        if not template:  # Tempo's own trace JSON
            return f"{self.settings.url.rstrip('/')}/api/traces/{trace_id}"
        return template.replace("{trace_id}", trace_id)

    async def lookup(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        service = alert_service(alert.labels)
        if service is None:
            return Enrichment.unavailable(self.name, "the alert names no service")
        start, end = alert_window(alert, ctx.now, self.window)
        limit = self.settings.limit
        params = {
            "q": traceql_errors(service),
            "start": str(int(start.timestamp())),
            "end": str(int(end.timestamp()) + 1),
            "limit": str(limit),
        }
        traces = search_traces(await self._http.get("/api/search", params))
        spans, problems = await self._details(traces[: self.settings.detail_traces])
        summary = TraceSummary(
            backend="Tempo",
            service=service,
            error_trace_count=len(traces),
            count_is_capped=len(traces) >= limit,
            top_operations=top_operations(failing_operations(traces)),
            deepest=deepest_error(spans),
            links=tuple(self.trace_url(t["traceID"]) for t in traces[:MAX_LINKS]),
        )
        return Enrichment.found(self.name, summary.to_facts(), summary.lines(), problems)

    async def _details(self, traces: list[dict[str, Any]]) -> tuple[list[SpanInfo], list[str]]:
        answers = await asyncio.gather(
            *(self._http.get(f"/api/traces/{t['traceID']}") for t in traces),
            return_exceptions=True,
        )
        spans: list[SpanInfo] = []
        problems: list[str] = []
        for trace, answer in zip(traces, answers, strict=True):
            try:
                if isinstance(answer, BaseException):
                    raise answer
                matched = frozenset(hex_id(s.get("spanID")) for s in matched_spans(trace))
                spans.extend(tempo_trace_spans(answer, matched))
            except SourceUnavailable as exc:
                problems.append(f"trace {trace['traceID']}: {exc.reason}")
        return spans, problems
