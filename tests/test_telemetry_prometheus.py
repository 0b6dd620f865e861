"""The Prometheus enricher, graph edges and signal table against a real Prometheus."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import numpy as np
import pytest

from enrichers import eager
from enrichers.base import AlertInput, Enrichment, enrich_batch, run_enrichers
from enrichers.telemetry.factory import TelemetrySettings, build_telemetry
from enrichers.telemetry.graph import GraphSources
from enrichers.telemetry.promclient import PromClient, Series
from enrichers.telemetry.prometheus import SHARED_KEPT, PrometheusEnricher, RecentAnswers
from enrichers.telemetry.promql import SPARK_BARS
from enrichers.telemetry.signals import DEFAULT_SIGNALS, SignalQuery, fetch_signal_table
from tests.conftest import free_port as unused_port
from tests.fakes.telemetry_alerts import alert_with, at, context
from tests.fakes.telemetry_http import Reply, serve
from tests.fakes.telemetry_prometheus import (
    CHECKOUT_POD,
    ERROR_RATIO_EXPR,
    FRONTEND_POD,
    MEMORY_LIMIT,
    NAMESPACE,
    PAYMENTS_POD,
    PrometheusServer,
    prometheus_fixture,  # noqa: F401  (registers the session fixture `prometheus`)
)

CRASHLOOP_LABELS = {
    "alertname": "KubePodCrashLooping",
    "namespace": NAMESPACE,
    "pod": CHECKOUT_POD,
    "container": "app",
    "job": "kube-state-metrics",
    "service": "kube-state-metrics",
    "severity": "warning",
}
ERROR_LABELS = {
    "alertname": "HighErrorRate",
    "namespace": NAMESPACE,
    "service": "checkout",
    "severity": "critical",
}


@pytest.fixture
async def enricher(prometheus: PrometheusServer) -> AsyncIterator[PrometheusEnricher]:
    # Each test counts its own queries: no answers shared across groups.
    enricher = PrometheusEnricher(prometheus.url, timeout_seconds=5.0, share_seconds=0)
    yield enricher
    await enricher.close()


async def test_alert_expression_shows_the_spike_against_its_baseline(
    prometheus: PrometheusServer, enricher: PrometheusEnricher
) -> None:
    alert = alert_with(ERROR_LABELS, at(prometheus.story.alert_starts_at), ERROR_RATIO_EXPR)

    result = await enricher.enrich(alert, context())

    expression = result.facts["expression"]
    assert result.status == "ok"
    assert not expression["expr"].endswith("0.05")  # threshold stripped to see the baseline
    assert 0.20 < expression["current"] < 0.26
    assert 0.005 < expression["baseline"] < 0.015
    assert expression["change_ratio"] > 15
    assert set(expression["sparkline"]) <= set(SPARK_BARS)
    assert expression["sparkline"].endswith("█")
    assert result.summary[0].startswith("Alert expression: 0.23")


async def test_golden_signals_show_memory_near_limit_throttling_and_restarts(
    prometheus: PrometheusServer, enricher: PrometheusEnricher
) -> None:
    alert = alert_with(CRASHLOOP_LABELS, at(prometheus.story.alert_starts_at))

    result = await enricher.enrich(alert, context())

    golden = result.facts["golden_signals"]
    assert result.status == "ok"
    assert "expression" not in result.facts  # the sample's generatorURL has no g0.expr
    assert 0.9 < golden["memory_of_limit"] < 1.0
    assert golden["memory_limit_bytes"] == MEMORY_LIMIT
    assert pytest.approx(golden["cpu_cores"], rel=0.05) == 0.8
    assert pytest.approx(golden["cpu_throttled_ratio"], rel=0.05) == 0.4
    assert round(golden["restarts"]) == 2
    assert result.summary[0].startswith("Restarts: 2")
    assert any(line.startswith("Memory 500 MiB of 512 MiB limit") for line in result.summary)


async def test_request_signals_come_from_servicegraph_for_the_alerts_service(
    prometheus: PrometheusServer, enricher: PrometheusEnricher
) -> None:
    labels = {"alertname": "PaymentsErrors", "service": "payments", "severity": "critical"}
    alert = alert_with(labels, at(prometheus.story.alert_starts_at))

    result = await enricher.enrich(alert, context())

    golden = result.facts["golden_signals"]
    assert pytest.approx(golden["request_rate"], rel=0.05) == 5.0
    assert pytest.approx(golden["error_ratio"], rel=0.05) == 0.4
    assert golden["latency_p90_seconds"] > 0.5
    assert any(line.startswith("Requests 5") for line in result.summary)


async def test_an_invalid_expression_leaves_the_golden_signals_as_partial(
    prometheus: PrometheusServer, enricher: PrometheusEnricher
) -> None:
    alert = alert_with(CRASHLOOP_LABELS, at(prometheus.story.alert_starts_at), "sum(rate(x[5m]")

    result = await enricher.enrich(alert, context())

    assert result.status == "partial"
    assert result.facts["problems"][0].startswith("expression: HTTP 400 from query_range")
    assert result.facts["golden_signals"]["memory_limit_bytes"] == MEMORY_LIMIT


async def test_unreachable_prometheus_is_unavailable_with_a_reason() -> None:
    enricher = PrometheusEnricher(f"http://127.0.0.1:{unused_port()}", timeout_seconds=2.0)
    alert = alert_with(CRASHLOOP_LABELS, datetime.now(UTC), ERROR_RATIO_EXPR)
    try:
        results = await run_enrichers([enricher], alert, context(budget_seconds=3.0))
    finally:
        await enricher.close()

    assert results["prometheus"].status == "unavailable"
    assert results["prometheus"].reason == "cannot connect to Prometheus"


async def test_an_alert_with_nothing_to_query_is_unavailable_with_a_reason(
    enricher: PrometheusEnricher,
) -> None:
    alert = alert_with({"alertname": "KubeNodeNotReady", "node": "worker-1"}, datetime.now(UTC))

    result = await enricher.enrich(alert, context())

    assert result.status == "unavailable"
    assert result.reason == ("the alert has no expression in its generatorURL and names no workload")


async def test_graph_edges_from_every_family_present(prometheus: PrometheusServer) -> None:
    client = PromClient(prometheus.url, timeout_seconds=5.0)
    try:
        fetched = await GraphSources(prometheus=client).fetch_edges()
    finally:
        await client.close()

    pairs = {(e.source, e.caller, e.callee) for e in fetched.edges}
    assert {
        ("servicegraph", "checkout", "payments"),
        ("servicegraph", "frontend", "checkout"),
        ("istio", "frontend", "cart"),
        ("linkerd", "cart", "redis"),
    } == pairs  # the servicegraph's virtual "user" client is not a service
    assert fetched.sources == ("servicegraph", "istio", "linkerd")
    assert fetched.problems == ()
    payments = next(e for e in fetched.edges if e.callee == "payments")
    assert pytest.approx(payments.request_rate or 0, rel=0.05) == 5.0
    assert pytest.approx(payments.error_rate or 0, rel=0.05) == 2.0
    istio = next(e for e in fetched.edges if e.source == "istio")
    assert pytest.approx(istio.request_rate or 0, rel=0.05) == 4.5  # destination reporter only


async def test_graph_edges_from_an_unreachable_prometheus_are_a_problem_not_an_error() -> None:
    client = PromClient(f"http://127.0.0.1:{unused_port()}", timeout_seconds=2.0)
    try:
        fetched = await GraphSources(prometheus=client).fetch_edges()
    finally:
        await client.close()

    assert fetched.edges == ()
    assert fetched.problems == ("prometheus: cannot connect to Prometheus",)


async def test_default_signals_build_the_case_table(prometheus: PrometheusServer) -> None:
    story = prometheus.story
    client = PromClient(prometheus.url, timeout_seconds=5.0)
    try:
        fetched = await fetch_signal_table(
            client, DEFAULT_SIGNALS, start=at(story.start + 300), end=at(story.now), step_seconds=30
        )
    finally:
        await client.close()

    table = fetched.table
    assert fetched.problems == ()
    assert {
        "checkout_cpu",
        "checkout_mem",
        "checkout_restarts",
        "frontend_cpu",
        "payments_cpu",
        "payments_latency",
        "payments_error",
        "payments_workload",
        "checkout_latency",
    } <= set(table.columns)
    assert bool(np.all(np.diff(table.times) == 30))
    assert (len(table.times), len(table.columns)) == table.values.shape
    before = table.times < story.spike_at - 150
    after = table.times > story.spike_at + 150
    latency = table.values[:, table.columns.index("payments_latency")]
    assert np.nanmedian(latency[after]) > 2 * np.nanmedian(latency[before])
    memory = table.values[:, table.columns.index("checkout_mem")]
    assert memory[-1] < MEMORY_LIMIT  # the pod cgroup series is not added to the container


async def test_a_failing_signal_query_is_reported_and_the_others_kept(
    prometheus: PrometheusServer,
) -> None:
    story = prometheus.story
    signals: list[SignalQuery | tuple[str, str]] = [
        ("cpu", DEFAULT_SIGNALS[0].query),
        SignalQuery("broken", "sum("),
    ]
    client = PromClient(prometheus.url, timeout_seconds=5.0)
    try:
        fetched = await fetch_signal_table(
            client, signals, start=at(story.now - 600), end=at(story.now), step_seconds=60
        )
    finally:
        await client.close()

    assert fetched.table.columns == ("checkout_cpu", "frontend_cpu", "payments_cpu")
    assert len(fetched.problems) == 1
    assert fetched.problems[0].startswith("broken: HTTP 400")
    assert not math.isnan(fetched.table.values[-1, 0])


async def _instant_queries_served(prometheus: PrometheusServer) -> float:
    """Prometheus's own count of /api/v1/query requests, from its /metrics, once it holds
    still: Prometheus counts a request after it has answered it."""
    count = await _instant_queries_counted(prometheus)
    while True:
        await asyncio.sleep(0.05)
        again = await _instant_queries_counted(prometheus)
        if again == count:
            return count
        count = again


async def _instant_queries_counted(prometheus: PrometheusServer) -> float:
    async with aiohttp.ClientSession() as session, session.get(f"{prometheus.url}/metrics") as r:
        text = await r.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query"' in line
    )


async def test_alerts_of_one_group_share_their_queries(
    prometheus: PrometheusServer, enricher: PrometheusEnricher
) -> None:
    first = alert_with(CRASHLOOP_LABELS, at(prometheus.story.alert_starts_at))
    second = alert_with({**CRASHLOOP_LABELS, "reason": "CrashLoopBackOff"}, first.starts_at)
    alone, shared = context(), context()

    before = await _instant_queries_served(prometheus)
    await enricher.enrich(first, alone)
    one_alert = await _instant_queries_served(prometheus) - before
    await asyncio.gather(enricher.enrich(first, shared), enricher.enrich(second, shared))
    two_alerts = await _instant_queries_served(prometheus) - before - one_alert

    assert one_alert > 0
    assert two_alerts == one_alert


@pytest.mark.parametrize("runner", ["each alert", "batch with prepare"])
async def test_a_groups_pods_are_asked_together_and_each_gets_its_own_values(
    prometheus: PrometheusServer, enricher: PrometheusEnricher, runner: str
) -> None:
    starts = at(prometheus.story.alert_starts_at)
    alerts = [
        alert_with({**CRASHLOOP_LABELS, "pod": pod}, starts) for pod in (CHECKOUT_POD, FRONTEND_POD, PAYMENTS_POD)
    ]
    now = datetime.now(UTC)  # one evaluation time: `increase` over a window moves with it
    each_alone = [(await enricher.enrich(alert, context(now))).facts["golden_signals"] for alert in alerts]
    batch = context(now)
    batch.alerts = tuple(alerts)

    before = await _instant_queries_served(prometheus)
    if runner == "each alert":
        together = await asyncio.gather(*(enricher.enrich(alert, batch) for alert in alerts))
    else:
        together = [found["prometheus"] for found in await enrich_batch([enricher], alerts, batch)]
    asked = await _instant_queries_served(prometheus) - before

    assert [r.facts["golden_signals"] for r in together] == each_alone
    assert each_alone[0]["memory_limit_bytes"] == MEMORY_LIMIT
    assert "memory_limit_bytes" not in each_alone[1]  # frontend has no limit series
    assert pytest.approx(each_alone[2]["memory_bytes"]) == 300 * 1024 * 1024
    # One request for every resource signal of the three pods; one for the request
    # signals of each pod's service (each pod is a different one).
    assert asked == 1 + 3


async def test_after_prepare_every_alert_of_the_batch_is_enriched_without_waiting(
    prometheus: PrometheusServer, enricher: PrometheusEnricher
) -> None:
    starts = at(prometheus.story.alert_starts_at)
    alerts = [
        alert_with({**CRASHLOOP_LABELS, "pod": pod}, starts) for pod in (CHECKOUT_POD, FRONTEND_POD, PAYMENTS_POD)
    ]
    batch = context()
    batch.alerts = tuple(alerts)
    await enricher.prepare(batch)
    found: list[Enrichment] = []

    async def enrich(alert: AlertInput) -> None:
        found.append(await enricher.enrich(alert, batch))

    assert eager.start(enrich(alert) for alert in alerts) == []  # no step had to wait
    assert [result.status for result in found] == ["ok"] * 3
    assert all("memory_bytes" in result.facts["golden_signals"] for result in found)


async def test_one_alert_asks_for_its_golden_signals_in_one_request_per_kind(
    prometheus: PrometheusServer, enricher: PrometheusEnricher
) -> None:
    alert = alert_with(CRASHLOOP_LABELS, at(prometheus.story.alert_starts_at))

    before = await _instant_queries_served(prometheus)
    result = await enricher.enrich(alert, context())
    asked = await _instant_queries_served(prometheus) - before

    assert {"cpu_cores", "memory_bytes", "restarts", "request_rate"} <= set(result.facts["golden_signals"])
    assert asked == 2  # the pod's resource signals, its service's request signals


async def test_groups_of_a_storm_share_a_recent_answer_and_a_later_group_asks_again(
    prometheus: PrometheusServer,
) -> None:
    enricher = PrometheusEnricher(prometheus.url, timeout_seconds=5.0, share_seconds=5.0)
    starts = at(prometheus.story.alert_starts_at)
    labels = {"alertname": "PaymentsErrors", "service": "payments", "severity": "critical"}
    now = datetime.now(UTC)
    try:
        before = await _instant_queries_served(prometheus)
        first = await enricher.enrich(alert_with(labels, starts), context(now))
        one_group = await _instant_queries_served(prometheus) - before
        within = [
            await enricher.enrich(alert_with(labels, starts), context(now + timedelta(seconds=s))) for s in (1, 4)
        ]
        shared = await _instant_queries_served(prometheus) - before - one_group
        await enricher.enrich(alert_with(labels, starts), context(now + timedelta(seconds=6)))
        later = await _instant_queries_served(prometheus) - before - one_group - shared
    finally:
        await enricher.close()

    assert (one_group, shared, later) == (1, 0, 1)
    assert [r.facts for r in within] == [first.facts, first.facts]


async def test_built_telemetry_shares_one_prometheus_client(prometheus: PrometheusServer) -> None:
    story = prometheus.story
    telemetry = build_telemetry(TelemetrySettings(prometheus_url=prometheus.url, budget_seconds=5.0))
    try:
        results = await run_enrichers(
            telemetry.enrichers,
            alert_with(ERROR_LABELS, at(story.alert_starts_at), ERROR_RATIO_EXPR),
            context(),
        )
        edges = await telemetry.edges()
        table = await telemetry.signal_table(at(story.now - 900), at(story.now))
    finally:
        await telemetry.close()

    assert list(results) == ["prometheus"]
    assert results["prometheus"].summary[0].startswith("Alert expression: 0.23")
    assert len(edges.edges) == 4
    assert table is not None
    assert "payments_latency" in table.table.columns


# --- a Prometheus that misbehaves (local fake server) ----------------------------------


async def _enrich_against(routes: dict[str, Reply], budget: float = 5.0) -> Enrichment:
    alert = alert_with(CRASHLOOP_LABELS, datetime.now(UTC), ERROR_RATIO_EXPR)
    async with serve(routes) as fake:
        enricher = PrometheusEnricher(fake.url, timeout_seconds=0.5)
        try:
            results = await run_enrichers([enricher], alert, context(budget_seconds=budget))
        finally:
            await enricher.close()
    return results["prometheus"]


async def test_prometheus_answering_garbage_is_malformed() -> None:
    routes = {"/api/v1/query_range": Reply.garbage(), "/api/v1/query": Reply.garbage()}

    result = await _enrich_against(routes)

    assert result.status == "unavailable"
    assert result.reason == ("expression: malformed response: query_range did not return Prometheus JSON")


async def test_prometheus_answering_a_result_that_is_not_a_list_is_malformed() -> None:
    body = {"status": "success", "data": {"resultType": "matrix", "result": "nope"}}
    routes = {"/api/v1/query_range": Reply.json(body), "/api/v1/query": Reply.json(body)}

    result = await _enrich_against(routes)

    assert result.reason == "malformed response: result is not a list"


async def test_a_hanging_prometheus_times_out_with_a_reason() -> None:
    routes = {"/api/v1/query_range": Reply.hanging(), "/api/v1/query": Reply.hanging()}

    result = await _enrich_against(routes)

    assert result.status == "unavailable"
    assert result.reason == "timed out after 0.5s"


async def test_a_hanging_prometheus_is_cut_off_by_the_budget() -> None:
    routes = {"/api/v1/query_range": Reply.hanging(), "/api/v1/query": Reply.hanging()}

    result = await _enrich_against(routes, budget=0.2)

    assert result.status == "unavailable"
    assert result.reason == "timed out after 0.2s"


async def test_recent_answers_stay_bounded_and_keep_the_newest_in_a_storm_of_distinct_queries() -> None:
    recent = RecentAnswers(seconds=60.0)
    asked: list[int] = []
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def query(n: int) -> Callable[[], Coroutine[Any, Any, tuple[Series, ...]]]:
        async def ask() -> tuple[Series, ...]:
            asked.append(n)
            return ()

        return ask

    first = {n: recent.get(("q", n), now, query(n)) for n in range(3 * SHARED_KEPT)}  # all still fresh
    await asyncio.gather(*first.values())
    assert len(recent._answers) <= SHARED_KEPT
    newest = 3 * SHARED_KEPT - 1
    assert recent.get(("q", newest), now, query(newest)) is first[newest]  # still shared
    again = recent.get(("q", 0), now, query(0))
    await again
    assert again is not first[0]  # the oldest was let go...
    assert asked.count(0) == 2  # ...and is asked again
