"""Dependencies point down: receiver -> enrichers -> rca, never back."""

from __future__ import annotations

import ast
from pathlib import Path

from enrichers.base import AlertInput, GroupInput
from receiver.models import parse_webhook

ROOT = Path(__file__).resolve().parent.parent


def imported_packages(package: str) -> set[str]:
    """Top-level package names imported anywhere in `package`."""
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_enrichers_do_not_import_the_receiver() -> None:
    assert "receiver" not in imported_packages("enrichers")


def test_rca_imports_neither_the_receiver_nor_the_enrichers() -> None:
    assert set() == {"receiver", "enrichers"} & imported_packages("rca")


def test_the_receivers_alert_and_group_are_enricher_inputs() -> None:
    message = parse_webhook(
        {
            "groupKey": "g",
            "commonLabels": {"alertname": "Down"},
            "alerts": [{"status": "firing", "labels": {"alertname": "Down"}, "startsAt": "2024-05-01T10:00:00Z"}],
        }
    )
    # Typed assignments: mypy --strict checks the structural match.
    alert: AlertInput = message.alerts[0]
    group: GroupInput = message.group
    assert (dict(alert.labels), group.group_key) == ({"alertname": "Down"}, "g")
