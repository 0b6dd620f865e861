"""The `Actions` role on PostgreSQL: what engineers did about incidents (silence, ack,
feedback), shared by every replica. The same semantics as SQLite's (sqlite_actions.py);
the table is created by a migration in postgres.py.

A mixin of `PostgresStore`: every query runs through its `_transaction` (retries after a
deadlock, StoreUnavailable when the database is).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg

from receiver.store.base import AlertRef, ConfirmedCause, HistoryAlert, IncidentAction, NewAction
from receiver.store.rows import action_from_row, confirmed_causes_from_rows, read_nullable_outcome

Conn = psycopg.AsyncConnection[tuple[Any, ...]]

ACTIONS_MIGRATION = """
-- What engineers did about an incident: kept as long as the incident is. incident_id is
-- NULL for a silence on explicit matchers, which belongs to no incident.
CREATE TABLE incident_actions (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT,
    kind TEXT NOT NULL,
    by_whom TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    note TEXT NOT NULL,
    details JSONB NOT NULL
);
CREATE INDEX incident_actions_by_incident ON incident_actions (incident_id, id);
CREATE INDEX incident_actions_by_kind ON incident_actions (kind, id);
"""

# details as text: the row reads back through the same converter as SQLite's.
_COLUMNS = "id, incident_id, kind, by_whom, at, note, details::text"
# Feedback rows read when looking for confirmed causes: the newest, bounded (as on SQLite).
_FEEDBACK_SCAN = 1000


class PostgresActions:
    """`Actions` for `PostgresStore` (which provides `_transaction` and `_select`)."""

    _transaction: Callable[..., Awaitable[Any]]
    _select: Callable[[str, Sequence[object]], Awaitable[list[tuple[Any, ...]]]]

    async def record_action(self, action: NewAction, now: datetime) -> IncidentAction:
        details = json.dumps(dict(action.details), sort_keys=True)

        async def write(conn: Conn) -> tuple[Any, ...] | None:
            return await (
                await conn.execute(
                    "INSERT INTO incident_actions (incident_id, kind, by_whom, at, note, details)"  # noqa: S608
                    f" VALUES (%s, %s, %s, %s, %s, %s::jsonb) RETURNING {_COLUMNS}",
                    (action.incident_id, action.kind, action.by, now.timestamp(), action.note, details),
                )
            ).fetchone()

        row = await self._transaction(write)
        assert row is not None  # INSERT ... RETURNING gives its row
        return action_from_row(row)

    async def actions(self, incident_id: int) -> list[IncidentAction]:
        rows = await self._select(
            f"SELECT {_COLUMNS} FROM incident_actions WHERE incident_id = %s ORDER BY id",  # noqa: S608
            (incident_id,),
        )
        return [action_from_row(row) for row in rows]

    async def alert_ref(self, alert_id: int) -> AlertRef | None:
        rows = await self._select(
            "SELECT id, incident_id, outcome_json FROM alerts WHERE id = %s AND state = 'done'", (alert_id,)
        )
        if not rows:
            return None
        found, incident_id, raw = rows[0]
        outcome = read_nullable_outcome(found, raw)
        return AlertRef(found, incident_id, outcome) if outcome is not None else None

    async def incident_of_fingerprint(self, fingerprint: str) -> int | None:
        rows = await self._select(
            "SELECT incident_id FROM alerts WHERE fingerprint = %s AND incident_id IS NOT NULL"
            " ORDER BY id DESC LIMIT 1",
            (fingerprint,),
        )
        return int(rows[0][0]) if rows else None

    async def acknowledged(self, incident_keys: Sequence[str]) -> dict[str, str]:
        keys = sorted(set(incident_keys))
        if not keys:
            return {}
        rows = await self._select(
            "SELECT i.key, a.by_whom FROM incidents i JOIN incident_actions a ON a.incident_id = i.id"
            " WHERE a.kind = 'ack' AND i.status = 'firing' AND i.key = ANY(%s) ORDER BY a.id",
            (keys,),
        )
        return dict(rows)  # the last ack of each wins

    async def confirmed_causes(self, alertname: str, limit: int = 50) -> list[ConfirmedCause]:
        # The newest feedback naming a cause, each with the first alert of this name in its
        # incident; feedback on incidents without one is skipped.
        rows = await self._select(
            "SELECT f.by_whom, f.at, f.details::text, first.id, first.outcome_json FROM"
            " (SELECT id, incident_id, by_whom, at, details FROM incident_actions WHERE kind = 'feedback'"
            "  AND incident_id IS NOT NULL AND details ->> 'cause' IS NOT NULL ORDER BY id DESC LIMIT %s) f"
            " CROSS JOIN LATERAL (SELECT id, outcome_json FROM alerts WHERE incident_id = f.incident_id"
            "  AND outcome_json IS NOT NULL AND (outcome_json::jsonb ->> 'alertname') = %s ORDER BY id LIMIT 1) first"
            " ORDER BY f.id DESC LIMIT %s",
            (_FEEDBACK_SCAN, alertname, limit),
        )
        return confirmed_causes_from_rows(rows)

    async def history(self, since: datetime, limit: int = 200_000) -> list[HistoryAlert]:
        rows = await self._select(
            "SELECT id, incident_id, processed_at, outcome_json FROM alerts WHERE state = 'done'"
            " AND outcome_json IS NOT NULL AND processed_at >= %s ORDER BY processed_at, id LIMIT %s",
            (since.timestamp(), limit),
        )
        return [
            HistoryAlert(alert_id, incident_id, at, outcome)
            for alert_id, incident_id, at, raw in rows
            if (outcome := read_nullable_outcome(alert_id, raw)) is not None
        ]

    async def feedback_since(self, since: datetime) -> list[tuple[IncidentAction, tuple[str, ...]]]:
        columns = ", ".join(f"a.{c}" for c in _COLUMNS.split(", "))
        rows = await self._select(
            f"SELECT {columns}, ARRAY(SELECT DISTINCT fingerprint FROM alerts WHERE incident_id = a.incident_id"  # noqa: S608
            " ORDER BY fingerprint) FROM incident_actions a WHERE a.kind = 'feedback' AND a.at >= %s"
            " AND a.incident_id IS NOT NULL ORDER BY a.id",
            (since.timestamp(),),
        )
        return [(action_from_row(row[:7]), tuple(row[7])) for row in rows]


async def prune_actions(conn: Conn, cutoff: float) -> None:
    """Actions go with their incident; a silence of no incident with its age."""
    await conn.execute(
        "DELETE FROM incident_actions a WHERE (a.incident_id IS NULL AND a.at < %s)"
        " OR (a.incident_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.id = a.incident_id))",
        (cutoff,),
    )
