"""parse_time: one policy for RFC 3339 times from the API, Alertmanager and stored outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from enrichers.times import parse_time


def test_a_utc_time_with_z_is_aware() -> None:
    assert parse_time("2024-05-01T10:00:00Z") == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_fractions_of_a_second_are_kept() -> None:
    assert parse_time("2024-05-01T10:00:00.250000Z") == datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC)


def test_an_offset_is_kept() -> None:
    expected = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert parse_time("2024-05-01T12:00:00+02:00") == expected


def test_a_time_without_a_zone_is_refused_not_guessed() -> None:
    assert parse_time("2024-05-01T10:00:00") is None


@pytest.mark.parametrize("value", ["", "yesterday", None, 1714557600, "2024-13-01T00:00:00Z"])
def test_what_is_not_a_time_is_none(value: object) -> None:
    assert parse_time(value) is None
