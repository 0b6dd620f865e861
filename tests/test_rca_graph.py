"""The dependency graph merges edges from every source."""

from __future__ import annotations

from rca.graph import build_graph, index_calls, nearby
from rca.model import Edge


def test_duplicate_edges_merge_their_sources_and_rates() -> None:
    graph = build_graph(
        [
            Edge("frontend", "cart", "istio", request_rate=10.0),
            Edge("frontend", "cart", "jaeger", request_rate=12.0, error_rate=0.5),
            Edge("frontend", "cart", "istio"),
        ]
    )

    assert list(graph.edges) == [("frontend", "cart")]
    data = graph.edges["frontend", "cart"]
    assert data["sources"] == ("istio", "jaeger")
    assert data["request_rate"] == 12.0
    assert data["error_rate"] == 0.5


def test_direction_is_caller_to_callee() -> None:
    graph = build_graph([Edge("frontend", "cart", "static")])

    assert list(graph.successors("frontend")) == ["cart"]


def test_services_without_edges_are_nodes() -> None:
    graph = build_graph([Edge("a", "b", "static")], services=["a", "lonely"])

    assert {"a", "b", "lonely"} == set(graph.nodes)


def test_self_calls_are_dropped() -> None:
    graph = build_graph([Edge("a", "a", "jaeger")])

    assert graph.number_of_edges() == 0


def test_unknown_rates_stay_unknown() -> None:
    graph = build_graph([Edge("a", "b", "static")])

    assert graph.edges["a", "b"]["request_rate"] is None


def test_call_index_keeps_distinct_calls_among_the_ranked_services() -> None:
    edges = [
        Edge("frontend", "cart", "istio"),
        Edge("frontend", "cart", "jaeger"),
        Edge("cart", "redis", "kubernetes"),  # redis is not ranked
        Edge("cart", "cart", "jaeger"),
        Edge("checkout", "cart", "static"),
    ]

    calls = index_calls(edges, ["frontend", "cart", "checkout"])

    pairs = [(calls.services[a], calls.services[b]) for a, b in zip(calls.callers, calls.callees, strict=True)]
    assert pairs == [("frontend", "cart"), ("checkout", "cart")]


def test_call_index_without_edges_is_empty() -> None:
    calls = index_calls([], ["a", "b"])

    assert len(calls) == 0


def test_nearby_reaches_dependencies_two_calls_down_and_callers_one_call_up() -> None:
    edges = [
        Edge("edge", "frontend", "static"),
        Edge("frontend", "cart", "static"),
        Edge("cart", "redis", "static"),
        Edge("redis", "disk", "static"),
        Edge("admin", "cart", "static"),
        Edge("frontend", "ads", "static"),
    ]

    assert nearby(edges, {"cart"}) == {"cart", "redis", "disk", "frontend", "admin"}
    assert nearby(edges, {"lonely"}) == {"lonely"}
    assert nearby(edges, set()) == set()
