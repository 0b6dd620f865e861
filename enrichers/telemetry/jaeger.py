"""Jaeger enricher: error traces of the alert's service in the alert window.

Query API: GET /api/services to learn the service's name in Jaeger, then
GET /api/traces?service=&start=&end=&tags={"error":"true"}&limit= (microseconds).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from enrichers.base import AlertInput, EnrichContext, Enrichment
from enrichers.telemetry.http import (
    HttpBackend,
    MalformedResponse,
    SourceUnavailable,
    alert_window,
)
from enrichers.telemetry.naming import alert_service
from enrichers.telemetry.traces import MAX_LINKS, SpanInfo, TraceSummary, deepest_error, resolve_service, top_operations

_MESSAGE_KEYS = ("otel.status_description", "error.message", "exception.message", "message")
SERVICES_TTL_SECONDS = 60.0


def jaeger_services(body: Any) -> tuple[str, ...]:
    """Services from /api/services (`{"data": [...]}`) or api/v3 (`{"services": [...]}`)."""
    if isinstance(body, dict):
        names = body.get("data", body.get("services"))
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return tuple(names)
    raise MalformedResponse("/api/services has no list of service names")


def _tag_map(items: object) -> Mapping[str, object]:
    if not isinstance(items, list):
        return {}
    return {
        item["key"]: item.get("value") for item in items if isinstance(item, dict) and isinstance(item.get("key"), str)
    }


def _is_error(tags: Mapping[str, object]) -> bool:
    error = tags.get("error")
    return error is True or error == "true" or tags.get("otel.status_code") == "ERROR"


def _error_message(tags: Mapping[str, object], logs: object) -> str | None:
    for key in _MESSAGE_KEYS:
        if isinstance(tags.get(key), str) and tags[key]:
            return str(tags[key])
    for log in logs if isinstance(logs, list) else []:
        fields = _tag_map(log.get("fields") if isinstance(log, dict) else None)
        for key in (*_MESSAGE_KEYS, "error.object", "error.kind"):
            if isinstance(fields.get(key), str) and fields[key]:
                return str(fields[key])
    return None


def _parent(span: Mapping[str, Any]) -> str | None:
    for reference in span.get("references") or []:
        if (
            isinstance(reference, dict)
            and reference.get("refType") == "CHILD_OF"
            and reference.get("traceID") == span.get("traceID")
        ):
            parent = reference.get("spanID")
            return parent if isinstance(parent, str) else None
    return None


def jaeger_spans(trace: Any) -> list[SpanInfo]:
    """The spans of one trace object (an element of /api/traces `data`)."""
    if not isinstance(trace, dict) or not isinstance(trace.get("spans"), list):
        raise MalformedResponse("trace without a spans list")
    processes = trace.get("processes") if isinstance(trace.get("processes"), dict) else {}
    spans = []
    for span in trace["spans"]:
        if not isinstance(span, dict) or not isinstance(span.get("spanID"), str):
            raise MalformedResponse("span without a spanID")
        process = processes.get(span.get("processID"), {}) if processes else {}
        service = process.get("serviceName", "") if isinstance(process, dict) else ""
        tags = _tag_map(span.get("tags"))
        duration = span.get("duration", 0)
        spans.append(
            SpanInfo(
                trace_id=str(span.get("traceID") or trace.get("traceID", "")),
                span_id=span["spanID"],
                parent_id=_parent(span),
                service=str(service),
                operation=str(span.get("operationName", "")),
                duration_ms=duration / 1000 if isinstance(duration, int | float) else 0.0,
                is_error=_is_error(tags),
                error_message=_error_message(tags, span.get("logs")),
            )
        )
    return spans


def summarize_jaeger_traces(body: Any, service: str, *, limit: int, ui_url: str) -> TraceSummary:
    """Shape a /api/traces answer (already filtered to error traces) for the notification."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedResponse("/api/traces has no data list")
    traces = body["data"]
    spans = [span for trace in traces for span in jaeger_spans(trace)]
    errors = [span for span in spans if span.is_error]
    # Prefer the alert's own service's failing operations; fall back to every service's.
    own = [s.operation for s in errors if s.service == service]
    operations = own or [f"{s.service} {s.operation}" for s in errors]
    trace_ids = list(dict.fromkeys(s.trace_id for s in spans if s.trace_id))
    return TraceSummary(
        backend="Jaeger",
        service=service,
        error_trace_count=len(traces),
        count_is_capped=len(traces) >= limit,
        top_operations=top_operations(operations),
        deepest=deepest_error(spans),
        links=tuple(f"{ui_url}/trace/{tid}" for tid in trace_ids[:MAX_LINKS]),
    )


@dataclass(frozen=True)
class JaegerSettings:
    url: str
    ui_url: str | None = None  # for trace links; default: url
    limit: int = 20  # error traces asked for


class JaegerEnricher(HttpBackend[JaegerSettings]):
    name = "jaeger"

    # The service list, when it was asked for (see _known_services); per instance once set.
    _services: tuple[float, asyncio.Future[tuple[str, ...]]] | None = None

    @property
    def ui_url(self) -> str:
        return (self.settings.ui_url or self.settings.url).rstrip("/")

    async def _known_services(self) -> tuple[str, ...]:
        """The service list changes slowly: one request per SERVICES_TTL_SECONDS, shared by
        every alert meanwhile, so an alert costs one round trip to Jaeger, not two."""
        now = time.monotonic()
        cached = self._services
        stale = cached is None or now - cached[0] > SERVICES_TTL_SECONDS
        failed = cached is not None and cached[1].done() and (cached[1].cancelled() or cached[1].exception())
        if cached is None or stale or failed:

            async def fetch() -> tuple[str, ...]:
                return jaeger_services(await self._http.get("/api/services"))

            cached = (now, asyncio.ensure_future(fetch()))
            self._services = cached
        return await asyncio.shield(cached[1])

    async def lookup(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        wanted = alert_service(alert.labels)
        if wanted is None:
            return Enrichment.unavailable(self.name, "the alert names no service")
        problems: list[str] = []
        service = wanted
        try:
            known = await self._known_services()
            resolved = resolve_service(wanted, known)
            if resolved is None:
                facts = {"service": wanted, "known_services": len(known)}
                return Enrichment.found(self.name, facts, (f"Jaeger: no traces recorded for service {wanted}",))
            service = resolved
        except SourceUnavailable as exc:
            # The traces query may still work with the alert's own name.
            problems.append(f"services: {exc.reason}")
        start, end = alert_window(alert, ctx.now, self.window)
        limit = self.settings.limit
        params = {
            "service": service,
            "start": str(int(start.timestamp() * 1_000_000)),
            "end": str(int(end.timestamp() * 1_000_000)),
            "tags": json.dumps({"error": "true"}),
            "limit": str(limit),
        }
        body = await self._http.get("/api/traces", params)
        summary = summarize_jaeger_traces(body, service, limit=limit, ui_url=self.ui_url)
        return Enrichment.found(self.name, summary.to_facts(), summary.lines(), problems)
