"""Memory stays bounded: a stuck pipeline makes intake refuse (503) at store.max_pending
instead of queueing without end, and history does not accumulate in the process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from enrichers.base import AlertInput, EnrichContext, Enrichment
from receiver.app import Credentials, create_app
from receiver.config import Config, EnrichmentConfig, NotifyConfig, StoreConfig
from receiver.pipeline.sources import Sources
from receiver.service.runtime import RUNTIME
from tests.conftest import alerts_paged
from tests.fakes.chaos_tools import post_alerts, rss_kib, storm_body, wait_until_idle
from tests.processes import KubebotProcess

MAX_PENDING = 20


class GatedEnricher:
    """An enrichment source that answers only once the test opens the gate."""

    name = "gate"

    def __init__(self) -> None:
        self.opened = asyncio.Event()

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        await self.opened.wait()
        return Enrichment(self.name, "ok", summary=("gate passed",))


async def test_stuck_pipeline_makes_intake_refuse_at_max_pending_and_drains_once_unstuck(tmp_path: Path) -> None:
    gate = GatedEnricher()
    sink = tmp_path / "pages.jsonl"

    async def gated_sources(_: Config) -> Sources:
        return Sources(enrichers=[gate])

    config = Config(
        store=StoreConfig(path=str(tmp_path / "kb.db"), max_pending=MAX_PENDING),
        enrichment=EnrichmentConfig(timeout_seconds=120),
        notify=NotifyConfig(default_urls=(f"jsonl://{sink}",)),
    )
    app = create_app(config, credentials=Credentials(), sources_factory=gated_sources)
    async with TestClient(TestServer(app)) as client:
        store = client.app[RUNTIME].store
        statuses = []
        for i in range(10):
            response = await client.post("/api/v1/alerts", json=storm_body(f"g{i}", [f"mem-{i}-{j}" for j in range(5)]))
            statuses.append(response.status)
        pending_while_stuck = store.pending_count()
        gate.opened.set()
        await wait_until_idle(str(client.make_url("")).rstrip("/"))
        after = await client.post("/api/v1/alerts", json=storm_body("after", ["mem-after"]))
        await wait_until_idle(str(client.make_url("")).rstrip("/"))
        pending_after, outbox_after = store.pending_count(), store.outbox_count()
    pages = alerts_paged(json.loads(line) for line in sink.read_text().splitlines())
    assert statuses == [200] * (MAX_PENDING // 5) + [503] * (10 - MAX_PENDING // 5)
    assert pending_while_stuck == MAX_PENDING
    assert (after.status, pending_after, outbox_after) == (200, 0, 0)
    assert len(pages) == len(set(pages)) == MAX_PENDING + 1


ROUNDS = 5
ALERTS_PER_ROUND = 1_000  # 50 groups of 20


def _round(tag: str) -> list[dict[str, Any]]:
    return [storm_body(f"{tag}-g{g}", [f"{tag}-{g}-{j}" for j in range(20)]) for g in range(50)]


async def _rss_after_rounds(tmp_path: Path, rounds: list[list[dict[str, Any]]]) -> list[int]:
    """Post each round at once, wait until it is paged, then read the process's RSS (KiB)."""
    kubebot = KubebotProcess.create(tmp_path, {"notify": {"default_urls": [f"jsonl://{tmp_path}/pages.jsonl"]}})
    await asyncio.to_thread(kubebot.start)
    assert kubebot.proc is not None
    rss: list[int] = []
    try:
        async with aiohttp.ClientSession() as session:
            for bodies in rounds:
                statuses = await asyncio.gather(*(post_alerts(session, kubebot.url, b) for b in bodies))
                assert set(statuses) == {200}
                await wait_until_idle(kubebot.url)
                rss.append(rss_kib(kubebot.proc.pid)[0])
    finally:
        await asyncio.to_thread(kubebot.stop)
    return rss


async def test_resident_memory_does_not_grow_when_alertmanager_resends_the_same_groups(tmp_path: Path) -> None:
    # Alertmanager re-sends every firing group each group_interval: that must cost nothing.
    same = _round("same")
    rss = await _rss_after_rounds(tmp_path, [same] * ROUNDS)
    assert (rss[-1] - rss[1]) / 1024 < 4, rss


async def test_resident_memory_per_distinct_alert_of_history_stays_small(tmp_path: Path) -> None:
    # Suppression remembers recent alerts in maps bounded at 50,000 entries each
    # (receiver/pipeline/suppress.py Memory.limit), so memory grows until that bound; this
    # keeps what one remembered alert costs small enough for the bound to matter.
    rss = await _rss_after_rounds(tmp_path, [_round(f"r{i}") for i in range(ROUNDS)])
    per_alert_kib = (rss[-1] - rss[1]) / (ALERTS_PER_ROUND * (ROUNDS - 2))
    assert per_alert_kib < 4, rss


async def test_deeply_nested_json_is_refused_with_400_without_holding_memory(tmp_path: Path) -> None:
    kubebot = KubebotProcess.create(tmp_path, {"notify": {"default_urls": [f"jsonl://{tmp_path}/pages.jsonl"]}})
    await asyncio.to_thread(kubebot.start)
    assert kubebot.proc is not None
    deep_alert = storm_body("deep", ["deep-0"])
    deep_alert["alerts"][0]["labels"]["nested"] = json.loads("[" * 500 + "]" * 500)
    bodies = [b"[" * 4_000_000, b'{"alerts": ' + b"{" * 2_000_000, json.dumps(deep_alert).encode()]
    try:
        before = rss_kib(kubebot.proc.pid)[0]
        async with aiohttp.ClientSession() as session:
            statuses = []
            for _ in range(5):
                for body in bodies:
                    headers = {"Content-Type": "application/json"}
                    async with session.post(f"{kubebot.url}/api/v1/alerts", data=body, headers=headers) as response:
                        statuses.append(response.status)
            async with session.get(f"{kubebot.url}/healthz") as health:
                healthy = health.status
        after = rss_kib(kubebot.proc.pid)[0]
    finally:
        await asyncio.to_thread(kubebot.stop)
    assert set(statuses) == {400}
    assert healthy == 200
    assert (after - before) / 1024 < 64, (before, after)
