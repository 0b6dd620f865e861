"""Alertmanager's label matchers: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.

Regular expressions are RE2 (google-re2), as in Alertmanager and Prometheus: matching
takes time linear in the label's length whatever the pattern, so a pattern such as
`(a+)+$` cannot stall the event loop. What RE2 cannot run (backreferences, look-around)
is refused when the config is loaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import re2

# Ours, fixed and linear: the name and operator are anchored runs of disjoint classes.
_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


class MatcherError(ValueError):
    pass


@dataclass(frozen=True)
class LinearPattern:
    """A compiled RE2 expression: the typed surface of the untyped `re2` binding."""

    source: str
    _compiled: Any = field(repr=False, compare=False)

    @classmethod
    def compile(cls, source: str) -> LinearPattern:
        options = re2.Options()
        options.log_errors = False  # RE2 would print the pattern to stderr itself
        try:
            return cls(source, re2.compile(source, options))
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise MatcherError(f"not a valid RE2 expression ({reason})") from None

    @property
    def engine(self) -> str:
        """The module that compiled the expression: "re2", never Python's backtracking `re`."""
        return str(type(self._compiled).__module__).split(".")[0]

    def fullmatch(self, text: str) -> bool:
        return self._compiled.fullmatch(text) is not None


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    pattern: LinearPattern | None = field(default=None, compare=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        # As in Alertmanager, a missing label matches the empty string.
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.pattern is not None
        found = self.pattern.fullmatch(actual)
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
            pattern = LinearPattern.compile(value)
        except MatcherError as exc:
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
