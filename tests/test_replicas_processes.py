"""Several real `kubebot serve` processes on one PostgreSQL behave as one KubeBot: the HA
pair posting every group to every replica pages each alert once, a replica killed with
SIGKILL mid-storm loses nothing, the leader killed with SIGKILL hands its work to one other
replica, and a database outage is a 503 that ends by itself."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from receiver.store.postgres import LEADER_LOCK, LOCK_CLASS
from tests.conftest import alerts_paged
from tests.postgres_server import PostgresServer
from tests.processes import KubebotProcess

GROUP_SIZE = 2


def _group(g: int) -> dict[str, Any]:
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "StormAlert", "namespace": "shop", "pod": f"web-{g}-{i}", "severity": "warning"},
            "annotations": {"summary": "storm"},
            "startsAt": "2026-11-25T14:57:37Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": f"{g:04d}{i:02d}",
        }
        for i in range(GROUP_SIZE)
    ]
    return {
        "version": "4",
        "groupKey": f'{{}}:{{group="{g}"}}',
        "status": "firing",
        "receiver": "kubebot",
        "groupLabels": {"group": str(g)},
        "commonLabels": {"alertname": "StormAlert"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "truncatedAlerts": 0,
        "alerts": alerts,
    }


def _pods(groups: range) -> list[str]:
    return sorted(f"shop/web-{g}-{i}" for g in groups for i in range(GROUP_SIZE))


def _paged(sink: Path) -> list[str]:
    if not sink.exists():
        return []
    pages = [json.loads(line) for line in sink.read_text().splitlines() if line.strip()]
    return [subject for _, subject in alerts_paged(pages)]


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def _post(session: aiohttp.ClientSession, replica: KubebotProcess, body: dict[str, Any]) -> int:
    try:
        async with session.post(f"{replica.url}/api/v1/alerts", json=body) as response:
            return response.status
    except aiohttp.ClientError:
        return 0  # the replica is gone: as for Alertmanager, not acknowledged


def _replicas(
    tmp_path: Path, server: PostgresServer, count: int, sink: Path | None, **sections: Any
) -> list[KubebotProcess]:
    """`count` replicas on one new database, paging to `sink` (None: each to a sink of its
    own, `pages.jsonl` in its work directory); `sections` are added to their config."""
    url = server.new_database()
    made = []
    for i in range(count):
        workdir = tmp_path / f"replica-{i}"
        workdir.mkdir()
        config = {
            "store": {"url": url, "password_file": str(server.password_file), "lease_seconds": 5},
            "notify": {"default_urls": [f"jsonl://{sink or workdir / 'pages.jsonl'}"], "timeout_seconds": 2},
            **sections,
        }
        made.append(KubebotProcess.create(workdir, config))
    return made


@pytest.fixture
def stopped_at_end() -> Iterator[list[KubebotProcess]]:
    started: list[KubebotProcess] = []
    yield started
    for replica in started:
        replica.stop()


async def _start_together(replicas: list[KubebotProcess], started: list[KubebotProcess]) -> None:
    started.extend(replicas)
    await asyncio.gather(*(asyncio.to_thread(r.start) for r in replicas))


async def test_three_replicas_started_together_page_each_alert_the_ha_pair_sent_to_all_once(
    postgres_server: PostgresServer, tmp_path: Path, stopped_at_end: list[KubebotProcess]
) -> None:
    sink = tmp_path / "pages.jsonl"
    replicas = _replicas(tmp_path, postgres_server, 3, sink)
    await _start_together(replicas, stopped_at_end)
    groups = range(20)
    async with aiohttp.ClientSession() as session:
        # Both Alertmanagers of the pair, each to every replica, for every group.
        answers = await asyncio.gather(
            *(_post(session, replica, _group(g)) for g in groups for replica in replicas for _ in range(2))
        )

        async def all_paged() -> bool:
            return len(set(_paged(sink))) == len(groups) * GROUP_SIZE

        await _eventually(all_paged)
        views = []
        for replica in replicas:
            async with session.get(f"{replica.url}/api/v1/incidents") as response:
                views.append(await response.json())
    assert set(answers) == {200}
    assert sorted(_paged(sink)) == _pods(groups)
    assert views[0] == views[1] == views[2]


async def test_a_replica_killed_mid_storm_loses_nothing(
    postgres_server: PostgresServer, tmp_path: Path, stopped_at_end: list[KubebotProcess]
) -> None:
    sink = tmp_path / "pages.jsonl"
    doomed, survivor = _replicas(tmp_path, postgres_server, 2, sink)
    await _start_together([doomed, survivor], stopped_at_end)
    groups = range(60)
    async with aiohttp.ClientSession() as session:
        # A burst to the doomed replica, killed the moment it has acknowledged it: its
        # workers are still at it.
        first = await asyncio.gather(*(_post(session, doomed, _group(g)) for g in groups[:40]))
        doomed.kill()
        rest = [await _post(session, survivor, _group(g)) for g in groups[40:]]
        acknowledged = [g for g, status in zip(groups, first + rest, strict=True) if status == 200]

        async def all_paged() -> bool:
            return set(_paged(sink)) >= set(_pods(range(60)))

        # Claims the dead replica held come back once their lease (5 s) ends.
        await _eventually(all_paged)
    paged = Counter(_paged(sink))
    assert acknowledged == list(groups)
    assert sorted(paged) == _pods(groups)
    # At least once: only a page sent by the dead replica and not yet recorded may repeat.
    assert sum(paged.values()) - len(paged) <= GROUP_SIZE * 2, paged.most_common(5)


HEARTBEAT_PAGE = "[FIRING] KubeBotHeartbeatMissing"


def _watching_replicas(tmp_path: Path, server: PostgresServer, count: int) -> list[KubebotProcess]:
    """Replicas that page a missing heartbeat (none ever arrives) after 1 s, each to a sink of
    its own: whichever replica sends a page, its sink says which one's watch raised it."""
    heartbeat = {"matchers": ['alertname="Watchdog"'], "missing_after_seconds": 1}
    return _replicas(tmp_path, server, count, None, suppression={"heartbeat": heartbeat})


def _heartbeat_pages(replica: KubebotProcess) -> int:
    sink = replica.workdir / "pages.jsonl"
    lines = sink.read_text().splitlines() if sink.exists() else []
    return sum(json.loads(line)["title"].startswith(HEARTBEAT_PAGE) for line in lines if line.strip())


async def _leader_gauges(session: aiohttp.ClientSession, replicas: list[KubebotProcess]) -> list[float]:
    gauges = []
    for replica in replicas:
        async with session.get(f"{replica.url}/metrics") as response:
            text = await response.text()
        [value] = [line.split()[1] for line in text.splitlines() if line.startswith("kubebot_leader ")]
        gauges.append(float(value))
    return gauges


def _lock_holders(server: PostgresServer, url: str) -> list[int]:
    """The backends (server pids) holding the leader lock: at most one."""
    with psycopg.connect(url, password=server.password, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s AND objsubid = 2",
            (LOCK_CLASS, LEADER_LOCK),
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def _backend_alive(server: PostgresServer, url: str, pid: int) -> bool:
    with psycopg.connect(url, password=server.password, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None and row[0] == 1


async def test_the_leader_killed_with_sigkill_hands_the_heartbeat_watch_to_exactly_one_other_replica(
    postgres_server: PostgresServer, tmp_path: Path, stopped_at_end: list[KubebotProcess]
) -> None:
    replicas = _watching_replicas(tmp_path, postgres_server, 3)
    url = str(replicas[0].config["store"]["url"])
    await _start_together(replicas, stopped_at_end)
    samples: list[list[float]] = []  # every look at the gauges of the replicas alive then
    async with aiohttp.ClientSession() as session:

        async def one_leader(among: list[KubebotProcess]) -> bool:
            samples.append(await _leader_gauges(session, among))
            return samples[-1].count(1.0) == 1

        await _eventually(lambda: one_leader(replicas), timeout=20)
        leader = replicas[samples[-1].index(1.0)]
        [dead_session] = await asyncio.to_thread(_lock_holders, postgres_server, url)
        survivors = [r for r in replicas if r is not leader]
        survivor_pages_before = [_heartbeat_pages(r) for r in survivors]
        leader.kill()

        async def session_ended() -> bool:
            return not await asyncio.to_thread(_backend_alive, postgres_server, url, dead_session)

        # SIGKILL closes the socket in the kernel: the server sees the EOF and ends the
        # session (and its lock) without waiting for keepalives.
        await _eventually(session_ended, timeout=10)
        await _eventually(lambda: one_leader(survivors), timeout=20)
        successor = survivors[samples[-1].index(1.0)]
        bystander = next(r for r in survivors if r is not successor)

        async def successor_paged() -> bool:
            await one_leader(survivors)
            return _heartbeat_pages(successor) > 0

        await _eventually(successor_paged, timeout=20)
        [holder] = await asyncio.to_thread(_lock_holders, postgres_server, url)
    assert survivor_pages_before == [0, 0]  # followers run no watch
    assert all(sample.count(1.0) <= 1 for sample in samples), samples
    assert holder != dead_session
    assert _heartbeat_pages(bystander) == 0


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    server = PostgresServer.create()
    server.start()
    yield server
    server.remove()


async def test_replicas_answer_503_while_the_database_is_down_and_resume_by_themselves(
    own_server: PostgresServer, tmp_path: Path, stopped_at_end: list[KubebotProcess]
) -> None:
    sink = tmp_path / "pages.jsonl"
    replicas = _replicas(tmp_path, own_server, 2, sink)
    await _start_together(replicas, stopped_at_end)
    async with aiohttp.ClientSession() as session:
        before = [await _post(session, replica, _group(i)) for i, replica in enumerate(replicas)]
        await asyncio.to_thread(own_server.stop)
        during = [await _post(session, replica, _group(10 + i)) for i, replica in enumerate(replicas)]
        ready = []
        for replica in replicas:
            async with session.get(f"{replica.url}/readyz") as response:
                ready.append(response.status)
        await asyncio.to_thread(own_server.start)
        after: list[int] = []

        async def accepted_again() -> bool:
            after[:] = [await _post(session, replica, _group(20 + i)) for i, replica in enumerate(replicas)]
            return after == [200, 200]

        await _eventually(accepted_again)

        async def all_paged() -> bool:
            return set(_paged(sink)) == set(_pods(range(2))) | set(_pods(range(20, 22)))

        await _eventually(all_paged)
    assert (before, during, ready) == ([200, 200], [503, 503], [503, 503])
    assert sorted(_paged(sink)) == sorted(_pods(range(2)) + _pods(range(20, 22)))
