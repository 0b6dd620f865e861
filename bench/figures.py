"""What every benchmark prints alike: its figures, one a line, name then value."""

from __future__ import annotations

from collections.abc import Mapping

Figure = tuple[str, str]  # (what was measured, the value with its unit or reference)


def print_figures(rows: list[Figure], width: int = 58) -> list[Figure]:
    for name, value in rows:
        print(f"{name:<{width}} {value}")
    return rows


def requests_per_alert(requests: Mapping[str, int], alerts: int) -> str:
    """How often each source was asked per alert, e.g. "jaeger 1.0, kubernetes 2.0"."""
    return ", ".join(f"{source} {count / alerts:.1f}" for source, count in sorted(requests.items()))
