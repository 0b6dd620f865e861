"""Reading case directories: the parsers are pure, load_case reads the files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rca.cases import (
    CaseError,
    CaseLabel,
    load_case,
    parse_edges,
    parse_inject_time,
    parse_label,
    parse_signal_table,
)
from rca.model import Edge


def test_empty_cells_become_nan() -> None:
    table = parse_signal_table("time,a_cpu,b_cpu\n60,1.5,\n0,,2\n")

    assert tuple(table.times) == (0.0, 60.0)
    assert table.columns == ("a_cpu", "b_cpu")
    assert math.isnan(table.values[0, 0])
    assert table.values[0, 1] == 2.0
    assert table.values[1, 0] == 1.5
    assert math.isnan(table.values[1, 1])


def test_text_and_infinite_cells_become_nan() -> None:
    table = parse_signal_table("time,a_cpu,a_mem\n0,n/a,inf\n")

    assert np.isnan(table.values).all()


def test_short_rows_leave_nan() -> None:
    table = parse_signal_table("time,a_cpu,a_mem\n0,1\n")

    assert table.values[0, 0] == 1.0
    assert math.isnan(table.values[0, 1])


def test_first_column_must_be_time() -> None:
    with pytest.raises(CaseError, match="'time'"):
        parse_signal_table("when,a_cpu\n0,1\n")


def test_row_without_time_is_an_error() -> None:
    with pytest.raises(CaseError, match="row 2"):
        parse_signal_table("time,a_cpu\n,1\n")


def test_inject_time_must_be_a_number() -> None:
    assert parse_inject_time("1661142423\n") == 1661142423.0
    with pytest.raises(CaseError, match="unix seconds"):
        parse_inject_time("yesterday")


def test_edges_keep_their_source() -> None:
    edges = parse_edges("caller,callee\nfrontend,cart\n\ncart,redis\n", source="jaeger")

    assert (Edge("frontend", "cart", "jaeger"), Edge("cart", "redis", "jaeger")) == edges


def test_edges_need_the_header() -> None:
    with pytest.raises(CaseError, match="caller,callee"):
        parse_edges("from,to\na,b\n")


def test_label_needs_system_service_and_fault() -> None:
    text = '{"system": "s", "service": "cart", "fault": "cpu", "source": "x"}'
    assert CaseLabel("s", "cart", "cpu") == parse_label(text)
    with pytest.raises(CaseError, match=r"label\.json"):
        parse_label('{"system": "s"}')


@given(
    st.lists(
        st.lists(
            st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=32)),
            min_size=3,
            max_size=3,
        ),
        min_size=1,
        max_size=20,
    )
)
def test_table_round_trips_through_csv(rows: list[list[float | None]]) -> None:
    lines = ["time,a_cpu,b_cpu,b_latency_p99"]
    for i, row in enumerate(rows):
        cells = ["" if v is None else repr(v) for v in row]
        lines.append(",".join([str(i), *cells]))

    table = parse_signal_table("\n".join(lines))

    expected = np.array([[np.nan if v is None else v for v in row] for row in rows])
    assert np.array_equal(expected, table.values, equal_nan=True)


def test_load_case_reads_optional_files(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("time,a_cpu\n0,1\n60,2\n")
    (tmp_path / "inject_time.txt").write_text("30")
    (tmp_path / "graph.csv").write_text("caller,callee\na,b\n")

    case = load_case(tmp_path)

    assert case.inject_time == 30.0
    assert (Edge("a", "b", "static"),) == case.edges
    assert case.label is None


def test_missing_inject_time_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("time,a_cpu\n0,1\n")

    with pytest.raises(CaseError, match=r"inject_time\.txt: missing"):
        load_case(tmp_path)


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="not a directory"):
        load_case(tmp_path / "nowhere")
