"""The shared store: PostgreSQL, for any number of replicas behaving as one KubeBot.

`PostgresStore` implements the same role contracts as SqliteStore (receiver/store/base.py),
with what several replicas on one database need:

- intake commits each body (batched with its neighbours into one inbox row) before its 200;
- an alert state (fingerprint, status, startsAt) is stored once, whichever replica got it:
  `alerts.dedup_key` is unique and inserts skip what is already there;
- workers and the outbox claim rows with `FOR UPDATE SKIP LOCKED` and a lease in the
  database's own clock: rows a dead replica had claimed are claimed again once it expires;
- incidents are folded under a transaction-scoped advisory lock on their key, so two
  replicas never open two incidents for one key;
- suppression memory is shared through a journal of its writes: turns (apply the others'
  writes, decide, append this replica's) run one at a time under an advisory lock, so each
  decision sees every earlier one whichever replica made it;
- the singletons run on the replica holding a session advisory lock on a connection of its
  own: when that process dies, its session ends, the lock is free and another takes it.

The database unreachable, restarting or read-only (a failover in progress) is
`StoreUnavailable`: intake answers 503 and /readyz says why; the pool reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
import psycopg.errors
import structlog
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from receiver.incidents import Incident, apply_outcome
from receiver.models import WebhookMessage, message_from_body
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
from receiver.store.inbox import INBOX_ROW_BYTES, Body, pack, split_by_size, unpack
from receiver.store.postgres_actions import ACTIONS_MIGRATION, PostgresActions, prune_actions
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

log = structlog.get_logger("kubebot.store")

T = TypeVar("T")
Conn = psycopg.AsyncConnection[tuple[Any, ...]]

MAX_BATCH = 512
# Intake commits in flight at once; requests arriving meanwhile share the next commit.
INTAKE_COMMITS = 4
# Counts of waiting work are re-read from the database this often: other replicas change them.
RECOUNT_SECONDS = 2.0
# Deadlocks between replicas are broken by PostgreSQL; the loser's transaction runs again.
TRANSACTION_TRIES = 4
# Advisory lock keys (classid, objid): schema migration, and one namespace for incident keys.
LOCK_CLASS = 0x4B42  # "KB"
SCHEMA_LOCK = 1
MEMORY_LOCK = 2
LEADER_LOCK = 3
INCIDENT_LOCKS = 0x4B43
# Suppression writes older than this are pruned: a replica starting later recalls from
# outcomes, and a live one reads the journal within seconds.
JOURNAL_KEPT_SECONDS = 3600.0

# Each migration runs once, in order, under the schema lock; never edit one that shipped.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE inbox (
        id BIGSERIAL PRIMARY KEY,
        bodies BYTEA NOT NULL,
        alert_count INTEGER NOT NULL
    );
    CREATE TABLE messages (
        id BIGSERIAL PRIMARY KEY,
        body BYTEA NOT NULL,
        received_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE alerts (
        id BIGSERIAL PRIMARY KEY,
        dedup_key TEXT NOT NULL UNIQUE,
        fingerprint TEXT NOT NULL,
        status TEXT NOT NULL,
        message_id BIGINT NOT NULL,
        position INTEGER NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        outcome_json TEXT,
        processed_at DOUBLE PRECISION,
        incident_id BIGINT,
        not_before DOUBLE PRECISION,
        claimed_by TEXT,
        lease_until TIMESTAMPTZ
    );
    CREATE INDEX alerts_waiting ON alerts (id) WHERE state IN ('pending', 'running');
    CREATE INDEX alerts_by_incident ON alerts (incident_id) WHERE incident_id IS NOT NULL;
    CREATE INDEX alerts_done_by_time ON alerts (processed_at) WHERE state = 'done';
    CREATE INDEX alerts_by_message ON alerts (message_id);
    CREATE TABLE incidents (
        id BIGSERIAL PRIMARY KEY,
        key TEXT NOT NULL,
        title TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        namespace TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        resolved_at DOUBLE PRECISION,
        top_cause TEXT,
        paged INTEGER NOT NULL,
        firing_count INTEGER NOT NULL,
        alert_count INTEGER NOT NULL,
        subject TEXT
    );
    CREATE INDEX incidents_by_key ON incidents (key, id);
    CREATE TABLE incident_firing (
        incident_id BIGINT NOT NULL,
        fingerprint TEXT NOT NULL,
        PRIMARY KEY (incident_id, fingerprint)
    );
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE deliveries (
        id BIGSERIAL PRIMARY KEY,
        alert_id BIGINT NOT NULL,
        url TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        notify_type TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL,
        last_error TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        claimed_by TEXT,
        lease_until TIMESTAMPTZ
    );
    CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE state = 'pending';
    CREATE INDEX deliveries_by_alert ON deliveries (alert_id);
    CREATE TABLE quarantine (
        id BIGSERIAL PRIMARY KEY,
        stage TEXT NOT NULL,
        error TEXT NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        quarantined_at DOUBLE PRECISION NOT NULL,
        alert_id BIGINT,
        message_id BIGINT,
        fingerprint TEXT,
        alertname TEXT
    );
    """,
    # Suppression memory's writes, in the order the replicas made them (one row per turn).
    """
    CREATE TABLE memory_journal (
        id BIGSERIAL PRIMARY KEY,
        written_at DOUBLE PRECISION NOT NULL,
        entry BYTEA NOT NULL
    );
    CREATE INDEX memory_journal_by_time ON memory_journal (written_at);
    """,
    # What engineers did about incidents (silence, ack, feedback).
    ACTIONS_MIGRATION,
    # The fingerprints being processed: a later state of one waits until the earlier is done.
    """
    CREATE INDEX alerts_running ON alerts (fingerprint) WHERE state = 'running';
    """,
)


@dataclass(frozen=True)
class PoolSettings:
    size: int = 10
    # Waiting for a connection (and making one) longer than this is StoreUnavailable.
    timeout_seconds: float = 5.0
    # No single statement holds a connection (or its locks) longer than this.
    statement_timeout_seconds: float = 30.0


@dataclass
class _Intake:
    body: Body
    future: asyncio.Future[None]


class PostgresStore(PostgresActions):
    """Every store role on one PostgreSQL database shared by all replicas."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Conn],
        max_pending: int,
        lease_seconds: float,
        connect: Callable[[], Awaitable[Conn]] | None = None,
    ) -> None:
        self._pool = pool
        self._connect = connect  # the leader lock's own session, outside the pool
        self._lock_session: Conn | None = None  # kept by a replica that waits to lead, too
        self._leads = False
        self._leader_guard = asyncio.Lock()
        self._memory_seen = 0  # the last journal entry this replica has applied (or wrote)
        self._max_pending = max_pending
        self._lease = lease_seconds
        # Who holds a claim: this process, as long as its store is open.
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._pending = 0
        self._outbox = 0
        self._counted_at = 0.0
        self._duplicates = 0
        self._quarantined = 0
        self._intake: list[_Intake] = []
        self._committers: set[asyncio.Task[None]] = set()
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        password: str | None = None,
        max_pending: int = 100_000,
        lease_seconds: float = 60.0,
        pool: PoolSettings | None = None,
    ) -> PostgresStore:
        settings = pool or PoolSettings()
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(1, round(settings.timeout_seconds)),
            # A peer that vanished (node lost, failover) is noticed within seconds, not hours.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": int(settings.timeout_seconds * 2000),
            "application_name": "kubebot",
        }
        if password is not None:
            kwargs["password"] = password
        statement_ms = int(settings.statement_timeout_seconds * 1000)

        async def configure(conn: Conn) -> None:
            # SET, not startup options: poolers (PgBouncer) refuse unknown startup parameters.
            await conn.execute(f"SET statement_timeout = {statement_ms}")
            await conn.execute(f"SET idle_in_transaction_session_timeout = {statement_ms}")

        async def connect() -> Conn:
            conn = await psycopg.AsyncConnection.connect(url, **kwargs)
            await configure(conn)
            # The server, too, notices a leader that vanished (node lost) within seconds and
            # ends its session, so the lock is not held by a connection nobody uses.
            for setting, value in (("tcp_keepalives_idle", 10), ("tcp_keepalives_interval", 5)):
                await conn.execute(f"SET {setting} = {value}")
            await conn.execute("SET tcp_keepalives_count = 3")
            return conn

        connections: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url,
            kwargs=kwargs,
            min_size=1,
            max_size=settings.size,
            open=False,
            configure=configure,
            # A connection the server dropped (restart, failover) is found before use, not by a request.
            check=AsyncConnectionPool.check_connection,
            timeout=settings.timeout_seconds,
            reconnect_timeout=settings.timeout_seconds * 12,
        )
        try:
            await connections.open(wait=True, timeout=settings.timeout_seconds)
        except (PoolTimeout, psycopg.Error) as exc:
            await connections.close()
            raise StoreUnavailable(f"cannot reach PostgreSQL: {_reason(exc)}") from exc
        store = cls(connections, max_pending, lease_seconds, connect)
        try:
            await store._transaction(_migrate)
            await store._recount()
            # Writes before now are in the outcomes this replica recalls at start-up.
            [(seen,)] = await store._select("SELECT COALESCE(MAX(id), 0) FROM memory_journal", ())
            store._memory_seen = int(seen)
        except StoreUnavailable:
            await connections.close()
            raise
        return store

    # -- connections and transactions -------------------------------------------------------

    async def _transaction(self, fn: Callable[[Conn], Awaitable[T]], *, retry: bool = True) -> T:
        """`fn` in one transaction; run again after a deadlock unless `retry` is off (when
        `fn` did something in process that must not happen twice)."""
        if self._closed:
            raise StoreUnavailable("store is closed")
        tries = TRANSACTION_TRIES if retry else 1
        for attempt in range(1, tries + 1):
            try:
                async with self._pool.connection() as conn, conn.transaction():
                    return await fn(conn)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
                if attempt == tries:
                    raise StoreUnavailable(f"postgresql: {_reason(exc)}") from exc
                log.info("store_transaction_retried", error=_reason(exc))
            except PoolTimeout as exc:
                raise StoreUnavailable(f"postgresql unreachable: {_reason(exc)}") from exc
            except psycopg.Error as exc:
                # Down, restarting, read-only after a failover, or a query it refused: nothing
                # was committed, and the caller answers (or retries) as for any store fault.
                raise StoreUnavailable(f"postgresql: {_reason(exc)}") from exc
        raise AssertionError("unreachable")

    async def _recount(self) -> None:
        async def count(conn: Conn) -> tuple[int, int]:
            row = await (
                await conn.execute(
                    "SELECT (SELECT COUNT(*) FROM alerts WHERE state IN ('pending', 'running'))"
                    " + (SELECT COALESCE(SUM(alert_count), 0) FROM inbox),"
                    " (SELECT COUNT(*) FROM deliveries WHERE state = 'pending')"
                )
            ).fetchone()
            assert row is not None
            return int(row[0]), int(row[1])

        self._pending, self._outbox = await self._transaction(count)
        self._counted_at = time.monotonic()

    async def _recount_now_and_then(self) -> None:
        """Other replicas take and add work too: the counts here are re-read every few seconds."""
        if time.monotonic() - self._counted_at >= RECOUNT_SECONDS:
            await self._recount()

    # -- the queue ------------------------------------------------------------------------------

    async def accept(self, body: bytes, alert_count: int, received_at: datetime) -> None:
        if alert_count == 0:
            return
        if self._pending + alert_count > self._max_pending:
            raise QueueFull(f"{self._pending} alerts waiting, limit {self._max_pending}")
        if self._closed:
            raise StoreUnavailable("store is closed")
        item = _Intake((body, received_at.timestamp(), alert_count), asyncio.get_running_loop().create_future())
        self._intake.append(item)
        if len(self._committers) < INTAKE_COMMITS:
            task = asyncio.create_task(self._commit_intake())
            self._committers.add(task)
            task.add_done_callback(self._committers.discard)
        await asyncio.shield(item.future)  # a client that goes away does not undo a commit under way
        self._pending += alert_count

    async def _commit_intake(self) -> None:
        """Commit what intake has queued, batch after batch: requests that arrive while a
        commit is in flight share the next one (group commit)."""
        while self._intake:
            batch, self._intake = self._intake[:MAX_BATCH], self._intake[MAX_BATCH:]
            error: BaseException | None = None
            try:
                await self._transaction(_inbox_writer([item.body for item in batch]))
            except StoreUnavailable as exc:
                error = exc
            except Exception as exc:  # settled, never left hanging
                error = StoreUnavailable(f"postgresql: {exc}")
            for item in batch:
                if item.future.done():
                    continue
                if error is None:
                    item.future.set_result(None)
                else:
                    item.future.set_exception(error)

    def take_duplicate_count(self) -> int:
        duplicates, self._duplicates = self._duplicates, 0
        return duplicates

    def take_quarantined_count(self) -> int:
        quarantined, self._quarantined = self._quarantined, 0
        return quarantined

    async def claim(self, limit: int, now: datetime | None = None) -> list[QueuedAlert]:
        ts = (now or datetime.now(UTC)).timestamp()

        async def take(conn: Conn) -> tuple[Expanded, list[tuple[Any, ...]]]:
            expanded = await _expand(conn, limit, ts)
            # Rows whose lease ran out belonged to a replica that died (or stalled): claimed again.
            claimed = await (
                await conn.execute(
                    "UPDATE alerts a SET state = 'running', claimed_by = %s,"
                    " lease_until = clock_timestamp() + make_interval(secs => %s)"
                    " FROM (SELECT id FROM alerts WHERE state IN ('pending', 'running') AND"
                    " ((state = 'pending' AND (not_before IS NULL OR not_before <= %s)"
                    # An alert's later state (its resolve) waits while a live claim holds an
                    # earlier one: processed the other way round, the incident would open again.
                    "   AND fingerprint NOT IN (SELECT fingerprint FROM alerts"
                    "   WHERE state = 'running' AND lease_until >= clock_timestamp()))"
                    " OR (state = 'running' AND lease_until < clock_timestamp()))"
                    " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) c WHERE a.id = c.id"
                    " RETURNING a.id, a.message_id, a.position, a.received_at, a.not_before IS NOT NULL, a.fingerprint",
                    (self._owner, self._lease, ts, limit),
                )
            ).fetchall()
            message_ids = sorted({row[1] for row in claimed} - expanded.messages.keys())
            bodies: dict[int, bytes] = {}
            if message_ids:
                found = await conn.execute("SELECT id, body FROM messages WHERE id = ANY(%s)", (message_ids,))
                bodies = {int(i): bytes(b) for i, b in await found.fetchall()}
            return expanded, [(*row, bodies.get(row[1])) for row in claimed]

        expanded, rows = await self._transaction(take)
        self._pending -= expanded.duplicates + expanded.unreadable
        self._duplicates += expanded.duplicates
        self._quarantined += expanded.unreadable
        queued, unreadable_rows = read_claimed(rows, expanded.messages, _parse_claimed_body)
        if unreadable_rows:
            await self.quarantine(unreadable_rows, datetime.fromtimestamp(ts, UTC))
            self._quarantined += len(unreadable_rows)
        await self._recount_now_and_then()
        return queued

    async def release(self, alert_ids: Sequence[int]) -> None:
        """Claimed alerts a worker could not finish go back to the queue (its own claims only)."""

        async def write(conn: Conn) -> None:
            await conn.execute(
                "UPDATE alerts SET state = 'pending', claimed_by = NULL, lease_until = NULL"
                " WHERE id = ANY(%s) AND state = 'running' AND claimed_by = %s",
                (list(alert_ids), self._owner),
            )

        await self._transaction(write)

    async def defer(self, alert_id: int, until: datetime) -> None:
        async def write(conn: Conn) -> None:
            await conn.execute(
                "UPDATE alerts SET state = 'pending', not_before = %s, claimed_by = NULL, lease_until = NULL"
                " WHERE id = %s AND state = 'running' AND claimed_by = %s",
                (until.timestamp(), alert_id, self._owner),
            )

        await self._transaction(write)

    async def finish_many(self, finished: Sequence[Finished], now: datetime) -> None:
        """Outcomes, incidents and deliveries in one transaction. An alert finished by two
        replicas (a lease ran out while the first was still at it) counts once: the first
        to commit wins, the other changes nothing."""
        ts = now.timestamp()
        rows = sorted(((f, f.outcome.encode().decode()) for f in finished), key=lambda r: r[0].alert_id)
        keys = sorted({f.outcome.key for f in finished})

        async def write(conn: Conn) -> tuple[int, int]:
            # Locks in one order for every replica: incident keys first, sorted.
            for key in keys:
                await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (INCIDENT_LOCKS, key))
            done = queued = 0
            for item, outcome_json in rows:
                changed = await conn.execute(
                    "UPDATE alerts SET state = 'done', outcome_json = %s, processed_at = %s,"
                    " claimed_by = NULL, lease_until = NULL WHERE id = %s AND state != 'done'",
                    (outcome_json, ts, item.alert_id),
                )
                if not changed.rowcount:
                    continue
                incident_id = await _record_incident(conn, item.outcome, ts)
                await conn.execute("UPDATE alerts SET incident_id = %s WHERE id = %s", (incident_id, item.alert_id))
                if item.deliveries:
                    async with conn.cursor() as cursor:
                        await cursor.executemany(
                            "INSERT INTO deliveries (alert_id, url, title, body, notify_type,"
                            " next_attempt_at, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                            [
                                (item.alert_id, d.url, d.title, d.body, d.notify_type, ts, ts, ts)
                                for d in item.deliveries
                            ],
                        )
                done += 1
                queued += len(item.deliveries)
            return done, queued

        done, queued = await self._transaction(write)
        self._pending -= done
        self._outbox += queued

    async def quarantine(self, items: Sequence[Quarantine], now: datetime) -> None:
        ts = now.timestamp()

        async def write(conn: Conn) -> int:
            set_aside = 0
            for item in items:
                row = await (
                    await conn.execute(
                        "UPDATE alerts SET state = 'quarantined', processed_at = %s, claimed_by = NULL,"
                        " lease_until = NULL WHERE id = %s AND state IN ('pending', 'running')"
                        " RETURNING message_id, received_at",
                        (ts, item.alert_id),
                    )
                ).fetchone()
                if row is None:
                    continue
                set_aside += 1
                await _insert_quarantine(conn, item, row[1], ts, alert_id=item.alert_id, message_id=row[0])
            return set_aside

        self._pending -= await self._transaction(write)

    async def quarantined(self, limit: int) -> list[QuarantinedItem]:
        rows = await self._select(
            "SELECT id, stage, error, received_at, quarantined_at, alert_id, message_id, fingerprint, alertname"
            " FROM quarantine ORDER BY id DESC LIMIT %s",
            (limit,),
        )
        return [QuarantinedItem(*row) for row in rows]

    async def held_states(self) -> list[tuple[str, str, datetime]]:
        rows = await self._select(
            "SELECT fingerprint, status, dedup_key, received_at FROM alerts"
            " WHERE state = 'pending' AND not_before IS NOT NULL ORDER BY id",
            (),
        )
        return [held_state(*row) for row in rows]

    def pending_count(self) -> int:
        return self._pending

    # -- the outbox -----------------------------------------------------------------------------

    async def send_later(self, deliveries: Sequence[NewDelivery], now: datetime) -> None:
        ts = now.timestamp()

        async def write(conn: Conn) -> None:
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO deliveries (alert_id, url, title, body, notify_type,"
                    " next_attempt_at, created_at, updated_at) VALUES (0, %s, %s, %s, %s, %s, %s, %s)",
                    [(d.url, d.title, d.body, d.notify_type, ts, ts, ts) for d in deliveries],
                )

        if deliveries:
            await self._transaction(write)
            self._outbox += len(deliveries)

    async def due_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        """Due deliveries, leased to this replica: no other sends them while the lease runs.
        A replica killed mid-send leaves its lease to expire, and another sends again (the
        duplicate window: a page sent but not yet recorded as sent)."""

        async def take(conn: Conn) -> list[tuple[Any, ...]]:
            cursor = await conn.execute(
                "UPDATE deliveries d SET claimed_by = %s, lease_until = clock_timestamp() + make_interval(secs => %s)"
                " FROM (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= %s"
                " AND (lease_until IS NULL OR lease_until < clock_timestamp())"
                " ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED) c WHERE d.id = c.id"
                " RETURNING d.next_attempt_at, d.id, d.alert_id, d.url, d.title, d.body, d.notify_type, d.attempts",
                (self._owner, self._lease, now.timestamp(), limit),
            )
            return await cursor.fetchall()

        rows = sorted(await self._transaction(take))
        if time.monotonic() - self._counted_at >= RECOUNT_SECONDS:
            await self._recount()
        return [Delivery(*row[1:]) for row in rows]

    async def delivery_succeeded(self, delivery_id: int, now: datetime) -> None:
        async def write(conn: Conn) -> int:
            cursor = await conn.execute(
                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, updated_at = %s,"
                " last_error = NULL, claimed_by = NULL, lease_until = NULL WHERE id = %s AND state = 'pending'",
                (now.timestamp(), delivery_id),
            )
            return cursor.rowcount

        if await self._transaction(write):
            self._outbox -= 1

    async def delivery_failed(self, delivery_id: int, error: str, now: datetime, retry_at: datetime | None) -> None:
        state = "pending" if retry_at else "dead"
        next_at = (retry_at or now).timestamp()

        async def write(conn: Conn) -> int:
            # Not when another replica holds it now (this one's lease ran out): its word counts.
            cursor = await conn.execute(
                "UPDATE deliveries SET state = %s, attempts = attempts + 1, next_attempt_at = %s, last_error = %s,"
                " updated_at = %s, claimed_by = NULL, lease_until = NULL WHERE id = %s AND state = 'pending'"
                " AND (claimed_by IS NULL OR claimed_by = %s)",
                (state, next_at, error[:500], now.timestamp(), delivery_id, self._owner),
            )
            return cursor.rowcount

        if await self._transaction(write) and state == "dead":
            self._outbox -= 1

    def outbox_count(self) -> int:
        return self._outbox

    # -- outcomes, incidents, meta ------------------------------------------------------------

    async def _select(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        async def select(conn: Conn) -> list[tuple[Any, ...]]:
            return await (await conn.execute(sql, params)).fetchall()

        return await self._transaction(select)

    async def suppressed_since(self, since: datetime, limit: int = 10_000) -> list[Outcome]:
        rows = await self._select(
            "SELECT id, outcome_json FROM alerts WHERE state = 'done' AND processed_at > %s"
            " AND (outcome_json::jsonb ->> 'decision') = 'suppress' ORDER BY id LIMIT %s",
            (since.timestamp(), limit),
        )
        return [outcome for alert_id, raw in rows if (outcome := read_outcome(alert_id, raw)) is not None]

    async def outcomes_since(self, since: datetime, limit: int) -> list[tuple[datetime, Outcome]]:
        rows = await self._select(
            "SELECT id, processed_at, outcome_json FROM (SELECT id, processed_at, outcome_json FROM alerts"
            " WHERE state = 'done' AND outcome_json IS NOT NULL AND processed_at > %s"
            " ORDER BY processed_at DESC, id DESC LIMIT %s) recent ORDER BY processed_at, id",
            (since.timestamp(), limit),
        )
        read = [(utc_time(at), read_outcome(alert_id, raw)) for alert_id, at, raw in rows]
        return [(at, outcome) for at, outcome in read if outcome is not None]

    async def incidents(self, query: IncidentQuery) -> list[Incident]:
        """Newest first; `query.before_id` continues a previous page."""
        sql, params = incidents_query(query, "%s")
        return [incident_from_row(row) for row in await self._select(sql, params)]

    async def incident(self, incident_id: int) -> IncidentDetail | None:
        async def select(conn: Conn) -> tuple[Any, ...] | None:
            row = await (
                await conn.execute(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = %s", (incident_id,))  # noqa: S608
            ).fetchone()
            if row is None:
                return None
            alerts = await (
                await conn.execute(
                    "SELECT id, received_at, processed_at, outcome_json FROM alerts WHERE incident_id = %s ORDER BY id",
                    (incident_id,),
                )
            ).fetchall()
            deliveries = await (
                await conn.execute(
                    "SELECT d.id, d.alert_id, d.url, d.state, d.attempts, d.last_error, d.created_at, d.updated_at"
                    " FROM deliveries d JOIN alerts a ON a.id = d.alert_id WHERE a.incident_id = %s ORDER BY d.id",
                    (incident_id,),
                )
            ).fetchall()
            return row, alerts, deliveries

        found = await self._transaction(select)
        if found is None:
            return None
        return incident_detail(*found)

    async def get_meta(self, key: str) -> str | None:
        rows = await self._select("SELECT value FROM meta WHERE key = %s", (key,))
        return str(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        async def write(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (key, value),
            )

        await self._transaction(write)

    # -- suppression memory and leadership -----------------------------------------------------

    async def memory_turn(self, turn: MemoryTurn) -> None:
        """`turn` alone among the replicas (a transaction-scoped advisory lock): it gets the
        journal entries after the last this replica saw and appends its own, so entries are
        committed in the order of their ids and none is skipped."""

        async def run(conn: Conn) -> None:
            await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, MEMORY_LOCK))
            rows = await (
                await conn.execute(
                    "SELECT id, entry FROM memory_journal WHERE id > %s ORDER BY id", (self._memory_seen,)
                )
            ).fetchall()
            if rows:
                # Seen once applied, whatever happens to this transaction: never applied twice.
                self._memory_seen = int(rows[-1][0])
            written = turn([bytes(entry) for _, entry in rows])
            if written:
                ids = await (
                    await conn.execute(
                        "INSERT INTO memory_journal (written_at, entry) SELECT %s, e"
                        " FROM unnest(%s::bytea[]) WITH ORDINALITY AS t(e, n) ORDER BY n RETURNING id",
                        (time.time(), written),
                    )
                ).fetchall()
                # Nobody else wrote meanwhile (the lock): these ids follow the ones just read.
                self._memory_seen = max(int(i) for (i,) in ids)

        await self._transaction(run, retry=False)

    async def leading(self) -> bool:
        """Whether this replica holds the leader lock, taking it when it is free. Held on a
        session of its own for as long as this process lives; lost with that session. A
        replica that does not lead keeps its session too and asks again on it: not a new
        connection every few seconds per replica."""
        if self._closed or self._connect is None:
            return False
        async with self._leader_guard:
            try:
                return await self._keep_or_take_lead()
            except (psycopg.Error, OSError) as exc:
                await self._end_lock_session(_reason(exc))
                return False
            except BaseException:
                if not self._leads:  # cut off mid-question: that session's state is unknown
                    await self._end_lock_session("cut off")
                raise

    async def _keep_or_take_lead(self) -> bool:
        session = self._lock_session
        if session is None or session.closed:
            await self._end_lock_session("the leader's session ended")
            assert self._connect is not None
            session = self._lock_session = await self._connect()
        if self._leads:
            await session.execute("SELECT 1")  # the session, and with it the lock, is still ours
            return True
        row = await (await session.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, LEADER_LOCK))).fetchone()
        self._leads = row is not None and bool(row[0])
        if self._leads:
            log.info("leadership_taken", replica=self._owner)
        return self._leads

    async def _end_lock_session(self, reason: str) -> None:
        """Close the leader lock's session; a lock held goes with it, and is said lost."""
        if self._lock_session is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._lock_session.close()
            self._lock_session = None
        if self._leads:
            self._leads = False
            log.warning("leadership_lost", error=reason)

    # -- upkeep ---------------------------------------------------------------------------------

    async def prune(self, older_than: datetime) -> int:
        cutoff = older_than.timestamp()

        async def delete(conn: Conn) -> int:
            await conn.execute("DELETE FROM deliveries WHERE state != 'pending' AND updated_at < %s", (cutoff,))
            removed = await conn.execute(
                "DELETE FROM alerts WHERE state = 'done' AND received_at < %s AND NOT EXISTS"
                " (SELECT 1 FROM deliveries d WHERE d.alert_id = alerts.id)",
                (cutoff,),
            )
            await conn.execute(
                "DELETE FROM messages m WHERE received_at < %s"
                " AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.message_id = m.id)"
                " AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.message_id = m.id)",
                (cutoff,),
            )
            await conn.execute("DELETE FROM incidents WHERE status = 'resolved' AND updated_at < %s", (cutoff,))
            await conn.execute(
                "DELETE FROM memory_journal WHERE written_at < %s", (min(cutoff, time.time() - JOURNAL_KEPT_SECONDS),)
            )
            await conn.execute(
                "DELETE FROM incident_firing f WHERE NOT EXISTS (SELECT 1 FROM incidents i WHERE i.id = f.incident_id)"
            )
            await prune_actions(conn, cutoff)
            return removed.rowcount

        return await self._transaction(delete)

    async def check_writable(self) -> None:
        """A real write: a standby promoted away from us (read-only) fails here, as it would intake."""

        async def probe(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ('probe', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (str(time.time()),),
            )

        await self._transaction(probe)

    async def close(self) -> None:
        """Claims this replica still holds go back at once, rather than when their leases end."""
        if self._closed:
            return
        if self._committers:
            await asyncio.wait(list(self._committers), timeout=5.0)

        async def give_back(conn: Conn) -> None:
            await conn.execute(
                "UPDATE alerts SET state = 'pending', claimed_by = NULL, lease_until = NULL"
                " WHERE state = 'running' AND claimed_by = %s",
                (self._owner,),
            )
            await conn.execute(
                "UPDATE deliveries SET claimed_by = NULL, lease_until = NULL"
                " WHERE claimed_by = %s AND state = 'pending'",
                (self._owner,),
            )

        try:
            await asyncio.wait_for(self._transaction(give_back), 5.0)
        except (StoreUnavailable, TimeoutError) as exc:
            log.warning("claims_left_to_leases", error=str(exc))
        self._closed = True
        async with self._leader_guard:
            self._leads = False  # given up, not lost: the lock goes with the session to another replica
            await self._end_lock_session("closed")
        await self._pool.close()


async def _migrate(conn: Conn) -> None:
    """Schema creation and upgrades, once, whichever replica gets here first: the others wait
    on the lock and then find nothing left to do."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, SCHEMA_LOCK))
    await conn.execute("CREATE TABLE IF NOT EXISTS kubebot_schema (version INTEGER NOT NULL)")
    row = await (await conn.execute("SELECT MAX(version) FROM kubebot_schema")).fetchone()
    current = int(row[0]) if row and row[0] is not None else 0
    if current > len(_MIGRATIONS):
        raise StoreUnavailable(f"the database's schema ({current}) is newer than this version knows")
    for version, sql in enumerate(_MIGRATIONS[current:], start=current + 1):
        await conn.execute(sql)
        await conn.execute("INSERT INTO kubebot_schema (version) VALUES (%s)", (version,))
        log.info("store_migrated", version=version)


async def _expand(conn: Conn, wanted: int, now: float) -> Expanded:
    """Inbox bodies into messages and alert rows, as SqliteStore does; several replicas expand
    different inbox rows at once (SKIP LOCKED), and the unique dedup key keeps each alert
    state once whichever replica stored it first."""
    expanded = Expanded()
    while wanted > 0:
        row = await (
            await conn.execute("SELECT id, bodies FROM inbox ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED")
        ).fetchone()
        if row is None:
            break
        inbox_id, packed = row
        for body, received_at, alert_count in unpack(bytes(packed)):
            message_row = await (
                await conn.execute(
                    "INSERT INTO messages (body, received_at) VALUES (%s, %s) RETURNING id", (body, received_at)
                )
            ).fetchone()
            assert message_row is not None
            message_id = int(message_row[0])
            try:
                message = message_from_body(body)
            except Exception as exc:
                log.error("stored_body_unreadable", message_id=message_id, alerts=alert_count, error=str(exc)[:300])
                expanded.unreadable += alert_count
                for item in unreadable_alerts(body, describe_error(exc)):
                    await _insert_quarantine(conn, item, received_at, now, alert_id=None, message_id=message_id)
                continue
            inserted = await conn.execute(
                "INSERT INTO alerts (dedup_key, fingerprint, status, position, message_id, received_at)"
                " SELECT k, f, s, p, %s, %s FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[])"
                " WITH ORDINALITY AS t(k, f, s, p, n) ORDER BY n ON CONFLICT (dedup_key) DO NOTHING",
                (
                    message_id,
                    received_at,
                    [a.dedup_key for a in message.alerts],
                    [a.fingerprint for a in message.alerts],
                    [a.status for a in message.alerts],
                    list(range(len(message.alerts))),
                ),
            )
            stored = max(inserted.rowcount, 0)
            expanded.duplicates += alert_count - stored
            if stored == 0:
                await conn.execute("DELETE FROM messages WHERE id = %s", (message_id,))
            elif wanted > 0:
                expanded.messages[message_id] = message
            wanted -= stored
        await conn.execute("DELETE FROM inbox WHERE id = %s", (inbox_id,))
    return expanded


def _parse_claimed_body(body: bytes | None) -> WebhookMessage | Exception:
    """A claimed alert's body; a message row that is missing reads as an error to quarantine."""
    return parse_stored_body(body) if body is not None else LookupError("body missing")


def _inbox_writer(rows: list[Body]) -> Callable[[Conn], Awaitable[None]]:
    """Intake's write: a batch of bodies as one inbox row (a few, for very large bodies)."""

    async def write(conn: Conn) -> None:
        for chunk in split_by_size(rows, INBOX_ROW_BYTES):
            await conn.execute(
                "INSERT INTO inbox (bodies, alert_count) VALUES (%s, %s)", (pack(chunk), sum(r[2] for r in chunk))
            )

    return write


async def _insert_quarantine(
    conn: Conn, item: Quarantine, received_at: float, now: float, *, alert_id: int | None, message_id: int | None
) -> None:
    await conn.execute(
        "INSERT INTO quarantine (stage, error, received_at, quarantined_at, alert_id, message_id,"
        " fingerprint, alertname) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (item.stage, item.error[:500], received_at, now, alert_id, message_id, item.fingerprint, item.alertname),
    )


async def _record_incident(conn: Conn, outcome: Outcome, now: float) -> int:
    """Fold the alert into the open incident of its key; the caller holds the key's lock."""
    key = outcome.key
    fingerprint = outcome.alert.fingerprint
    resolving = outcome.alert.status == "resolved"
    row = await (
        await conn.execute(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE key = %s"  # noqa: S608
            + ("" if resolving else " AND status = 'firing'")
            + " ORDER BY id DESC LIMIT 1",
            (key,),
        )
    ).fetchone()
    current = incident_from_row(row) if row else None
    was_firing = current is not None and (
        await (
            await conn.execute(
                "SELECT 1 FROM incident_firing WHERE incident_id = %s AND fingerprint = %s", (current.id, fingerprint)
            )
        ).fetchone()
        is not None
    )
    updated = apply_outcome(current, outcome, now, was_firing)
    values = incident_row(updated)
    if updated.id is None:
        inserted = await (
            await conn.execute(
                "INSERT INTO incidents (key, title, status, severity, namespace, started_at, updated_at,"
                " resolved_at, top_cause, paged, firing_count, alert_count, subject)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                values,
            )
        ).fetchone()
        assert inserted is not None
        incident_id = int(inserted[0])
    else:
        incident_id = updated.id
        await conn.execute(
            "UPDATE incidents SET key = %s, title = %s, status = %s, severity = %s, namespace = %s, started_at = %s,"
            " updated_at = %s, resolved_at = %s, top_cause = %s, paged = %s, firing_count = %s, alert_count = %s,"
            " subject = %s WHERE id = %s",
            (*values, incident_id),
        )
    if resolving and was_firing:
        await conn.execute(
            "DELETE FROM incident_firing WHERE incident_id = %s AND fingerprint = %s", (incident_id, fingerprint)
        )
    elif not resolving and not was_firing:
        await conn.execute(
            "INSERT INTO incident_firing (incident_id, fingerprint) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (incident_id, fingerprint),
        )
    return incident_id


def _reason(exc: BaseException) -> str:
    """The first line of a driver error: enough for a log line and /readyz, never the DSN."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
