"""The durable queue: accepted alerts, their outcomes, and the notification outbox.

`SqliteStore` is the embedded default of the contracts in receiver/store/base.py. A
shared PostgreSQL store for several replicas implements the same Protocols (claims
become leases with `FOR UPDATE SKIP LOCKED`), without touching the pipeline.

SQLite runs on one dedicated thread, never on the event loop. Writes queued while a
commit is in flight are committed together: many concurrent webhook requests share one
fsync (group commit), and each still learns whether *its* write landed. Intake writes
only the webhook bodies, into the inbox; `claim` turns them into alert rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog

from receiver.incidents import Incident, apply_outcome
from receiver.models import message_from_body
from receiver.pipeline.outcome import Outcome
from receiver.store.base import (
    Delivery,
    Finished,
    IncidentDetail,
    IncidentQuery,
    MemoryTurn,
    NewDelivery,
    Quarantine,
    QuarantinedItem,
    QueuedAlert,
    QueueFull,
    StoreUnavailable,
)
from receiver.store.inbox import INBOX_ROW_BYTES, pack, split_by_size, unpack
from receiver.store.rows import (
    INCIDENT_COLUMNS,
    Expanded,
    describe_error,
    held_state,
    incident_detail,
    incident_from_row,
    incident_row,
    incidents_query,
    parse_stored_body,
    read_claimed,
    read_outcome,
    unreadable_alerts,
    utc_time,
)
from receiver.store.sqlite_actions import ACTIONS_SCHEMA, SqliteActions, prune_actions

log = structlog.get_logger("kubebot.store")

T = TypeVar("T")

MAX_BATCH = 512

_SCHEMA = """
-- Intake's write-ahead inbox: one row per commit, holding every webhook body that commit
-- made durable (receiver/store/inbox.py). Workers expand it into messages and alert rows, deduplicated
-- there, when they claim work. The row per commit matters: each SQLite statement the
-- store thread runs is one more wait for the GIL while the event loop is busy with intake.
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY,
    bodies BLOB NOT NULL,
    alert_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    body BLOB NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    dedup_key TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    received_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    outcome_json TEXT,
    processed_at REAL,
    incident_id INTEGER,
    not_before REAL
);
CREATE INDEX IF NOT EXISTS alerts_by_incident ON alerts(incident_id) WHERE incident_id IS NOT NULL;
-- Intake pays for every index on every alert: only the queue's own partial index here.
CREATE INDEX IF NOT EXISTS alerts_waiting ON alerts(id) WHERE state != 'done';
-- The fingerprints being processed: a later state of one waits until the earlier is done.
CREATE INDEX IF NOT EXISTS alerts_running ON alerts(fingerprint) WHERE state = 'running';
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    namespace TEXT NOT NULL,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    resolved_at REAL,
    top_cause TEXT,
    paged INTEGER NOT NULL,
    firing_count INTEGER NOT NULL,
    alert_count INTEGER NOT NULL,
    subject TEXT
);
CREATE INDEX IF NOT EXISTS incidents_by_key ON incidents(key, id);
-- The fingerprints still firing in each incident: a row each, so that folding one more
-- alert into a storm-sized incident reads and writes one row, not the whole set.
CREATE TABLE IF NOT EXISTS incident_firing (
    incident_id INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (incident_id, fingerprint)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    notify_type TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_by_alert ON deliveries(alert_id);
-- Alerts no stage could handle, with the error; their alert row (if any) is in state
-- 'quarantined' and their body stays in messages. Added in place to older stores: a new table.
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    stage TEXT NOT NULL,
    error TEXT NOT NULL,
    received_at REAL NOT NULL,
    quarantined_at REAL NOT NULL,
    alert_id INTEGER,
    message_id INTEGER,
    fingerprint TEXT,
    alertname TEXT
);
"""


@dataclass
class _Op:
    fn: Callable[[sqlite3.Connection], Any] | None
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    # An intake body (body, received_at, alert_count): a batch's all go into one inbox row.
    body_row: tuple[bytes, float, int] | None = None


class SqliteStore(SqliteActions):
    """SQLite in WAL mode on its own thread, with batched commits."""

    def __init__(self, path: str | Path, max_pending: int) -> None:
        self._path = str(path)
        self._max_pending = max_pending
        self._ops: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pending = 0
        self._outbox = 0
        self._duplicates = 0
        self._quarantined = 0

    @classmethod
    async def open(cls, path: str | Path, max_pending: int = 100_000) -> SqliteStore:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        store = cls(path, max_pending)
        try:
            store._pending, store._outbox = await asyncio.to_thread(_initialise, str(path))
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open store {path}: {exc}") from exc
        store._thread = threading.Thread(target=store._run, name="kubebot-sqlite", daemon=True)
        store._thread.start()
        return store

    # -- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        # FULL: an acknowledged alert survives power loss too, not only a crash.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        try:
            while True:
                first = self._ops.get()
                if first is None:
                    return
                batch = [first]
                while len(batch) < MAX_BATCH:
                    try:
                        op = self._ops.get_nowait()
                    except queue.Empty:
                        break
                    if op is None:
                        self._ops.put(None)  # finish this batch, then stop
                        break
                    batch.append(op)
                self._run_batch(conn, batch)
        finally:
            conn.close()

    @staticmethod
    def _run_batch(conn: sqlite3.Connection, batch: list[_Op]) -> None:
        bodies = [op for op in batch if op.body_row is not None]
        if len(bodies) == len(batch) and sum(len(op.body_row[0]) for op in bodies if op.body_row) <= INBOX_ROW_BYTES:
            # Intake alone, as in a flood: one statement is its own transaction, and each
            # statement saved is one wait less for the GIL.
            _settle_all(_insert_bodies(conn, bodies))
            return
        results: list[tuple[_Op, Any, Exception | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            _settle_all([(op, None, StoreUnavailable(f"sqlite: {exc}")) for op in batch])
            return
        if bodies:
            results.extend(_insert_bodies(conn, bodies))
        for op in batch:
            if op.fn is None:
                continue
            # A savepoint per operation: one failing write must not undo its neighbours.
            conn.execute("SAVEPOINT op")
            try:
                result = op.fn(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                error = StoreUnavailable(f"sqlite: {exc}") if isinstance(exc, sqlite3.Error) else exc
                results.append((op, None, error))
            else:
                conn.execute("RELEASE op")
                results.append((op, result, None))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            _settle_all([(op, None, StoreUnavailable(f"sqlite commit: {exc}")) for op, _, _ in results])
            return
        _settle_all(results)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        result: T = await self._submit(_Op(fn, loop.create_future(), loop))
        return result

    async def _submit(self, op: _Op) -> Any:
        if self._thread is None or not self._thread.is_alive():
            raise StoreUnavailable("store is closed")
        self._ops.put(op)
        return await op.future

    # -- the Store interface -------------------------------------------------------------

    async def accept(self, body: bytes, alert_count: int, received_at: datetime) -> None:
        if alert_count == 0:
            return
        if self._pending + alert_count > self._max_pending:
            raise QueueFull(f"{self._pending} alerts waiting, limit {self._max_pending}")
        loop = asyncio.get_running_loop()
        await self._submit(_Op(None, loop.create_future(), loop, (body, received_at.timestamp(), alert_count)))
        self._pending += alert_count

    def take_duplicate_count(self) -> int:
        duplicates, self._duplicates = self._duplicates, 0
        return duplicates

    def take_quarantined_count(self) -> int:
        quarantined, self._quarantined = self._quarantined, 0
        return quarantined

    async def claim(self, limit: int, now: datetime | None = None) -> list[QueuedAlert]:
        ts = (now or datetime.now(UTC)).timestamp()

        def take(conn: sqlite3.Connection) -> tuple[Expanded, list[tuple[Any, ...]]]:
            expanded = _expand(conn, limit, ts)
            claimed = conn.execute(
                "UPDATE alerts SET state = 'running' WHERE id IN (SELECT id FROM alerts"
                " WHERE state != 'done' AND state = 'pending' AND (not_before IS NULL OR not_before <= ?)"
                # An alert's later state (its resolve) waits while another worker has an earlier
                # one: processed the other way round, the incident would open again.
                " AND fingerprint NOT IN (SELECT fingerprint FROM alerts WHERE state = 'running')"
                " ORDER BY id LIMIT ?) RETURNING id, message_id, position, received_at, not_before IS NOT NULL,"
                " fingerprint",
                (ts, limit),
            ).fetchall()
            # Bodies just expanded were decoded there; only older ones are read (and decoded) again.
            message_ids = sorted({row[1] for row in claimed} - expanded.messages.keys())
            placeholders = ",".join("?" * len(message_ids))
            bodies = (
                dict(conn.execute(f"SELECT id, body FROM messages WHERE id IN ({placeholders})", message_ids))  # noqa: S608
                if message_ids
                else {}
            )
            return expanded, [(*row, bodies.get(row[1])) for row in claimed]

        expanded, rows = await self._call(take)
        self._pending -= expanded.duplicates + expanded.unreadable
        self._duplicates += expanded.duplicates
        self._quarantined += expanded.unreadable
        queued, unreadable_rows = read_claimed(rows, expanded.messages, parse_stored_body)
        if unreadable_rows:
            await self.quarantine(unreadable_rows, datetime.fromtimestamp(ts, UTC))
            self._quarantined += len(unreadable_rows)
        return queued

    async def release(self, alert_ids: Sequence[int]) -> None:
        """Claimed alerts a worker could not finish go back to the queue."""

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE alerts SET state = 'pending' WHERE id = ? AND state = 'running'", [(i,) for i in alert_ids]
            )

        await self._call(write)

    async def defer(self, alert_id: int, until: datetime) -> None:
        """Back to the queue, to be claimed again no earlier than `until` (grace periods)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE alerts SET state = 'pending', not_before = ? WHERE id = ? AND state = 'running'",
                (until.timestamp(), alert_id),
            )

        await self._call(write)

    async def finish_many(self, finished: Sequence[Finished], now: datetime) -> None:
        """Outcomes and their deliveries in one transaction: a crash before it replays the
        alerts, a crash after it never notifies twice. One transaction for all alerts of a
        group's message, because that message names them all."""
        ts = now.timestamp()
        rows = [(f, f.outcome.encode().decode()) for f in finished]

        def write(conn: sqlite3.Connection) -> tuple[int, int]:
            done = queued = 0
            for item, outcome_json in rows:
                changed = conn.execute(
                    "UPDATE alerts SET state = 'done', outcome_json = ?, processed_at = ?"
                    " WHERE id = ? AND state != 'done'",
                    (outcome_json, ts, item.alert_id),
                ).rowcount
                if not changed:
                    continue
                incident_id = _record_incident(conn, item.outcome, ts)
                conn.execute("UPDATE alerts SET incident_id = ? WHERE id = ?", (incident_id, item.alert_id))
                conn.executemany(
                    "INSERT INTO deliveries (alert_id, url, title, body, notify_type,"
                    " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(item.alert_id, d.url, d.title, d.body, d.notify_type, ts, ts, ts) for d in item.deliveries],
                )
                done += 1
                queued += len(item.deliveries)
            return done, queued

        done, queued = await self._call(write)
        self._pending -= done
        self._outbox += queued

    async def quarantine(self, items: Sequence[Quarantine], now: datetime) -> None:
        ts = now.timestamp()

        def write(conn: sqlite3.Connection) -> int:
            set_aside = 0
            for item in items:
                row = conn.execute(
                    "UPDATE alerts SET state = 'quarantined', processed_at = ? WHERE id = ?"
                    " AND state IN ('pending', 'running') RETURNING message_id, received_at",
                    (ts, item.alert_id),
                ).fetchone()
                if row is None:
                    continue
                set_aside += 1
                _insert_quarantine(conn, item, row[1], ts, alert_id=item.alert_id, message_id=row[0])
            return set_aside

        self._pending -= await self._call(write)

    async def quarantined(self, limit: int) -> list[QuarantinedItem]:
        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT id, stage, error, received_at, quarantined_at, alert_id, message_id, fingerprint, alertname"
                " FROM quarantine ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()

        return [QuarantinedItem(*row) for row in await self._call(select)]

    async def send_later(self, deliveries: Sequence[NewDelivery], now: datetime) -> None:
        """Notifications of KubeBot's own (heartbeat, digests), through the same outbox."""
        ts = now.timestamp()

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO deliveries (alert_id, url, title, body, notify_type,"
                " next_attempt_at, created_at, updated_at) VALUES (0, ?, ?, ?, ?, ?, ?, ?)",
                [(d.url, d.title, d.body, d.notify_type, ts, ts, ts) for d in deliveries],
            )

        await self._call(write)
        self._outbox += len(deliveries)

    async def suppressed_since(self, since: datetime, limit: int = 10_000) -> list[Outcome]:
        """Outcomes of alerts suppressed after `since`, oldest first (for digests); rows
        that cannot be read are left out (and logged)."""

        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT id, outcome_json FROM alerts WHERE state = 'done' AND processed_at > ?"
                " AND json_extract(outcome_json, '$.decision') = 'suppress' ORDER BY id LIMIT ?",
                (since.timestamp(), limit),
            ).fetchall()

        rows = await self._call(select)
        return [outcome for alert_id, raw in rows if (outcome := read_outcome(alert_id, raw)) is not None]

    async def outcomes_since(self, since: datetime, limit: int) -> list[tuple[datetime, Outcome]]:
        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT id, processed_at, outcome_json FROM (SELECT id, processed_at, outcome_json FROM alerts"
                " WHERE state = 'done' AND outcome_json IS NOT NULL AND processed_at > ?"
                " ORDER BY processed_at DESC, id DESC LIMIT ?) ORDER BY processed_at, id",
                (since.timestamp(), limit),
            ).fetchall()

        rows = await self._call(select)
        read = [(utc_time(at), read_outcome(alert_id, raw)) for alert_id, at, raw in rows]
        return [(at, outcome) for at, outcome in read if outcome is not None]

    async def held_states(self) -> list[tuple[str, str, datetime]]:
        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT fingerprint, status, dedup_key, received_at FROM alerts"
                " WHERE state = 'pending' AND not_before IS NOT NULL ORDER BY id"
            ).fetchall()

        return [held_state(*row) for row in await self._call(select)]

    async def memory_turn(self, turn: MemoryTurn) -> None:
        """One replica: nobody else to hear from or tell (its memory is all in process)."""
        turn([])

    async def leading(self) -> bool:
        """One replica, always the leader."""
        return True

    async def get_meta(self, key: str) -> str | None:
        def select(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return str(row[0]) if row else None

        return await self._call(select)

    async def set_meta(self, key: str, value: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

        await self._call(write)

    async def due_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT id, alert_id, url, title, body, notify_type, attempts FROM deliveries"
                " WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id"
                " LIMIT ?",
                (now.timestamp(), limit),
            ).fetchall()

        return [Delivery(*row) for row in await self._call(select)]

    async def delivery_succeeded(self, delivery_id: int, now: datetime) -> None:
        def write(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1,"
                " updated_at = ?, last_error = NULL WHERE id = ? AND state = 'pending'",
                (now.timestamp(), delivery_id),
            ).rowcount

        if await self._call(write):
            self._outbox -= 1

    async def delivery_failed(self, delivery_id: int, error: str, now: datetime, retry_at: datetime | None) -> None:
        state = "pending" if retry_at else "dead"
        next_at = (retry_at or now).timestamp()

        def write(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?,"
                " last_error = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
                (state, next_at, error[:500], now.timestamp(), delivery_id),
            ).rowcount

        if await self._call(write) and state == "dead":
            self._outbox -= 1

    async def incidents(self, query: IncidentQuery) -> list[Incident]:
        """Newest first; `query.before_id` continues a previous page."""
        sql, params = incidents_query(query, "?")

        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(sql, params).fetchall()

        return [incident_from_row(row) for row in await self._call(select)]

    async def incident(self, incident_id: int) -> IncidentDetail | None:
        def select(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row = conn.execute(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?", (incident_id,)).fetchone()  # noqa: S608
            if row is None:
                return None
            alerts = conn.execute(
                "SELECT id, received_at, processed_at, outcome_json FROM alerts WHERE incident_id = ? ORDER BY id",
                (incident_id,),
            ).fetchall()
            deliveries = conn.execute(
                "SELECT d.id, d.alert_id, d.url, d.state, d.attempts, d.last_error, d.created_at, d.updated_at"
                " FROM deliveries d JOIN alerts a ON a.id = d.alert_id WHERE a.incident_id = ? ORDER BY d.id",
                (incident_id,),
            ).fetchall()
            return row, alerts, deliveries

        found = await self._call(select)
        if found is None:
            return None
        return incident_detail(*found)

    async def prune(self, older_than: datetime) -> int:
        cutoff = older_than.timestamp()

        def delete(conn: sqlite3.Connection) -> int:
            # Only finished history goes: pending alerts and undelivered pages stay.
            conn.execute("DELETE FROM deliveries WHERE state != 'pending' AND updated_at < ?", (cutoff,))
            removed = conn.execute(
                "DELETE FROM alerts WHERE state = 'done' AND received_at < ? AND NOT EXISTS"
                " (SELECT 1 FROM deliveries d WHERE d.alert_id = alerts.id)",
                (cutoff,),
            ).rowcount
            # Quarantined bodies stay, as their alerts do: someone still has to look at them.
            conn.execute(
                "DELETE FROM messages WHERE received_at < ? AND id NOT IN (SELECT message_id FROM alerts)"
                " AND id NOT IN (SELECT message_id FROM quarantine WHERE message_id IS NOT NULL)",
                (cutoff,),
            )
            conn.execute("DELETE FROM incidents WHERE status = 'resolved' AND updated_at < ?", (cutoff,))
            prune_actions(conn, cutoff)
            return removed

        return await self._call(delete)

    async def check_writable(self) -> None:
        def probe(conn: sqlite3.Connection) -> None:
            conn.execute("CREATE TABLE IF NOT EXISTS probe (at REAL)")
            conn.execute("DELETE FROM probe")
            conn.execute("INSERT INTO probe VALUES (?)", (time.time(),))

        await self._call(probe)

    def pending_count(self) -> int:
        return self._pending

    def outbox_count(self) -> int:
        return self._outbox

    async def close(self) -> None:
        if self._thread is None:
            return
        self._ops.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None


def _initialise(path: str) -> tuple[int, int]:
    """Create the schema and requeue unfinished work; returns (pending, outbox) counts."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        _migrate_firing_json(conn)
        conn.executescript(_SCHEMA)
        conn.executescript(ACTIONS_SCHEMA)
        _migrate_incident_subject(conn)
        # Work a killed process had claimed but not finished is simply queued again.
        conn.execute("UPDATE alerts SET state = 'pending' WHERE state = 'running'")
        pending = conn.execute(
            "SELECT (SELECT COUNT(*) FROM alerts WHERE state = 'pending')"
            " + (SELECT COALESCE(SUM(alert_count), 0) FROM inbox)"
        ).fetchone()
        outbox = conn.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'").fetchone()
        return int(pending[0]), int(outbox[0])
    finally:
        conn.close()


def _migrate_firing_json(conn: sqlite3.Connection) -> None:
    """Stores written before incident_firing kept each incident's firing set as a JSON list."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(incidents)")}
    if "firing_json" not in columns:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE incident_firing (incident_id INTEGER NOT NULL, fingerprint TEXT NOT NULL,"
            " PRIMARY KEY (incident_id, fingerprint)) WITHOUT ROWID"
        )
        conn.execute("ALTER TABLE incidents ADD COLUMN firing_count INTEGER NOT NULL DEFAULT 0")
        for incident_id, firing_json in conn.execute("SELECT id, firing_json FROM incidents").fetchall():
            fingerprints = json.loads(firing_json)
            conn.executemany(
                "INSERT INTO incident_firing (incident_id, fingerprint) VALUES (?, ?)",
                [(incident_id, fingerprint) for fingerprint in fingerprints],
            )
            conn.execute("UPDATE incidents SET firing_count = ? WHERE id = ?", (len(fingerprints), incident_id))
        conn.execute("ALTER TABLE incidents DROP COLUMN firing_json")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _migrate_incident_subject(conn: sqlite3.Connection) -> None:
    """Stores written before subjects: a nullable column, filled as alerts arrive."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(incidents)")}
    if "subject" not in columns:
        conn.execute("ALTER TABLE incidents ADD COLUMN subject TEXT")


def _insert_bodies(conn: sqlite3.Connection, ops: list[_Op]) -> list[tuple[_Op, Any, Exception | None]]:
    """Intake's writes: the whole batch as one inbox row (a few, for very large bodies)."""
    rows = [op.body_row for op in ops if op.body_row is not None]
    try:
        for chunk in split_by_size(rows, INBOX_ROW_BYTES):
            conn.execute(
                "INSERT INTO inbox (bodies, alert_count) VALUES (?, ?)", (pack(chunk), sum(r[2] for r in chunk))
            )
    except sqlite3.Error as exc:
        return [(op, None, StoreUnavailable(f"sqlite: {exc}")) for op in ops]
    return [(op, None, None) for op in ops]


def _expand(conn: sqlite3.Connection, wanted: int, now: float) -> Expanded:
    """Move inbox bodies into messages and queued alert rows until `wanted` alerts (or the
    inbox) are used up.

    An alert state already stored (an Alertmanager retry, the other HA peer) is kept
    once: its dedup key is unique. A body with nothing new is not kept at all. A body
    that passed intake but does not parse now (a newer, stricter version; or any fault
    in parsing it) is quarantined: kept in messages with its error, shown by the API,
    never silently dropped, and never in the way of the bodies after it.
    """
    expanded = Expanded()
    while wanted > 0:
        row = conn.execute("SELECT id, bodies FROM inbox ORDER BY id LIMIT 1").fetchone()
        if row is None:
            break
        inbox_id, packed = row
        for body, received_at, alert_count in unpack(packed):
            message_id = int(
                conn.execute("INSERT INTO messages (body, received_at) VALUES (?, ?)", (body, received_at)).lastrowid
                or 0
            )
            try:
                message = message_from_body(body)
            except Exception as exc:
                log.error("stored_body_unreadable", message_id=message_id, alerts=alert_count, error=str(exc)[:300])
                expanded.unreadable += alert_count
                for item in unreadable_alerts(body, describe_error(exc)):
                    _insert_quarantine(conn, item, received_at, now, alert_id=None, message_id=message_id)
                continue
            stored = conn.executemany(
                "INSERT OR IGNORE INTO alerts (dedup_key, fingerprint, status, position,"
                " message_id, received_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (a.dedup_key, a.fingerprint, a.status, i, message_id, received_at)
                    for i, a in enumerate(message.alerts)
                ],
            ).rowcount
            stored = max(stored, 0)
            expanded.duplicates += alert_count - stored
            if stored == 0:
                conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
            elif wanted > 0:  # some of its alerts are among the first the claim can take
                expanded.messages[message_id] = message
            wanted -= stored
        conn.execute("DELETE FROM inbox WHERE id = ?", (inbox_id,))
    return expanded


def _insert_quarantine(
    conn: sqlite3.Connection,
    item: Quarantine,
    received_at: float,
    now: float,
    *,
    alert_id: int | None,
    message_id: int | None,
) -> None:
    conn.execute(
        "INSERT INTO quarantine (stage, error, received_at, quarantined_at, alert_id, message_id,"
        " fingerprint, alertname) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (item.stage, item.error[:500], received_at, now, alert_id, message_id, item.fingerprint, item.alertname),
    )


def _settle_all(results: list[tuple[_Op, Any, Exception | None]]) -> None:
    """Hand results back to their event loops: one wake-up per loop, not one per write."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Op, Any, Exception | None]]] = {}
    for item in results:
        by_loop.setdefault(item[0].loop, []).append(item)

    def resolve(items: list[tuple[_Op, Any, Exception | None]]) -> None:
        for op, result, error in items:
            if op.future.done():
                continue
            if error is not None:
                op.future.set_exception(error)
            else:
                op.future.set_result(result)

    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop may already be closed at shutdown
            loop.call_soon_threadsafe(resolve, items)


def _record_incident(conn: sqlite3.Connection, outcome: Outcome, now: float) -> int:
    """Fold the alert into the open incident of its key (or the latest, for a late resolve)."""
    key = outcome.key
    fingerprint = outcome.alert.fingerprint
    resolving = outcome.alert.status == "resolved"
    row = conn.execute(
        f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE key = ?"  # noqa: S608
        + ("" if resolving else " AND status = 'firing'")
        + " ORDER BY id DESC LIMIT 1",
        (key,),
    ).fetchone()
    current = incident_from_row(row) if row else None
    was_firing = current is not None and (
        conn.execute(
            "SELECT 1 FROM incident_firing WHERE incident_id = ? AND fingerprint = ?", (current.id, fingerprint)
        ).fetchone()
        is not None
    )
    updated = apply_outcome(current, outcome, now, was_firing)
    values = incident_row(updated)
    if updated.id is None:
        cursor = conn.execute(
            "INSERT INTO incidents (key, title, status, severity, namespace, started_at, updated_at,"
            " resolved_at, top_cause, paged, firing_count, alert_count, subject)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )
        incident_id = int(cursor.lastrowid or 0)
    else:
        incident_id = updated.id
        conn.execute(
            "UPDATE incidents SET key = ?, title = ?, status = ?, severity = ?, namespace = ?, started_at = ?,"
            " updated_at = ?, resolved_at = ?, top_cause = ?, paged = ?, firing_count = ?, alert_count = ?,"
            " subject = ? WHERE id = ?",
            (*values, incident_id),
        )
    if resolving and was_firing:
        conn.execute(
            "DELETE FROM incident_firing WHERE incident_id = ? AND fingerprint = ?", (incident_id, fingerprint)
        )
    elif not resolving and not was_firing:
        conn.execute("INSERT INTO incident_firing (incident_id, fingerprint) VALUES (?, ?)", (incident_id, fingerprint))
    return incident_id
