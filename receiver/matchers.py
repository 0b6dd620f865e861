"""Alertmanager's label matchers: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


class MatcherError(ValueError):
    pass


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    pattern: re.Pattern[str] | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        # As in Alertmanager, a missing label matches the empty string.
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.pattern is not None
        found = self.pattern.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value)}"


def parse_matcher(text: str) -> Matcher:
    found = _MATCHER.match(text)
    if not found:
        raise MatcherError(f'not a matcher: {text!r} (expected name="value", !=, =~ or !~)')
    name, op, raw_value = found.groups()
    value = _unquote(raw_value)
    pattern = None
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise MatcherError(f"bad regular expression in {text!r}: {exc}") from None
    return Matcher(name=name, op=op, value=value, pattern=pattern)


def _unquote(raw: str) -> str:
    if raw.startswith('"') != (len(raw) >= 2 and raw.endswith('"')):
        raise MatcherError(f"unbalanced quotes in {raw!r}")
    if raw.startswith('"'):
        try:
            decoded = json.loads(raw)
        except json.JSONDecodeError:
            raise MatcherError(f"bad quoted value {raw!r}") from None
        if not isinstance(decoded, str):
            raise MatcherError(f"bad quoted value {raw!r}")
        return decoded
    return raw


def all_match(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
