"""Several replicas on one PostgreSQL behave as one KubeBot: claims never overlap, the HA
pair's copies are processed once, a dead replica's claims come back when their lease ends,
and a database outage is a 503 that ends by itself when the database returns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials, create_app
from receiver.config import Config, NotifyConfig, StoreConfig
from receiver.models import WebhookMessage, parse_webhook
from receiver.store.base import NewDelivery, StoreUnavailable
from receiver.store.postgres import PoolSettings, PostgresStore
from tests.conftest import accept, finish, fixture_json, outcome_of
from tests.postgres_server import PostgresServer

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SAMPLE = fixture_json("alertmanager/alertmanager_webhook_sample.json")
QUICK = PoolSettings(timeout_seconds=1.0)


def _body(first: int, count: int) -> dict[str, Any]:
    return {**SAMPLE, "alerts": [{**SAMPLE["alerts"][0], "fingerprint": f"fp{i}"} for i in range(first, first + count)]}


def _group(first: int, count: int) -> WebhookMessage:
    return parse_webhook(_body(first, count))


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def replicas(postgres_server: PostgresServer) -> AsyncIterator[list[PostgresStore]]:
    """Three stores on one fresh database, opened at the same instant (as replicas start)."""
    url = postgres_server.new_database()
    opened = await asyncio.gather(
        *(PostgresStore.open(url, password=postgres_server.password, lease_seconds=1.0) for _ in range(3))
    )
    yield list(opened)
    for store in opened:
        await store.close()


async def test_replicas_starting_together_on_an_empty_database_share_one_schema(
    replicas: list[PostgresStore],
) -> None:
    await accept(replicas[0], _group(0, 2), NOW)
    claimed = await replicas[1].claim(10)
    assert len(claimed) == 2


async def test_replicas_claiming_at_once_never_get_the_same_alert(replicas: list[PostgresStore]) -> None:
    for i in range(40):
        await accept(replicas[i % 3], _group(i * 5, 5), NOW)

    async def drain(store: PostgresStore) -> list[int]:
        taken: list[int] = []
        while batch := await store.claim(7, NOW):
            taken += [q.id for q in batch]
        return taken

    taken = await asyncio.gather(*(drain(store) for store in replicas))
    every = [alert_id for ids in taken for alert_id in ids]
    assert len(every) == len(set(every)) == 200
    assert all(taken), "each replica took a share"


async def test_the_ha_pairs_copies_accepted_by_different_replicas_are_queued_once(
    replicas: list[PostgresStore],
) -> None:
    group = _group(0, 3)
    await asyncio.gather(*(accept(store, group, NOW) for store in replicas for _ in range(2)))
    claimed = await asyncio.gather(*(store.claim(100, NOW) for store in replicas))
    again = await asyncio.gather(*(store.claim(100, NOW) for store in replicas))
    duplicates = sum(store.take_duplicate_count() for store in replicas)
    assert sorted(q.alert.fingerprint for batch in claimed + again for q in batch) == ["fp0", "fp1", "fp2"]
    assert duplicates == 15


async def test_claims_of_a_replica_that_died_come_back_when_their_lease_ends(
    replicas: list[PostgresStore],
) -> None:
    dead, survivor, _ = replicas
    await accept(dead, _group(0, 3), NOW)
    lost = await dead.claim(10, NOW)  # and then nothing: it was killed
    right_away = await survivor.claim(10, NOW)
    found: list[str] = []

    async def reclaimed() -> bool:
        found.extend(q.alert.fingerprint for q in await survivor.claim(10, NOW))
        return len(found) == 3

    await _eventually(reclaimed)
    for queued in await survivor.claim(10, NOW):
        pytest.fail(f"claimed twice: {queued}")
    assert (len(lost), right_away) == (3, [])
    assert sorted(found) == ["fp0", "fp1", "fp2"]


async def test_an_alert_finished_by_two_replicas_counts_once(replicas: list[PostgresStore]) -> None:
    slow, fast, _ = replicas
    await accept(slow, _group(0, 1), NOW)
    [first] = await slow.claim(1, NOW)
    reclaimed: list[Any] = []

    async def lease_ended() -> bool:
        reclaimed.extend(await fast.claim(1, NOW))
        return bool(reclaimed)

    await _eventually(lease_ended)
    page = NewDelivery("json://x", "t", "b", "info")
    await finish(fast, reclaimed[0].id, outcome_of(reclaimed[0]), [page], NOW)
    await finish(slow, first.id, outcome_of(first), [page], NOW)
    due = await slow.due_deliveries(NOW, 10)
    assert [d.alert_id for d in due] == [first.id]


async def test_a_delivery_is_sent_by_one_replica_at_a_time(replicas: list[PostgresStore]) -> None:
    await replicas[0].send_later([NewDelivery(f"json://x/{i}", "t", "b", "info") for i in range(30)], NOW)
    batches = await asyncio.gather(*(store.due_deliveries(NOW, 12) for store in replicas))
    again = await asyncio.gather(*(store.due_deliveries(NOW, 12) for store in replicas))
    ids = [d.id for batch in batches for d in batch]
    assert len(ids) == len(set(ids)) == 30
    assert again == [[], [], []]


# ---- the database goes away and comes back ------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own, to stop and start without disturbing the others."""
    server = PostgresServer.create()
    server.start()
    yield server
    server.remove()


async def test_a_stopped_database_is_store_unavailable_and_a_restarted_one_works_again(
    own_server: PostgresServer,
) -> None:
    store = await PostgresStore.open(own_server.new_database(), password=own_server.password, pool=QUICK)
    try:
        await accept(store, _group(0, 1), NOW)
        await asyncio.to_thread(own_server.stop)
        with pytest.raises(StoreUnavailable):
            await accept(store, _group(1, 1), NOW)
        with pytest.raises(StoreUnavailable):
            await store.check_writable()
        await asyncio.to_thread(own_server.start)

        async def writable() -> bool:
            try:
                await store.check_writable()
            except StoreUnavailable:
                return False
            return True

        await _eventually(writable)
        await accept(store, _group(2, 1), NOW)
        claimed = await store.claim(10, NOW)
    finally:
        await store.close()
    assert [q.alert.fingerprint for q in claimed] == ["fp0", "fp2"]


async def test_intake_answers_503_while_the_database_is_down_and_200_when_it_is_back(
    own_server: PostgresServer, tmp_path: Path
) -> None:
    config = Config(
        store=StoreConfig(
            url=own_server.new_database(),
            password_file=str(own_server.password_file),
            connect_timeout_seconds=1.0,
        ),
        notify=NotifyConfig(default_urls=(f"jsonl://{tmp_path}/n.jsonl",)),
    )
    app = create_app(config, credentials=Credentials())
    async with TestClient(TestServer(app)) as client:
        assert (await client.post("/api/v1/alerts", json=SAMPLE)).status == 200
        await asyncio.to_thread(own_server.stop)
        down = await client.post("/api/v1/alerts", json=SAMPLE)
        not_ready = await client.get("/readyz")
        reasons = (await not_ready.json())["reasons"]
        await asyncio.to_thread(own_server.start)

        async def accepted() -> bool:
            return (await client.post("/api/v1/alerts", json=_body(7, 1))).status == 200

        await _eventually(accepted)
        ready = await client.get("/readyz")
    assert (down.status, not_ready.status, ready.status) == (503, 503, 200)
    assert any(r.startswith("store not writable") for r in reasons), reasons
    assert own_server.password not in str(reasons)


async def test_the_ha_pair_posting_to_two_replicas_pages_once(postgres_server: PostgresServer, tmp_path: Path) -> None:
    config = Config(
        store=StoreConfig(url=postgres_server.new_database(), password_file=str(postgres_server.password_file)),
        notify=NotifyConfig(default_urls=(f"jsonl://{tmp_path}/n.jsonl",)),
    )
    sent = tmp_path / "n.jsonl"
    async with (
        TestClient(TestServer(create_app(config, credentials=Credentials()))) as one,
        TestClient(TestServer(create_app(config, credentials=Credentials()))) as two,
    ):
        answers = await asyncio.gather(*(c.post("/api/v1/alerts", json=SAMPLE) for c in (one, two, one, two)))

        async def paged() -> bool:
            return sent.exists() and len(sent.read_text().splitlines()) >= 1

        await _eventually(paged)
        incidents = [await (await c.get("/api/v1/incidents")).json() for c in (one, two)]
    assert [a.status for a in answers] == [200] * 4
    assert len(sent.read_text().splitlines()) == 1
    assert incidents[0] == incidents[1]


async def test_a_read_only_database_as_in_a_failover_is_store_unavailable_until_writable_again(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.new_database()
    store = await PostgresStore.open(url, password=postgres_server.password, pool=QUICK)
    database = url.rsplit("/", 1)[1]

    def read_only(on: bool) -> None:
        with psycopg.connect(postgres_server.url(), password=postgres_server.password, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {database} SET default_transaction_read_only = {'on' if on else 'off'}")
            # Sessions already open keep their settings: ended, as a failover ends them.
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))

    try:
        await asyncio.to_thread(read_only, True)
        with pytest.raises(StoreUnavailable, match="read-only"):
            await accept(store, _group(0, 1), NOW)
        await asyncio.to_thread(read_only, False)

        async def accepted() -> bool:  # as Alertmanager retries
            try:
                await accept(store, _group(1, 1), NOW)
            except StoreUnavailable:
                return False
            return True

        await _eventually(accepted)
        claimed = await store.claim(10, NOW)
    finally:
        await store.close()
    assert [q.alert.fingerprint for q in claimed] == ["fp1"]
