"""What is particular to the SQLite store: its file's format (read here with sqlite3, on
purpose: these tests check what is on disk, and a migration of it), and how often it decodes
a stored body. The contract every store keeps is in test_store.py."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from receiver.models import WebhookMessage, message_from_body, parse_webhook
from receiver.store import sqlite as sqlite_store
from receiver.store.base import IncidentQuery
from receiver.store.sqlite import SqliteStore
from tests.conftest import accept, finish, fixture_json, outcome_of

GROUP = parse_webhook(fixture_json("alertmanager/alertmanager_webhook_sample_group3.json"))
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def test_the_database_uses_wal_so_readers_never_block_intake(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "kb.db")
    await store.close()
    assert _rows(tmp_path / "kb.db", "PRAGMA journal_mode") == [("wal",)]


async def test_a_body_with_nothing_new_is_not_kept_on_disk(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "kb.db")
    await accept(store, GROUP, NOW)
    await store.claim(100)
    await accept(store, GROUP, NOW)
    await store.claim(100)
    await store.close()
    assert _rows(tmp_path / "kb.db", "SELECT COUNT(*) FROM messages") == [(1,)]


async def test_an_incidents_firing_set_is_a_row_per_fingerprint_on_disk(tmp_path: Path) -> None:
    """A storm-sized incident then reads and writes one row per alert, not its whole set."""
    store = await SqliteStore.open(tmp_path / "kb.db")
    await accept(store, GROUP, NOW)
    for queued in await store.claim(10):
        await finish(store, queued.id, outcome_of(queued), [], NOW)
    resolved = GROUP.alerts[1].to_json() | {"status": "resolved"}
    await accept(store, parse_webhook({**GROUP.group.to_json(), "alerts": [resolved]}), NOW)
    for queued in await store.claim(10):
        await finish(store, queued.id, outcome_of(queued), [], NOW)
    await store.close()
    firing = _rows(tmp_path / "kb.db", "SELECT fingerprint FROM incident_firing ORDER BY 1")
    assert firing == sorted((a.fingerprint,) for a in (GROUP.alerts[0], GROUP.alerts[2]))


async def test_a_store_written_with_the_old_firing_json_column_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE incidents (id INTEGER PRIMARY KEY, key TEXT NOT NULL, title TEXT NOT NULL,"
            " status TEXT NOT NULL, severity TEXT NOT NULL, namespace TEXT NOT NULL, started_at REAL NOT NULL,"
            " updated_at REAL NOT NULL, resolved_at REAL, top_cause TEXT, paged INTEGER NOT NULL,"
            " firing_json TEXT NOT NULL, alert_count INTEGER NOT NULL)"
        )
        conn.execute(
            "INSERT INTO incidents VALUES (1, 'k', 'T', 'firing', 'critical', 'shop', 0, 0, NULL, NULL, 1,"
            ' \'["fp1", "fp2"]\', 2)'
        )
    store = await SqliteStore.open(path)
    [incident] = await store.incidents(IncidentQuery())
    await store.close()
    assert incident.firing_count == 2
    assert _rows(path, "SELECT fingerprint FROM incident_firing ORDER BY 1") == [("fp1",), ("fp2",)]


async def test_a_body_expanded_and_claimed_in_one_call_is_decoded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[bytes] = []

    def counting(body: bytes) -> WebhookMessage:
        decoded.append(body)
        return message_from_body(body)

    monkeypatch.setattr(sqlite_store, "message_from_body", counting)
    store = await SqliteStore.open(tmp_path / "kb.db")
    await accept(store, GROUP, NOW)
    claimed = await store.claim(100)
    await store.close()
    assert [q.alert for q in claimed] == list(GROUP.alerts)
    assert len(decoded) == 1


async def test_an_incident_stored_before_subjects_gets_one_with_its_next_alert(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE incidents (id INTEGER PRIMARY KEY, key TEXT NOT NULL, title TEXT NOT NULL,"
            " status TEXT NOT NULL, severity TEXT NOT NULL, namespace TEXT NOT NULL, started_at REAL NOT NULL,"
            " updated_at REAL NOT NULL, resolved_at REAL, top_cause TEXT, paged INTEGER NOT NULL,"
            " firing_count INTEGER NOT NULL, alert_count INTEGER NOT NULL)"
        )
        conn.execute(
            "INSERT INTO incidents VALUES (1, ?, 'PodCrashLooping in default', 'firing', 'warning', 'default',"
            " 0, 0, NULL, NULL, 1, 0, 0)",
            (GROUP.group.group_key,),
        )
    store = await SqliteStore.open(path)
    [before] = await store.incidents(IncidentQuery())
    await accept(store, GROUP, NOW)
    [first, *_] = await store.claim(10)
    await finish(store, first.id, outcome_of(first), [], NOW)
    [after] = await store.incidents(IncidentQuery())
    await store.close()
    assert before.subject is None
    assert after.subject is not None
    assert (after.id, after.title, after.subject.ref) == (1, "PodCrashLooping in default", "Pod default/api-1")
