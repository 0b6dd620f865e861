"""Jaeger, Tempo and Loki enrichers against local fake servers answering real responses."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from enrichers.base import Enrichment, run_enrichers
from enrichers.telemetry.graph import GraphSources
from enrichers.telemetry.http import HttpBackend
from enrichers.telemetry.jaeger import JaegerEnricher, JaegerSettings
from enrichers.telemetry.loki import LokiEnricher, LokiSettings
from enrichers.telemetry.tempo import TempoEnricher, TempoSettings
from tests.conftest import free_port
from tests.fakes.telemetry_alerts import alert_with, context
from tests.fakes.telemetry_fixtures import (
    LOKI_MATRIX,
    LOKI_STREAMS,
    TEMPO_SEARCH,
    TEMPO_TRACE,
    fixture,
    jaeger_envelope_with_error_trace,
)
from tests.fakes.telemetry_http import Reply, Seen, serve

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
STARTS_AT = NOW - timedelta(minutes=8)
# The legacy /api/services envelope, as Jaeger's query API documents it (no real capture).
JAEGER_SERVICES = {"data": ["service-x", "service-y"], "total": 2, "limit": 0, "offset": 0}
SHORT_BUDGET = 0.3


def service_alert(service: str, **extra: str) -> Any:
    labels = {"alertname": "HighErrorRate", "service": service, "severity": "critical", **extra}
    return alert_with(labels, STARTS_AT)


def tempo_trace_with_error() -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(fixture(TEMPO_TRACE))
    ratings = body["batches"][-1]["scopeSpans"][0]["spans"][0]
    ratings["status"] = {"code": 2, "message": "upstream connect error"}
    return body


async def enrich_once(enricher: HttpBackend[Any], alert: Any) -> Enrichment:
    """One alert through a new enricher, which is closed afterwards."""
    try:
        return await enricher.enrich(alert, context(NOW))
    finally:
        await enricher.close()


# --- Jaeger ----------------------------------------------------------------------------


async def test_jaeger_reports_error_traces_and_the_deepest_error() -> None:
    routes = {
        "/api/services": Reply.json(JAEGER_SERVICES),
        "/api/traces": Reply.json(jaeger_envelope_with_error_trace()),
    }
    async with serve(routes) as jaeger:
        settings = JaegerSettings(jaeger.url, ui_url="https://jaeger.example")
        result = await enrich_once(JaegerEnricher(settings), service_alert("service-x"))
        query = jaeger.requests_to("/api/traces")[0].query

    assert result.status == "ok"
    assert result.summary == (
        "Jaeger: 1 error traces for service-x; failing: some-operation (1)",
        "Deepest error: service-x some-operation (0.005 ms)",
        "Trace: https://jaeger.example/trace/0000000000000001",
    )
    assert result.facts["deepest_error_span"]["operation"] == "some-operation"
    assert json.loads(query["tags"]) == {"error": "true"}
    assert query["service"] == "service-x"
    assert int(query["start"]) == int((STARTS_AT - timedelta(minutes=30)).timestamp() * 1e6)
    assert int(query["end"]) == int(NOW.timestamp() * 1e6)


async def test_jaeger_says_so_when_it_has_never_seen_the_service() -> None:
    routes = {"/api/services": Reply.json(fixture("jaeger/jaeger_apiv3_services_response.json"))}
    async with serve(routes) as jaeger:
        result = await enrich_once(JaegerEnricher(JaegerSettings(jaeger.url)), service_alert("checkout"))
        asked_for_traces = jaeger.requests_to("/api/traces")

    assert result.status == "ok"
    assert result.summary == ("Jaeger: no traces recorded for service checkout",)
    assert asked_for_traces == []


async def test_jaeger_without_its_service_list_is_partial() -> None:
    routes = {
        "/api/services": Reply(body={"errors": ["boom"]}, status=500),
        "/api/traces": Reply.json(jaeger_envelope_with_error_trace()),
    }
    async with serve(routes) as jaeger:
        result = await enrich_once(JaegerEnricher(JaegerSettings(jaeger.url)), service_alert("service-x"))

    assert result.status == "partial"
    assert result.facts["problems"] == ["services: HTTP 500 from /api/services"]
    assert result.facts["error_traces"] == 1


# --- Tempo -----------------------------------------------------------------------------


async def test_tempo_reports_error_traces_and_the_deepest_error() -> None:
    routes = {
        "/api/search": Reply.json(fixture(TEMPO_SEARCH)),
        "/api/traces/": Reply.json(tempo_trace_with_error()),
    }
    async with serve(routes) as tempo:
        settings = TempoSettings(tempo.url, trace_url_template="https://grafana.example/trace/{trace_id}")
        result = await enrich_once(TempoEnricher(settings), service_alert("productpage"))
        search = tempo.requests_to("/api/search")[0].query
        details = [s.path for s in tempo.seen if s.path.startswith("/api/traces/")]

    assert result.status == "ok"
    assert result.summary == (
        "Tempo: 1 error traces for productpage; failing: productpage.bookinfo.svc.cluster.local:9080/productpage (1)",
        "Deepest error: ratings.bookinfo ratings.bookinfo.svc.cluster.local:9080/*: upstream connect error (0.434 ms)",
        "Trace: https://grafana.example/trace/100cb753c787ed5657c8d88dafc176ed",
    )
    assert search["q"] == '{ resource.service.name = "productpage" && status = error }'
    assert int(search["start"]) == int((STARTS_AT - timedelta(minutes=30)).timestamp())
    assert details == ["/api/traces/100cb753c787ed5657c8d88dafc176ed"]


async def test_tempo_failing_trace_details_are_partial() -> None:
    routes = {
        "/api/search": Reply.json(fixture(TEMPO_SEARCH)),
        "/api/traces/": Reply(body={"error": "boom"}, status=500),
    }
    async with serve(routes) as tempo:
        result = await enrich_once(TempoEnricher(TempoSettings(tempo.url)), service_alert("productpage"))

    assert result.status == "partial"
    assert result.facts["error_traces"] == 1
    assert result.facts["deepest_error_span"] is None
    assert result.facts["problems"] == [
        "trace 100cb753c787ed5657c8d88dafc176ed: HTTP 500 from /api/traces/100cb753c787ed5657c8d88dafc176ed"
    ]


async def test_tempo_answering_garbage_is_unavailable_as_malformed() -> None:
    async with serve({"/api/search": Reply.json({"traces": "nope"})}) as tempo:
        enricher = TempoEnricher(TempoSettings(tempo.url))
        try:
            results = await run_enrichers([enricher], service_alert("cart"), context(NOW))
        finally:
            await enricher.close()

    assert results["tempo"].status == "unavailable"
    assert results["tempo"].reason == "malformed response: /api/search has no traces list"


# --- Loki ------------------------------------------------------------------------------


async def test_loki_reports_the_workloads_error_lines() -> None:
    routes = {"/loki/api/v1/query_range": Reply.json(fixture(LOKI_STREAMS))}
    labels = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "checkout-1"}
    async with serve(routes) as loki:
        result = await enrich_once(LokiEnricher(LokiSettings(loki.url, tenant="team-a")), alert_with(labels, STARTS_AT))
        seen = loki.requests_to("/loki/api/v1/query_range")[0]

    assert result.status == "ok"
    assert result.summary[0] == "Loki: 50 error lines"
    assert len(result.summary) == 4  # the count, then the three newest lines
    assert seen.query["query"] == (
        '{namespace="shop", pod="checkout-1"} |~ "(?i)(error|exception|fatal|panic|traceback)"'
    )
    assert seen.query["direction"] == "backward"
    assert int(seen.query["end"]) == int(NOW.timestamp() * 1e9)
    assert seen.headers["X-Scope-OrgID"] == "team-a"


async def test_loki_answering_a_metric_matrix_is_malformed() -> None:
    routes = {"/loki/api/v1/query_range": Reply.json(fixture(LOKI_MATRIX))}
    async with serve(routes) as loki:
        result = await enrich_once(LokiEnricher(LokiSettings(loki.url)), service_alert("checkout"))

    assert result.status == "unavailable"
    assert result.reason == "malformed response: query_range did not return streams"


# --- every backend alike: how each failure is reported ----------------------------------


@dataclass(frozen=True)
class Backend:
    name: str
    make: Callable[[str, float], JaegerEnricher | TempoEnricher | LokiEnricher]  # (url, timeout)
    healthy: dict[str, Reply]  # routes answered well before the one under test
    queried: str  # where the alert's query goes
    alert_service: str
    no_subject_reason: str  # why an alert naming nothing is not sent


BACKENDS = [
    Backend(
        "jaeger",
        lambda url, timeout: JaegerEnricher(JaegerSettings(url), timeout_seconds=timeout),
        {"/api/services": Reply.json(JAEGER_SERVICES)},
        "/api/traces",
        "service-x",
        "the alert names no service",
    ),
    Backend(
        "tempo",
        lambda url, timeout: TempoEnricher(TempoSettings(url), timeout_seconds=timeout),
        {},
        "/api/search",
        "cart",
        "the alert names no service",
    ),
    Backend(
        "loki",
        lambda url, timeout: LokiEnricher(LokiSettings(url), timeout_seconds=timeout),
        {},
        "/loki/api/v1/query_range",
        "checkout",
        "the alert names no workload",
    ),
]
each_backend = pytest.mark.parametrize("backend", BACKENDS, ids=[b.name for b in BACKENDS])


async def enriched(
    backend: Backend,
    answer: Reply,
    *,
    timeout_seconds: float = 4.0,
    budget_seconds: float = 5.0,
    alert: Any = None,
) -> tuple[Enrichment, list[Seen]]:
    """One alert through the backend's enricher, its queried route answering `answer`."""
    async with serve({**backend.healthy, backend.queried: answer}) as server:
        enricher = backend.make(server.url, timeout_seconds)
        try:
            sent = alert if alert is not None else service_alert(backend.alert_service)
            results = await run_enrichers([enricher], sent, context(NOW, budget_seconds))
        finally:
            await enricher.close()
    return results[backend.name], server.seen


@each_backend
async def test_a_backend_answering_garbage_is_unavailable_as_malformed(backend: Backend) -> None:
    result, _ = await enriched(backend, Reply.garbage())
    expected = ("unavailable", f"malformed response: {backend.queried} did not return JSON")
    assert (result.status, result.reason) == expected


@each_backend
async def test_a_backend_server_error_is_unavailable_with_the_status(backend: Backend) -> None:
    result, _ = await enriched(backend, Reply(body={"error": "too many"}, status=429))
    assert (result.status, result.reason) == ("unavailable", f"HTTP 429 from {backend.queried}")


@each_backend
async def test_a_hanging_backend_is_cut_off_by_the_budget(backend: Backend) -> None:
    result, _ = await enriched(backend, Reply.hanging(), timeout_seconds=30, budget_seconds=SHORT_BUDGET)
    assert (result.status, result.reason) == ("unavailable", f"timed out after {SHORT_BUDGET:g}s")


@each_backend
async def test_a_hanging_backend_hits_the_enrichers_own_timeout_first(backend: Backend) -> None:
    result, _ = await enriched(backend, Reply.hanging(), timeout_seconds=0.2)
    assert (result.status, result.reason) == ("unavailable", f"timed out after 0.2s on {backend.queried}")


@each_backend
async def test_an_alert_naming_nothing_is_not_sent_to_the_backend(backend: Backend) -> None:
    alert = alert_with({"alertname": "KubeNodeNotReady", "node": "worker-1"}, STARTS_AT)
    result, seen = await enriched(backend, Reply.json({}), alert=alert)
    assert (result.status, result.reason, seen) == ("unavailable", backend.no_subject_reason, [])


# --- all sources together --------------------------------------------------------------


async def test_one_hanging_and_one_dead_source_do_not_hold_back_the_healthy_one() -> None:
    routes = {"/loki/api/v1/query_range": Reply.json(fixture(LOKI_STREAMS))}
    async with serve(routes) as loki, serve({"/api/search": Reply.hanging()}) as tempo:
        enrichers: list[LokiEnricher | TempoEnricher | JaegerEnricher] = [
            LokiEnricher(LokiSettings(loki.url)),
            TempoEnricher(TempoSettings(tempo.url), timeout_seconds=30),
            JaegerEnricher(JaegerSettings(f"http://127.0.0.1:{free_port()}")),
        ]
        try:
            results = await run_enrichers(enrichers, service_alert("checkout"), context(NOW, SHORT_BUDGET))
        finally:
            for enricher in enrichers:
                await enricher.close()

    assert results["loki"].status == "ok"
    assert results["tempo"].reason == f"timed out after {SHORT_BUDGET:g}s"
    assert results["jaeger"].status == "unavailable"
    assert (results["jaeger"].reason or "").startswith("cannot connect")


# --- Jaeger dependencies for the graph -------------------------------------------------


async def test_jaeger_dependencies_feed_the_graph() -> None:
    body = {"data": [{"parent": "frontend", "child": "cart", "callCount": 7200}]}
    async with serve({"/api/dependencies": Reply.json(body)}) as jaeger:
        sources = GraphSources(jaeger_url=jaeger.url, jaeger_lookback=timedelta(hours=2))
        try:
            fetched = await sources.fetch_edges(NOW)
        finally:
            await sources.close()
        query = jaeger.requests_to("/api/dependencies")[0].query

    assert [(e.caller, e.callee, e.source, e.request_rate) for e in fetched.edges] == [
        ("frontend", "cart", "jaeger", 1.0)
    ]
    assert fetched.sources == ("jaeger",)
    assert (query["endTs"], query["lookback"]) == (str(int(NOW.timestamp() * 1000)), "7200000")


async def test_jaeger_dependencies_garbage_is_a_problem() -> None:
    async with serve({"/api/dependencies": Reply.garbage()}) as jaeger:
        sources = GraphSources(jaeger_url=jaeger.url)
        try:
            fetched = await sources.fetch_edges(NOW)
        finally:
            await sources.close()

    assert fetched.edges == ()
    assert fetched.problems == ("jaeger: malformed response: /api/dependencies did not return JSON",)
