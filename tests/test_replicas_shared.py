"""Replicas on one PostgreSQL share what only one process used to know: suppression memory
(a decision does not depend on which replica took the alert) and the singletons (one
replica watches the heartbeat, sends digests and prunes; another takes over when it dies)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from receiver.config import SuppressionConfig, load
from receiver.metrics import Metrics
from receiver.models import Alert, parse_webhook
from receiver.pipeline.stage import Work
from receiver.pipeline.suppress import Memory, Suppressor, SuppressStage
from receiver.service.outbox import Outbox, RetryPolicy
from receiver.service.watchkeeper import Watchkeeper
from receiver.store.postgres import PostgresStore
from tests.conftest import accept, finish, fixture_json, outcome_of
from tests.postgres_server import PostgresServer
from tests.test_outbox import FakeClock, FlakyChannel

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SAMPLE = fixture_json("alertmanager/alertmanager_webhook_sample.json")


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def replicas(postgres_server: PostgresServer) -> AsyncIterator[list[PostgresStore]]:
    url = postgres_server.new_database()
    opened = await asyncio.gather(*(PostgresStore.open(url, password=postgres_server.password) for _ in range(3)))
    yield list(opened)
    for store in opened:
        await store.close()


def _work(labels: dict[str, str], fingerprint: str, status: str = "firing", starts: datetime = T0) -> Work:
    body: dict[str, Any] = {
        "version": "4",
        "groupKey": f"{{}}:{{fp={fingerprint}}}",
        "status": status,
        "receiver": "kubebot",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {},
                "startsAt": starts.isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": fingerprint,
            }
        ],
    }
    message = parse_webhook(body)
    alert: Alert = message.alerts[0]
    return Work(alert=alert, group=message.group, received_at=starts)


def _stage(
    store: PostgresStore, clock: Callable[[], datetime], config: SuppressionConfig | None = None
) -> SuppressStage:
    memory = Memory()
    memory.share()
    return SuppressStage(Suppressor(config or SuppressionConfig(), clock, memory), store)


NODE_DOWN = {"alertname": "KubeNodeNotReady", "node": "worker-3", "severity": "warning"}
POD_ON_IT = {"alertname": "KubePodNotReady", "namespace": "shop", "pod": "web-1", "node": "worker-3"}


async def test_a_symptom_on_one_replica_is_known_by_its_cause_decided_on_another(
    replicas: list[PostgresStore],
) -> None:
    one, two = _stage(replicas[0], lambda: T0), _stage(replicas[1], lambda: T0)
    [node] = await one.exec([_work(NODE_DOWN, "node")])
    [pod] = await two.exec([_work(POD_ON_IT, "pod")])
    assert node.decision.action == "notify"
    assert (pod.decision.action, pod.decision.reason) == ("suppress", "symptom")
    assert pod.incident_key == node.group.group_key


async def test_a_re_fire_on_another_replica_is_a_repeat_and_a_flapping_alert_pages_once(
    replicas: list[PostgresStore],
) -> None:
    now = [T0]
    config = SuppressionConfig(repeat_interval_seconds=3600)
    stages = [_stage(store, lambda: now[0], config) for store in replicas]
    labels = {"alertname": "DiskFilling", "namespace": "shop", "pod": "db-0"}
    [first] = await stages[0].exec([_work(labels, "disk", starts=T0)])
    now[0] = T0 + timedelta(minutes=5)
    [again] = await stages[1].exec([_work(labels, "disk", starts=now[0])])
    # Flapping: each change decided by the next replica in turn.
    decisions = []
    for i in range(8):
        now[0] = T0 + timedelta(minutes=10, seconds=i)
        status = "firing" if i % 2 == 0 else "resolved"
        starts = T0 + timedelta(minutes=10, seconds=i - i % 2)
        [done] = await stages[i % 3].exec([_work({"alertname": "Flappy"}, "flap", status, starts)])
        decisions.append((done.decision.action, done.decision.reason))
    assert first.decision.action == "notify"
    assert (again.decision.action, again.decision.reason) == ("suppress", "repeat")
    assert decisions.count(("notify", "flapping")) == 1
    assert decisions[-1] == ("suppress", "flapping")


async def test_a_resolved_alert_whose_firing_was_held_on_another_replica_is_not_announced(
    replicas: list[PostgresStore],
) -> None:
    config = SuppressionConfig(resolved_grace_seconds=60)
    one, two = _stage(replicas[0], lambda: T0, config), _stage(replicas[1], lambda: T0, config)
    labels = {"alertname": "Blip", "namespace": "shop", "pod": "web-2"}
    [held] = await one.exec([_work(labels, "blip")])
    [resolved] = await two.exec([_work(labels, "blip", "resolved")])
    assert held.decision.action == "hold"
    assert (resolved.decision.action, resolved.decision.reason) == ("suppress", "resolved_in_grace")


async def test_one_replica_leads_and_another_takes_over_when_it_is_gone(replicas: list[PostgresStore]) -> None:
    first = [await store.leading() for store in replicas]
    again = [await store.leading() for store in replicas]
    leader = replicas[first.index(True)]
    await leader.close()  # as the process dies: its session ends, and the lock with it
    others = [store for store in replicas if store is not leader]
    after = [await store.leading() for store in others]
    assert first.count(True) == 1
    assert again == first
    assert after.count(True) == 1


async def test_replicas_that_do_not_lead_keep_one_session_each_for_asking(postgres_server: PostgresServer) -> None:
    """Not a new connection per replica every few seconds: each asks again on its own."""
    url = postgres_server.new_database()
    replicas = [await PostgresStore.open(url, password=postgres_server.password) for _ in range(3)]
    try:

        async def askers() -> set[int]:
            async with await psycopg.AsyncConnection.connect(
                url, password=postgres_server.password, autocommit=True
            ) as conn:
                rows = await (
                    await conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                        " AND query LIKE 'SELECT pg_try_advisory_lock%%'"
                    )
                ).fetchall()
            return {pid for (pid,) in rows}

        first = [await store.leading() for store in replicas]
        sessions = await askers()
        for _ in range(3):
            assert [await store.leading() for store in replicas] == first
        assert first.count(True) == 1
        assert len(sessions) == 3  # the leader's, and one per replica that waits
        waiting = await askers()  # the leader's session now says SELECT 1
        assert len(waiting) == 2
        assert waiting < sessions  # the same sessions, asked again
    finally:
        for store in replicas:
            await store.close()


DIGESTS = load(
    """
suppression:
  digest_interval_seconds: 3600
  rules: [{name: quiet-info, matchers: ['severity="info"'], action: digest}]
notify:
  default_urls: ["json://chat"]
""",
    {},
)


async def _suppressed_one(store: PostgresStore, n: int, now: datetime) -> None:
    body = SAMPLE | {"alerts": [SAMPLE["alerts"][0] | {"fingerprint": f"quiet{n}"}]}
    await accept(store, parse_webhook(body), now)
    [queued] = await store.claim(1, now)
    await finish(store, queued.id, outcome_of(queued, "suppress", reason="rule", rule="quiet-info"), [], now)


async def test_digests_go_out_once_per_period_across_replicas(replicas: list[PostgresStore]) -> None:
    clock = FakeClock()
    checks = [0, 0, 0]
    keepers = []
    for store in replicas:
        outbox = Outbox(store, FlakyChannel(0), RetryPolicy(3, 1, 10), Metrics(), concurrency=1, clock=clock)
        keepers.append(Watchkeeper(DIGESTS, store, outbox, Memory(), clock))

    def counting(i: int) -> Callable[[], Awaitable[bool]]:
        async def leading() -> bool:
            checks[i] += 1
            return await replicas[i].leading()

        return leading

    tasks = [
        asyncio.create_task(keeper.run(every_seconds=0.01, leading=counting(i))) for i, keeper in enumerate(keepers)
    ]
    digests: list[str] = []
    try:
        for period in range(1, 4):
            clock.advance(1)
            await _suppressed_one(replicas[period % 3], period, clock())
            clock.advance(3600)

            async def digest_sent(expected: int = period) -> bool:
                found = await replicas[0].due_deliveries(clock() + timedelta(days=1), 100)
                digests.extend(d.title for d in found)
                return len(digests) >= expected

            await _eventually(digest_sent)
            ran = sum(checks)

            async def looked_again(ran: int = ran) -> bool:  # every replica had many more chances to send one
                return sum(checks) > ran + 30

            await _eventually(looked_again)
            digests.extend(d.title for d in await replicas[0].due_deliveries(clock() + timedelta(days=1), 100))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert len(digests) == 3, digests
    assert all(title.startswith("[DIGEST]") for title in digests)
