"""Chart and graph geometry for the dashboard's inline SVG (pure functions)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from receiver.web.svg import MAX_NODES, NODE_HEIGHT, NODE_WIDTH, layout_graph, line_chart


def _xy(points: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (p.split(",") for p in points.split())]


def test_a_rising_series_is_drawn_from_bottom_left_to_top_right() -> None:
    chart = line_chart([[0, 1.0], [60, 2.0], [120, 3.0]])
    assert chart is not None
    (first, *_, last) = _xy(chart.segments[0])
    assert (first, last) == ((chart.plot_left, chart.plot_bottom), (chart.plot_right, chart.plot_top))


def test_a_gap_in_the_data_splits_the_line() -> None:
    chart = line_chart([[0, 1.0], [60, 2.0], [120, None], [180, 2.0], [240, 1.0]])
    assert chart is not None
    assert [len(_xy(s)) for s in chart.segments] == [2, 2]


def test_a_flat_series_sits_in_the_middle() -> None:
    chart = line_chart([[0, 5.0], [60, 5.0]])
    assert chart is not None
    assert {y for _, y in _xy(chart.segments[0])} == {(chart.plot_top + chart.plot_bottom) / 2}


def test_no_known_value_is_no_chart() -> None:
    assert line_chart([[0, None], [60, None]]) is None
    assert line_chart([]) is None


def test_malformed_points_are_skipped_and_a_bad_value_is_a_gap() -> None:
    chart = line_chart([[0, 1.0], "x", [60], [True, 2.0], [120, "3"], [180, 3.0]])
    assert chart is not None
    assert [len(_xy(s)) for s in chart.segments] == [1, 1]


def test_the_alert_start_is_marked_only_inside_the_window() -> None:
    inside = line_chart([[0, 1.0], [100, 2.0]], marker_time=50)
    outside = line_chart([[0, 1.0], [100, 2.0]], marker_time=500)
    assert inside is not None
    assert outside is not None
    assert (inside.marker_x, outside.marker_x) == ((inside.plot_left + inside.plot_right) / 2, None)


def test_ticks_label_the_lowest_and_highest_values_and_the_times() -> None:
    chart = line_chart([[1764082800, 0.5], [1764086400, 1500.0]])
    assert chart is not None
    assert ([t.label for t in chart.y_ticks], [t.label for t in chart.x_ticks]) == (
        ["0.5", "750", "1.5k"],
        ["15:00", "15:30", "16:00"],
    )


samples = st.lists(
    st.tuples(st.integers(0, 10**6), st.one_of(st.none(), st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False))),
    max_size=50,
)


@given(samples)
def test_every_drawn_point_is_inside_the_plot(points: list[tuple[int, float | None]]) -> None:
    chart = line_chart([list(p) for p in points])
    if chart is None:
        assert all(v is None for _, v in points)
        return
    for x, y in itertools.chain.from_iterable(_xy(s) for s in chart.segments):
        assert chart.plot_left - 0.05 <= x <= chart.plot_right + 0.05
        assert chart.plot_top - 0.05 <= y <= chart.plot_bottom + 0.05


def test_callers_are_drawn_above_their_callees() -> None:
    layout = layout_graph(["frontend", "checkout", "db"], [["frontend", "checkout"], ["checkout", "db"]])
    assert layout is not None
    y = {n.name: n.y for n in layout.nodes}
    assert y["frontend"] < y["checkout"] < y["db"]


def test_ranked_causes_carry_their_rank() -> None:
    layout = layout_graph(["a", "b", "c"], [["a", "b"], ["a", "c"]], causes=["c", "b"])
    assert layout is not None
    assert {n.name: n.rank for n in layout.nodes} == {"a": None, "b": 2, "c": 1}


def test_a_cycle_still_gets_a_layout() -> None:
    layout = layout_graph(["a", "b"], [["a", "b"], ["b", "a"]])
    assert layout is not None
    assert len({n.y for n in layout.nodes}) == 2
    assert len(layout.edges) == 2


def test_long_names_are_shortened_but_kept_whole_for_the_tooltip() -> None:
    name = "a-very-long-service-name-from-a-helm-chart"
    layout = layout_graph([name], [])
    assert layout is not None
    assert (layout.nodes[0].name, len(layout.nodes[0].label)) == (name, 20)


def test_a_huge_graph_keeps_the_causes_and_says_how_many_it_left_out() -> None:
    names = [f"s{i}" for i in range(100)]
    layout = layout_graph(names, [[f"s{i}", f"s{i + 1}"] for i in range(99)], causes=["s99"])
    assert layout is not None
    assert (len(layout.nodes), layout.hidden_nodes, "s99" in {n.name for n in layout.nodes}) == (MAX_NODES, 60, True)


def test_an_empty_graph_is_no_picture() -> None:
    assert layout_graph([], []) is None


names = st.text(alphabet="abcdefgh", min_size=1, max_size=3)


@given(st.lists(st.tuples(names, names), max_size=40), st.lists(names, max_size=5))
def test_nodes_never_overlap_and_stay_inside_the_picture(edges: list[tuple[str, str]], extra: list[str]) -> None:
    layout = layout_graph(extra, [list(e) for e in edges], causes=extra[:2])
    if layout is None:
        assert (edges, extra) == ([], [])
        return
    boxes = [(n.x, n.y) for n in layout.nodes]
    for (x1, y1), (x2, y2) in itertools.combinations(boxes, 2):
        assert abs(x1 - x2) >= NODE_WIDTH or abs(y1 - y2) >= NODE_HEIGHT
    for x, y in boxes:
        assert 0 <= x <= layout.width - NODE_WIDTH
        assert 0 <= y <= layout.height - NODE_HEIGHT
