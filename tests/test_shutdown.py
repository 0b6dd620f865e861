"""Shutdown lets a worker finish the alert it is on, within the grace period."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from enrichers.base import AlertInput, EnrichContext, Enrichment
from receiver.app import Credentials, create_app
from receiver.config import Config, NotifyConfig, ServerConfig, StoreConfig
from receiver.pipeline.sources import Sources
from receiver.store.base import IncidentQuery
from receiver.store.sqlite import SqliteStore
from tests.conftest import fixture_json


class SlowSource:
    """Says when it has started, and answers only once shutdown has begun."""

    name = "slow"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.shutdown_began = asyncio.Event()

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        self.started.set()
        await self.shutdown_began.wait()
        return Enrichment(self.name, "ok", {}, ("took its time",))

    async def on_shutdown(self, _: web.Application) -> None:
        self.shutdown_began.set()


async def test_an_alert_in_the_pipeline_when_shutdown_begins_is_finished_and_its_page_recorded(
    tmp_path: Path,
) -> None:
    source = SlowSource()

    async def sources(_: Config) -> Sources:
        return Sources(enrichers=[source])

    config = Config(
        server=ServerConfig(shutdown_grace_seconds=5),
        store=StoreConfig(path=str(tmp_path / "kb.db")),
        notify=NotifyConfig(default_urls=("json://127.0.0.1:9/nowhere",)),
    )
    app = create_app(config, credentials=Credentials(), sources_factory=sources)
    app.on_shutdown.append(source.on_shutdown)  # runs before the workers are drained
    async with TestClient(TestServer(app)) as c:
        assert (
            await c.post("/api/v1/alerts", json=fixture_json("alertmanager/alertmanager_webhook_sample.json"))
        ).status == 200
        await asyncio.wait_for(source.started.wait(), 10)
    store = await SqliteStore.open(tmp_path / "kb.db")
    incidents = await store.incidents(IncidentQuery())
    detail = await store.incident(incidents[0].id or 0)
    await store.close()
    assert store.pending_count() == 0
    assert detail is not None
    assert detail.alerts[0].outcome.enrichment["slow"].summary == ("took its time",)
    assert [d.state for d in detail.deliveries] == ["pending"]  # recorded, to be sent after restart
