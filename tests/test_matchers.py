"""Alertmanager matcher syntax, table-driven."""

from __future__ import annotations

import pytest

from receiver.matchers import MatcherError, parse_matcher

LABELS = {"severity": "critical", "namespace": "shop-prod"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('severity="critical"', True),
        ('severity="warning"', False),
        ('severity!="warning"', True),
        ('namespace=~"shop-.*"', True),
        ('namespace=~"shop"', False),  # anchored, as in Alertmanager
        ('namespace!~"db|cache"', True),
        ('team=""', True),  # a missing label matches the empty string
        ("severity=critical", True),  # unquoted values are accepted
        ('severity = "critical"', True),
    ],
)
def test_matcher_matches(text: str, expected: bool) -> None:
    assert parse_matcher(text).matches(LABELS) is expected


@pytest.mark.parametrize("text", ["severity", '="x"', 'a=~"("', '1a="x"', 'a="unterminated'])
def test_bad_matchers_are_refused(text: str) -> None:
    with pytest.raises(MatcherError):
        parse_matcher(text)
