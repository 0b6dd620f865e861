"""Pure shaping of telemetry answers, on the real response fixtures."""

from __future__ import annotations

import copy
import math
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enrichers.telemetry.factory import TelemetrySettings, build_telemetry, signals_from_config
from enrichers.telemetry.golden import PodSet, Workload, pod_sets
from enrichers.telemetry.graph import (
    edge_families,
    edges_from_jaeger_dependencies,
    edges_from_series,
    present_metrics,
)
from enrichers.telemetry.http import MalformedResponse
from enrichers.telemetry.jaeger import jaeger_services, summarize_jaeger_traces
from enrichers.telemetry.loki import error_query, log_selector, summarize_streams
from enrichers.telemetry.naming import alert_service, workload_of_pod
from enrichers.telemetry.promclient import Series, parse_result
from enrichers.telemetry.promql import (
    SPARK_BARS,
    expression_from_generator_url,
    sparkline,
    strip_threshold,
    summarize_expression,
)
from enrichers.telemetry.signals import (
    DEFAULT_SIGNALS,
    SignalQuery,
    signal_queries,
    signal_table_from_results,
)
from enrichers.telemetry.tempo import (
    failing_operations,
    hex_id,
    search_traces,
    tempo_trace_spans,
    traceql_errors,
)
from enrichers.telemetry.traces import SpanInfo, resolve_service, span_depths
from tests.fakes.telemetry_alerts import at
from tests.fakes.telemetry_fixtures import (
    JAEGER_ENVELOPE,
    JAEGER_ERROR_TRACE,
    LOKI_MATRIX,
    LOKI_STREAMS,
    PROM_MATRIX,
    TEMPO_SEARCH,
    TEMPO_SEARCH_AMBIENT,
    TEMPO_TRACE,
    fixture,
    jaeger_envelope_with_error_trace,
)

# --- which service an alert is about -------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"service": "checkout", "pod": "checkout-7d9f"}, "checkout"),
        ({"exported_service": "cart", "service": "kube-state-metrics"}, "cart"),
        # kubernetes-mixin KubePodCrashLooping: service and job are the exporter's.
        (
            {
                "pod": "checkout-6d9f7c8b4d-x2x7k",
                "service": "prometheus-kube-state-metrics",
                "job": "kube-state-metrics",
            },
            "checkout",
        ),
        ({"namespace": "db", "deployment": "api"}, "api"),
        ({"namespace": "db", "statefulset": "postgres"}, "postgres"),
        ({"app": "web", "job": "web-scrape"}, "web"),
        ({"job": "payments"}, "payments"),
        ({"node": "worker-1"}, None),
        ({"job": "kubelet"}, None),
    ],
)
def test_alert_service_picks_the_workloads_name(labels: dict[str, str], expected: str | None) -> None:
    assert alert_service(labels) == expected


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("checkout-6d9f7c8b4d-x2x7k", "checkout"),
        ("redis-0", "redis"),
        ("fluent-bit-x7k2q", "fluent-bit"),
        ("node-exporter", "node-exporter"),  # vowels: not a generated suffix
        ("checkout-7d9f", "checkout-7d9f"),
    ],
)
def test_workload_of_pod_strips_generated_suffixes(pod: str, workload: str) -> None:
    assert workload_of_pod(pod) == workload


# --- the alert's expression ------------------------------------------------------------


def test_expression_comes_from_the_generator_url_of_a_real_webhook() -> None:
    body = fixture("alertmanager/alertmanager_webhook_payload_v4_fingerprint.json")
    url = body["alerts"][0]["generatorURL"]

    assert expression_from_generator_url(url) == "vector(2) == 2"


def test_a_generator_url_without_expression_gives_none() -> None:
    body = fixture("alertmanager/alertmanager_webhook_sample.json")

    assert expression_from_generator_url(body["alerts"][0]["generatorURL"]) is None


@pytest.mark.parametrize(
    ("expr", "stripped"),
    [
        ("vector(2) == 2", "vector(2)"),
        ('rate(errors{code=~"5.."}[5m]) > 0.05', 'rate(errors{code=~"5.."}[5m])'),
        ("sum(x) / sum(y) >= bool 1e-2", "sum(x) / sum(y)"),
        ("a > b", "a > b"),  # not a threshold: both sides are series
        ("(a > 1) and b", "(a > 1) and b"),
        ('up{job=">"} < 1', 'up{job=">"}'),
        ("up", "up"),
    ],
)
def test_strip_threshold_removes_only_a_trailing_number_comparison(expr: str, stripped: str) -> None:
    assert strip_threshold(expr) == stripped


@given(
    st.sampled_from(["up", "sum(rate(x[5m]))", 'a{b="c>d"} / b', "histogram_quantile(0.9, h)"]),
    st.sampled_from([">", "<", ">=", "<=", "==", "!="]),
    st.floats(allow_nan=False, allow_infinity=False),
)
def test_any_number_threshold_is_stripped(base: str, operator: str, threshold: float) -> None:
    assert strip_threshold(f"{base} {operator} {threshold!r}") == base


@given(st.lists(st.floats(allow_nan=True, allow_infinity=False), max_size=300))
def test_sparkline_is_short_and_made_of_bars(values: list[float]) -> None:
    line = sparkline(values, width=24)

    assert len(line) <= 24
    assert set(line) <= set(SPARK_BARS) | {" "}


def test_sparkline_rises_with_the_values() -> None:
    assert sparkline([0, 0, 0, 1, 2, 4, 8], width=7) == "▁▁▁▂▃▅█"


def test_expression_summary_on_a_real_matrix_picks_the_alerts_series() -> None:
    series = parse_result(fixture(PROM_MATRIX)["data"]["result"])
    alert_labels = {"alertname": "TargetDown", "job": "node", "instance": "localhost:9091"}

    summary = summarize_expression("up", series, alert_labels, at(1435781460))

    assert (summary.current, summary.baseline, summary.change_ratio) == (1.0, 0.0, None)
    assert summary.series_count == 2
    assert summary.line().startswith("Alert expression: 1 now vs 0 before")


def test_a_matrix_with_a_non_numeric_value_is_malformed() -> None:
    result = fixture(PROM_MATRIX)["data"]["result"]
    result[0]["values"][1][1] = {"not": "a number"}

    with pytest.raises(MalformedResponse):
        parse_result(result)


# --- signal table ----------------------------------------------------------------------


def test_signal_table_places_real_matrix_series_on_the_time_grid() -> None:
    series = parse_result(fixture(PROM_MATRIX)["data"]["result"])
    times = [1435781431.0 + 15 * i for i in range(4)]

    table = signal_table_from_results([("up", series)], "job", times, 15)

    assert table.columns == ("node_up", "prometheus_up")
    assert table.values[:3, 0].tolist() == [0.0, 0.0, 1.0]
    assert math.isnan(table.values[3, 1])  # no sample there


def test_signal_columns_turn_underscores_in_service_names_into_hyphens() -> None:
    series = (Series({"service": "cart_api"}, ((0.0, 1.0),)),)

    table = signal_table_from_results([("cpu", series)], "service", [0.0], 15)

    assert table.columns == ("cart-api_cpu",)
    assert table.service_of(table.columns[0]) == "cart-api"


def test_signal_pairs_from_configuration_become_queries() -> None:
    assert signal_queries([("cpu", "q")]) == (SignalQuery("cpu", "q"),)


# --- graph edges -----------------------------------------------------------------------


def test_linkerd_series_become_edges_with_error_rates() -> None:
    linkerd = next(f for f in edge_families() if f.source == "linkerd")
    requests = (
        Series({"deployment": "web", "dst_deployment": "api"}, ((0.0, 12.0),)),
        Series({"deployment": "web", "dst_deployment": "web"}, ((0.0, 1.0),)),
    )
    errors = (Series({"deployment": "web", "dst_deployment": "api"}, ((0.0, 0.5),)),)

    edges = edges_from_series(linkerd, requests, errors)

    assert [(e.caller, e.callee, e.request_rate, e.error_rate) for e in edges] == [("web", "api", 12.0, 0.5)]


def test_the_probe_reports_which_families_exist() -> None:
    series = (Series({"__name__": "istio_requests_total"}, ((0.0, 3.0),)),)

    assert present_metrics(series) == frozenset({"istio_requests_total"})


def test_jaeger_dependencies_become_edges() -> None:
    # Shape from Jaeger's query API (no real capture of the legacy endpoint exists).
    body = {"data": [{"parent": "frontend", "child": "cart", "callCount": 3600}]}

    edges = edges_from_jaeger_dependencies(body, timedelta(hours=1))

    assert [(e.caller, e.callee, e.source, e.request_rate) for e in edges] == [("frontend", "cart", "jaeger", 1.0)]


def test_jaeger_dependencies_without_data_are_malformed() -> None:
    with pytest.raises(MalformedResponse):
        edges_from_jaeger_dependencies(fixture(JAEGER_ERROR_TRACE), timedelta(hours=1))


# --- traces ----------------------------------------------------------------------------


def test_jaeger_error_trace_summary_names_the_failing_operation() -> None:
    summary = summarize_jaeger_traces(jaeger_envelope_with_error_trace(), "service-x", limit=20, ui_url="http://jaeger")

    assert summary.error_trace_count == 1
    assert summary.top_operations == (("some-operation", 1),)
    assert summary.deepest is not None
    assert (summary.deepest.service, summary.deepest.operation) == ("service-x", "some-operation")
    assert summary.links == ("http://jaeger/trace/0000000000000001",)
    assert summary.lines()[0] == ("Jaeger: 1 error traces for service-x; failing: some-operation (1)")


def test_jaeger_deepest_error_prefers_the_span_farthest_from_the_root() -> None:
    body = jaeger_envelope_with_error_trace()
    leaf = body["data"][0]["spans"][4]  # preserveParentID-test: 2 -> 4 -> 5
    leaf["tags"] = [
        {"key": "error", "type": "bool", "value": True},
        {"key": "otel.status_description", "type": "string", "value": "connection refused"},
    ]

    summary = summarize_jaeger_traces(body, "service-x", limit=20, ui_url="http://jaeger")

    assert summary.deepest is not None
    assert summary.deepest.to_facts() == {
        "trace_id": "0000000000000001",
        "service": "service-y",
        "operation": "preserveParentID-test",
        "message": "connection refused",
        "duration_ms": 0.004,
        "depth": 2,
    }
    assert "Deepest error: service-y preserveParentID-test: connection refused" in (summary.lines()[1])


def test_a_jaeger_envelope_without_errors_has_no_deepest_error() -> None:
    summary = summarize_jaeger_traces(fixture(JAEGER_ENVELOPE), "telemetrygen", limit=20, ui_url="http://jaeger")

    assert (summary.error_trace_count, summary.deepest) == (1, None)


def test_jaeger_services_accepts_both_api_versions() -> None:
    assert jaeger_services(fixture("jaeger/jaeger_apiv3_services_response.json")) == ("foo",)
    assert jaeger_services({"data": ["a", "b"], "total": 2}) == ("a", "b")


def test_service_names_resolve_to_istio_style_names() -> None:
    assert resolve_service("reviews", ["productpage.bookinfo", "reviews.bookinfo"]) == ("reviews.bookinfo")
    assert resolve_service("cart", ["productpage.bookinfo"]) is None


def test_span_depths_survive_missing_parents_and_cycles() -> None:
    def span(span_id: str, parent: str | None) -> SpanInfo:
        return SpanInfo("t", span_id, parent, "s", "op", 1.0, False)

    spans = [span("a", None), span("b", "a"), span("c", "gone"), span("x", "y"), span("y", "x")]

    depths = span_depths(spans)

    assert (depths["a"], depths["b"], depths["c"]) == (0, 1, 0)
    assert {depths["x"], depths["y"]} == {0, 1}


def test_traceql_query_names_the_service_and_errors() -> None:
    assert traceql_errors("checkout") == '{ resource.service.name = "checkout" && status = error }'


def test_tempo_ids_are_compared_as_hex() -> None:
    assert hex_id("Sc130fnc2TY=") == "49cd77d1f9dcd936"
    assert hex_id("2E6CA056F5FC6FDC") == "2e6ca056f5fc6fdc"


def test_tempo_failing_operations_use_matched_span_names_or_the_root_name() -> None:
    old = search_traces(fixture(TEMPO_SEARCH))
    ambient = search_traces(fixture(TEMPO_SEARCH_AMBIENT))

    assert failing_operations(old) == ["productpage.bookinfo.svc.cluster.local:9080/productpage"]
    assert "reviews.bookinfo.svc.cluster.local:9080/*" in failing_operations(ambient)


def test_tempo_trace_depths_follow_parent_span_ids() -> None:
    spans = tempo_trace_spans(fixture(TEMPO_TRACE))

    depths = span_depths(spans)
    ratings_server = next(s for s in spans if s.service == "ratings.bookinfo" and s.parent_id is not None)
    assert len(spans) == 8
    assert depths[ratings_server.span_id] == 5
    assert not any(s.is_error for s in spans)


def test_tempo_erroring_span_by_status_gives_the_deepest_error() -> None:
    body = copy.deepcopy(fixture(TEMPO_TRACE))
    ratings = body["batches"][-1]["scopeSpans"][0]["spans"][0]
    ratings["status"] = {"code": "STATUS_CODE_ERROR", "message": "upstream connect error"}

    spans = tempo_trace_spans(body)

    erroring = [s for s in spans if s.is_error]
    assert [(s.service, s.error_message) for s in erroring] == [("ratings.bookinfo", "upstream connect error")]


def test_tempo_span_matched_by_the_error_query_counts_as_erroring() -> None:
    matched = frozenset({hex_id("0j3l/q4Zp20=")})

    spans = tempo_trace_spans(fixture(TEMPO_TRACE), matched)

    assert [s.service for s in spans if s.is_error] == ["details.bookinfo"]


def test_tempo_search_without_traces_list_is_malformed() -> None:
    with pytest.raises(MalformedResponse):
        search_traces({"traces": {"not": "a list"}})


# --- logs ------------------------------------------------------------------------------


def test_loki_streams_summary_counts_lines_and_keeps_the_newest() -> None:
    body = fixture(LOKI_STREAMS)
    total = sum(len(stream["values"]) for stream in body["data"]["result"])
    newest = max(int(v[0]) for stream in body["data"]["result"] for v in stream["values"])

    summary = summarize_streams(body, limit=1000)

    assert summary.total == total
    assert summary.newest[0].timestamp_ns == newest
    assert len(summary.newest) == 5
    assert summary.lines()[0] == f"Loki: {total} error lines"


def test_loki_metric_answer_is_malformed_for_a_log_query() -> None:
    with pytest.raises(MalformedResponse):
        summarize_streams(fixture(LOKI_MATRIX), limit=100)


@pytest.mark.parametrize(
    ("labels", "selector"),
    [
        (
            {"namespace": "shop", "pod": "checkout-1", "container": "app"},
            '{namespace="shop", pod="checkout-1", container="app"}',
        ),
        (
            {"namespace": "shop", "deployment": "cart.v2"},
            '{namespace="shop", pod=~"cart\\\\.v2-.+"}',
        ),
        ({"service": "payments"}, '{pod=~"payments-.+"}'),
        ({"node": "worker-1"}, None),
    ],
)
def test_loki_selector_targets_the_alerts_pods(labels: dict[str, str], selector: str | None) -> None:
    assert log_selector(labels) == selector


def test_loki_query_filters_error_lines() -> None:
    assert error_query('{pod="a"}') == '{pod="a"} |~ "(?i)(error|exception|fatal|panic|traceback)"'


# --- wiring ----------------------------------------------------------------------------


async def test_nothing_configured_builds_no_sources() -> None:
    telemetry = build_telemetry(TelemetrySettings())

    assert (telemetry.enrichers, telemetry.prometheus, telemetry.graph) == ((), None, None)
    assert await telemetry.signal_table(at(0), at(60)) is None
    assert (await telemetry.edges()).edges == ()
    await telemetry.close()


def test_no_configured_signals_means_the_defaults() -> None:
    assert signals_from_config([]) == DEFAULT_SIGNALS
    assert signals_from_config([("cpu", "q")]) == (SignalQuery("cpu", "q"),)


def test_pods_are_asked_by_namespace_and_container_in_sets_of_bounded_size() -> None:
    workloads = [
        Workload("shop", "p3", None, "app"),
        Workload("shop", "p1", None, "app"),
        Workload("shop", "p2", None, "app"),
        Workload("shop", "p1", None, "app"),  # the same pod twice: asked once
        Workload("shop", "p9", None, None),
        Workload("ops", None, "deploy", None),  # a deployment: asked on its own, not here
    ]
    sets = pod_sets(workloads, most_pods=2)
    assert [(s.namespace, s.container, s.pods) for s in sets] == [
        ("shop", "app", ("p1", "p2")),
        ("shop", "app", ("p3",)),
        ("shop", None, ("p9",)),
    ]
    assert sets[0].selector() == '{namespace="shop", pod=~"p1|p2", container="app"}'
    dotted = PodSet("shop", None, ("a.b",))
    assert 'pod=~"a\\\\.b"' in dotted.selector()
