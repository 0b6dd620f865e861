"""The inbox row format: a batch of bodies packs and unpacks unchanged, in bounded rows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from receiver.store.inbox import pack, split_by_size, unpack

bodies = st.lists(
    st.tuples(st.binary(max_size=300), st.floats(0, 2e9, allow_nan=False), st.integers(0, 10_000)),
    max_size=20,
)


@given(bodies)
def test_a_packed_batch_unpacks_to_the_same_bodies_in_order(rows: list[tuple[bytes, float, int]]) -> None:
    assert unpack(pack(rows)) == rows


@given(bodies, st.integers(1, 1000))
def test_split_keeps_order_and_no_row_passes_the_limit_unless_one_body_does(
    rows: list[tuple[bytes, float, int]], limit: int
) -> None:
    chunks = split_by_size(rows, limit)
    assert [row for chunk in chunks for row in chunk] == rows
    for chunk in chunks:
        assert chunk
        assert len(chunk) == 1 or sum(len(row[0]) for row in chunk) <= limit


def test_large_bodies_are_split_across_inbox_rows_in_order() -> None:
    rows = [(b"x" * size, float(i), 1) for i, size in enumerate([3, 3, 5, 1, 9, 2])]
    chunks = split_by_size(rows, 6)
    assert [[len(r[0]) for r in chunk] for chunk in chunks] == [[3, 3], [5, 1], [9], [2]]
