"""The `Actions` role on SQLite: what engineers did about incidents (silence, ack,
feedback), in a table of its own that older stores gain in place (CREATE IF NOT EXISTS).

A mixin of `SqliteStore`: every query runs on the store's one thread through `_call`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from receiver.store.base import (
    AlertRef,
    ConfirmedCause,
    HistoryAlert,
    IncidentAction,
    NewAction,
)
from receiver.store.rows import action_from_row, confirmed_causes_from_rows, read_nullable_outcome

T = TypeVar("T")

ACTIONS_SCHEMA = """
-- What engineers did about an incident: kept as long as the incident is. incident_id is
-- NULL for a silence on explicit matchers, which belongs to no incident.
CREATE TABLE IF NOT EXISTS incident_actions (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER,
    kind TEXT NOT NULL,
    by_whom TEXT NOT NULL,
    at REAL NOT NULL,
    note TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_actions_by_incident ON incident_actions(incident_id, id);
CREATE INDEX IF NOT EXISTS incident_actions_by_kind ON incident_actions(kind, id);
"""

_COLUMNS = "id, incident_id, kind, by_whom, at, note, details"
# Feedback rows read when looking for confirmed causes: the newest, bounded.
_FEEDBACK_SCAN = 1000


class SqliteActions:
    """`Actions` for `SqliteStore` (which provides `_call`)."""

    _call: Callable[..., Any]

    async def _in_store(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        result: T = await self._call(fn)
        return result

    async def record_action(self, action: NewAction, now: datetime) -> IncidentAction:
        ts = now.timestamp()
        details = json.dumps(dict(action.details), sort_keys=True)

        def write(conn: sqlite3.Connection) -> tuple[Any, ...]:
            row: tuple[Any, ...] = conn.execute(
                "INSERT INTO incident_actions (incident_id, kind, by_whom, at, note, details)"  # noqa: S608
                f" VALUES (?, ?, ?, ?, ?, ?) RETURNING {_COLUMNS}",
                (action.incident_id, action.kind, action.by, ts, action.note, details),
            ).fetchone()
            return row

        return action_from_row(await self._in_store(write))

    async def actions(self, incident_id: int) -> list[IncidentAction]:
        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                f"SELECT {_COLUMNS} FROM incident_actions WHERE incident_id = ? ORDER BY id",  # noqa: S608
                (incident_id,),
            ).fetchall()

        return [action_from_row(row) for row in await self._in_store(select)]

    async def alert_ref(self, alert_id: int) -> AlertRef | None:
        def select(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(
                "SELECT id, incident_id, outcome_json FROM alerts WHERE id = ? AND state = 'done'", (alert_id,)
            ).fetchone()
            return row

        row = await self._in_store(select)
        if row is None:
            return None
        outcome = read_nullable_outcome(row[0], row[2])
        return AlertRef(row[0], row[1], outcome) if outcome is not None else None

    async def incident_of_fingerprint(self, fingerprint: str) -> int | None:
        # Newest first by rowid: a recent alert is found without an index intake would pay for.
        def select(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(
                "SELECT incident_id FROM alerts WHERE fingerprint = ? AND incident_id IS NOT NULL"
                " ORDER BY id DESC LIMIT 1",
                (fingerprint,),
            ).fetchone()
            return row

        row = await self._in_store(select)
        return int(row[0]) if row is not None else None

    async def acknowledged(self, incident_keys: Sequence[str]) -> dict[str, str]:
        keys = sorted(set(incident_keys))
        if not keys:
            return {}
        placeholders = ",".join("?" * len(keys))

        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT i.key, a.by_whom FROM incidents i JOIN incident_actions a ON a.incident_id = i.id"  # noqa: S608
                f" WHERE a.kind = 'ack' AND i.status = 'firing' AND i.key IN ({placeholders})"
                " ORDER BY a.id",
                keys,
            ).fetchall()

        return dict(await self._in_store(select))  # the last ack of each wins

    async def confirmed_causes(self, alertname: str, limit: int = 50) -> list[ConfirmedCause]:
        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            found: list[tuple[Any, ...]] = []
            rows = conn.execute(
                "SELECT incident_id, by_whom, at, details FROM incident_actions WHERE kind = 'feedback'"
                " AND incident_id IS NOT NULL AND json_extract(details, '$.cause') IS NOT NULL"
                " ORDER BY id DESC LIMIT ?",
                (_FEEDBACK_SCAN,),
            ).fetchall()
            for incident_id, by, at, details in rows:
                alert = conn.execute(
                    "SELECT id, outcome_json FROM alerts WHERE incident_id = ? AND outcome_json IS NOT NULL"
                    " AND json_extract(outcome_json, '$.alertname') = ? ORDER BY id LIMIT 1",
                    (incident_id, alertname),
                ).fetchone()
                if alert is not None:
                    found.append((by, at, details, alert[0], alert[1]))
                    if len(found) >= limit:
                        break
            return found

        return confirmed_causes_from_rows(await self._in_store(select))

    async def history(self, since: datetime, limit: int = 200_000) -> list[HistoryAlert]:
        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT id, incident_id, processed_at, outcome_json FROM alerts WHERE state = 'done'"
                " AND outcome_json IS NOT NULL AND processed_at >= ? ORDER BY processed_at, id LIMIT ?",
                (since.timestamp(), limit),
            ).fetchall()

        return [
            HistoryAlert(alert_id, incident_id, at, outcome)
            for alert_id, incident_id, at, raw in await self._in_store(select)
            if (outcome := read_nullable_outcome(alert_id, raw)) is not None
        ]

    async def feedback_since(self, since: datetime) -> list[tuple[IncidentAction, tuple[str, ...]]]:
        def select(conn: sqlite3.Connection) -> list[tuple[tuple[Any, ...], list[str]]]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM incident_actions WHERE kind = 'feedback' AND at >= ?"  # noqa: S608
                " AND incident_id IS NOT NULL ORDER BY id",
                (since.timestamp(),),
            ).fetchall()
            return [
                (
                    row,
                    [
                        f
                        for (f,) in conn.execute(
                            "SELECT DISTINCT fingerprint FROM alerts WHERE incident_id = ?", (row[1],)
                        )
                    ],
                )
                for row in rows
            ]

        return [(action_from_row(row), tuple(fingerprints)) for row, fingerprints in await self._in_store(select)]


def prune_actions(conn: sqlite3.Connection, cutoff: float) -> None:
    """Actions go with their incident; a silence of no incident with its age."""
    conn.execute(
        "DELETE FROM incident_actions WHERE (incident_id IS NULL AND at < ?)"
        " OR (incident_id IS NOT NULL AND incident_id NOT IN (SELECT id FROM incidents))",
        (cutoff,),
    )
