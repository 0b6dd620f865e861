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


def test_a_catastrophic_regex_is_run_by_re2_and_matches_a_long_label() -> None:
    # Python's backtracking `re` needs hours for this label; RE2's work is linear in its length.
    matcher = parse_matcher('name=~"(a+)+$"')
    assert matcher.pattern is not None
    assert matcher.pattern.engine == "re2"
    assert matcher.matches({"name": "a" * 50 + "!"}) is False


def test_a_catastrophic_regex_still_matches_what_it_should() -> None:
    assert parse_matcher('name=~"(a+)+$"').matches({"name": "a" * 50}) is True


@pytest.mark.parametrize("pattern", [r"(a)\\1", "(?=a)a", "(?<=a)b", "(?P<x>a)(?P=x)"])
def test_what_re2_cannot_run_is_refused(pattern: str) -> None:
    with pytest.raises(MatcherError, match="RE2"):
        parse_matcher(f'name=~"{pattern}"')
