"""Retention: incidents, with their alerts and deliveries, leave the store once old enough."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from receiver.models import parse_webhook
from receiver.store.base import IncidentQuery, NewDelivery
from receiver.store.sqlite import SqliteStore
from tests.conftest import accept, finish, fixture_json, outcome_of

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
RETENTION = timedelta(days=7)


def _webhook(group: str, status: str) -> Any:
    body = fixture_json("alertmanager/alertmanager_webhook_sample.json")
    body["groupKey"] = group
    body["alerts"][0]["fingerprint"] = f"fp-{group}"
    body["alerts"][0]["status"] = status
    return parse_webhook(body)


async def _incident(store: SqliteStore, group: str, statuses: tuple[str, ...], at: datetime) -> None:
    """Alerts of one group stored, processed and delivered at time `at`."""
    for status in statuses:
        await accept(store, _webhook(group, status), at)
        for queued in await store.claim(10):
            outcome = outcome_of(queued, routes=("json://x",))
            await finish(store, queued.id, outcome, [NewDelivery("json://x", "t", "b", "info")], at)
    for delivery in await store.due_deliveries(at, 100):
        await store.delivery_succeeded(delivery.id, at)


async def test_old_resolved_incidents_are_pruned_with_their_alerts_and_recent_ones_kept(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "kb.db")
    await _incident(store, "old", ("firing", "resolved"), NOW - timedelta(days=10))
    (old,) = await store.incidents(IncidentQuery())
    await _incident(store, "recent", ("firing", "resolved"), NOW - timedelta(days=1))
    await store.prune(NOW - RETENTION)
    left = await store.incidents(IncidentQuery())
    old_detail = await store.incident(old.id or 0)
    alerts = await store.outcomes_since(NOW - timedelta(days=365), 100)
    await store.close()
    assert [(i.status, i.started_at) for i in left] == [("resolved", (NOW - timedelta(days=1)).timestamp())]
    assert old_detail is None
    assert len(alerts) == 2  # the recent incident's firing and resolved alert


async def test_an_old_incident_still_firing_is_kept(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "kb.db")
    await _incident(store, "stuck", ("firing",), NOW - timedelta(days=10))
    await store.prune(NOW - RETENTION)
    left = await store.incidents(IncidentQuery())
    await store.close()
    assert [i.status for i in left] == ["firing"]
