"""Label and field selectors, as the API server evaluates them, for answering lists from the
cache. The query-string forms are those the enricher sends (facts.label_selector and the
field selectors of events and pods on a node)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

Json = dict[str, Any]


class Requirement(NamedTuple):  # a tuple: built per parse, and 3x quicker than a frozen dataclass
    key: str
    operator: str  # = | != | in | notin | exists | !exists
    values: frozenset[str] = frozenset()

    def holds(self, value: str | None) -> bool:
        if self.operator == "=":
            return value in self.values
        if self.operator == "!=":
            return value not in self.values
        if self.operator == "in":
            return value in self.values
        if self.operator == "notin":
            return value not in self.values
        if self.operator == "exists":
            return value is not None
        return value is None  # !exists


_SET_BASED = re.compile(r"(\S+)\s+(in|notin)\s+\((.*)\)")


def split(selector: str) -> list[str]:
    """Split on the commas that are not inside `in (a,b)`."""
    parts = re.split(r",(?![^(]*\))", selector) if "(" in selector else selector.split(",")
    return [p.strip() for p in parts if p.strip()]


@functools.lru_cache(maxsize=4096)  # the selectors of a storm's reads repeat
def parse(selector: str) -> tuple[Requirement, ...]:
    return tuple(_requirement(part) for part in split(selector))


@functools.lru_cache(maxsize=4096)  # `type=Warning`, `involvedObject.kind=Pod`: most parts repeat
def _requirement(part: str) -> Requirement:
    # str.partition, not a regex, for the plain forms: an events read parses one per pod.
    if part.endswith(")"):
        set_based = _SET_BASED.fullmatch(part)
        if set_based:
            key, operator, values = set_based.groups()
            return Requirement(key, operator, frozenset(v.strip() for v in values.split(",")))
    if part.startswith("!"):
        return Requirement(part[1:].strip(), "!exists")
    key, unequal, value = part.partition("!=")
    if unequal:
        return Requirement(key.strip(), "!=", frozenset({value.strip()}))
    key, equal, value = part.partition("=")
    if equal:
        return Requirement(key.strip(), "=", frozenset({value.removeprefix("=").strip()}))
    return Requirement(part, "exists")


def equalities(requirements: tuple[Requirement, ...]) -> dict[str, str]:
    """The `key=value` requirements: what an index can answer."""
    return {r.key: next(iter(r.values)) for r in requirements if r.operator == "=" and len(r.values) == 1}


def labels_match(requirements: tuple[Requirement, ...]) -> Callable[[Mapping[str, str]], bool]:
    return lambda labels: all(r.holds(labels.get(r.key)) for r in requirements)


def field_value(obj: Json, dotted: str) -> str | None:
    current: Any = obj
    for part in dotted.split("."):
        current = current.get(part) if isinstance(current, dict) else None
    return None if current is None else str(current)


def fields_match(requirements: tuple[Requirement, ...]) -> Callable[[Json], bool]:
    # A missing field compares as "" on the API server.
    return lambda obj: all(r.holds(field_value(obj, r.key) or "") for r in requirements)
