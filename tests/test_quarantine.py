"""Never silent: what cannot be handled is refused at intake or set aside with its error,
and the alerts after it still page."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials, create_app
from receiver.config import Config, NotifyConfig, StoreConfig
from receiver.metrics import Metrics
from receiver.models import message_from_wire
from receiver.pipeline.render import RenderStage
from receiver.pipeline.route import RouteStage
from receiver.pipeline.stage import Pipeline, Stage, Work
from receiver.service.channels import JsonLinesChannel
from receiver.service.outbox import Outbox, RetryPolicy
from receiver.service.priority import IntakeActivity
from receiver.service.worker import Worker
from receiver.store.sqlite import SqliteStore
from receiver.wire import PayloadError, WireWebhook, decode_webhook

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def body(*alerts: dict[str, Any], group_key: str = '{}:{alertname="x"}') -> bytes:
    return json.dumps({"version": "4", "status": "firing", "groupKey": group_key, "alerts": list(alerts)}).encode()


def alert(name: str, starts_at: str = "2026-11-27T11:00:00Z", **fields: Any) -> dict[str, Any]:
    return {"status": "firing", "labels": {"alertname": name, "severity": "critical"}, "startsAt": starts_at, **fields}


def config(tmp_path: Path) -> Config:
    return Config(
        store=StoreConfig(path=str(tmp_path / "kb.db")),
        notify=NotifyConfig(default_urls=(f"jsonl://{tmp_path}/n.jsonl",)),
    )


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 15.0) -> bool:
    """True as soon as `check` is; False if it never became true within `seconds`."""
    for _ in range(int(seconds / 0.02)):
        if await check():
            return True
        await asyncio.sleep(0.02)
    return await check()


def paged_names(tmp_path: Path) -> str:
    sink = tmp_path / "n.jsonl"
    return sink.read_text() if sink.exists() else ""


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(config(tmp_path), credentials=Credentials()))) as test_client:
        yield test_client


# -- intake refuses what it can tell will not convert ---------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"startsAt": "9999-12-31T23:59:59-23:59"}, "alerts[0].startsAt"),
        ({"startsAt": "0002-01-01T00:00:00+00:00", "endsAt": "9999-12-31T23:00:00-01:00"}, "alerts[0].endsAt"),
        ({"startsAt": "0001-01-01T00:00:00+05:00"}, "alerts[0].startsAt"),
    ],
)
async def test_a_time_that_leaves_the_calendar_in_utc_is_a_400_naming_the_field(
    client: TestClient[Any, Any], fields: dict[str, str], field: str
) -> None:
    response = await client.post("/api/v1/alerts", data=body(alert("Odd", **fields)))
    assert (response.status, (await response.json())["field"]) == (400, field)


@pytest.mark.parametrize("ends_at", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00-05:00"])
def test_an_end_in_year_one_with_any_offset_means_no_end(ends_at: str) -> None:
    message = message_from_wire(decode_webhook(body(alert("Odd", endsAt=ends_at))))
    assert message.alerts[0].ends_at is None


def test_a_stored_body_whose_time_overflows_is_a_payload_error_not_an_overflow() -> None:
    # As an older version stored it: decoded without today's checks.
    wire = msgspec.json.decode(body(alert("Old"), alert("Odd", "9999-12-31T23:59:59-23:59")), type=WireWebhook)
    with pytest.raises(PayloadError) as raised:
        message_from_wire(wire)
    assert raised.value.field == "alerts[1].startsAt"


# -- a stored body that no longer expands is quarantined, and the queue goes on -------------

POISON = body(alert("Overflowing", "9999-12-31T23:59:59-23:59", fingerprint="f00d"), group_key="poison")


async def _seed(tmp_path: Path, raw: bytes) -> None:
    """What an older version acknowledged: `accept` keeps a body as given."""
    store = await SqliteStore.open(tmp_path / "kb.db")
    await store.accept(raw, 1, NOW)
    await store.close()


async def _quarantine(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await (await client.get("/api/v1/quarantine")).json())["items"]
    return items


async def test_an_unexpandable_stored_alert_does_not_stop_the_next_from_paging(tmp_path: Path) -> None:
    await _seed(tmp_path, POISON)
    async with TestClient(TestServer(create_app(config(tmp_path), credentials=Credentials()))) as client:
        assert (await client.post("/api/v1/alerts", data=body(alert("AfterPoison")))).status == 200

        async def paged() -> bool:
            return "AfterPoison" in paged_names(tmp_path)

        assert await eventually(paged)


async def test_an_unexpandable_stored_alert_is_listed_with_its_stage_and_error(tmp_path: Path) -> None:
    await _seed(tmp_path, POISON)
    async with TestClient(TestServer(create_app(config(tmp_path), credentials=Credentials()))) as client:

        async def listed() -> bool:
            return bool(await _quarantine(client))

        assert await eventually(listed)
        items = await _quarantine(client)
    assert [(i["stage"], i["alertname"], i["fingerprint"], "alerts[0].startsAt" in i["error"]) for i in items] == [
        ("expand", "Overflowing", "f00d", True)
    ]


async def test_an_unexpandable_stored_alert_is_counted_and_the_app_stays_ready(tmp_path: Path) -> None:
    await _seed(tmp_path, POISON)
    metrics = Metrics()
    async with TestClient(TestServer(create_app(config(tmp_path), metrics=metrics, credentials=Credentials()))) as c:

        async def counted() -> bool:
            return metrics.registry.get_sample_value("kubebot_alerts_quarantined_total", {"stage": "expand"}) == 1.0

        assert await eventually(counted)
        ready = await c.get("/readyz")
        assert (ready.status, await ready.json()) == (200, {"status": "ready"})


async def test_after_a_restart_on_the_same_store_the_quarantine_stays_and_alerts_still_page(tmp_path: Path) -> None:
    await _seed(tmp_path, POISON)
    async with TestClient(TestServer(create_app(config(tmp_path), credentials=Credentials()))) as client:

        async def listed() -> bool:
            return bool(await _quarantine(client))

        assert await eventually(listed)
    async with TestClient(TestServer(create_app(config(tmp_path), credentials=Credentials()))) as client:
        assert (await client.post("/api/v1/alerts", data=body(alert("AfterRestart")))).status == 200

        async def paged() -> bool:
            return "AfterRestart" in paged_names(tmp_path)

        assert await eventually(paged)
        ready = await client.get("/readyz")
        items = await _quarantine(client)
    assert (ready.status, [i["alertname"] for i in items]) == (200, ["Overflowing"])


async def test_the_dashboard_lists_quarantined_alerts_escaped(tmp_path: Path) -> None:
    await _seed(tmp_path, body(alert("<b>Overflowing</b>", "9999-12-31T23:59:59-23:59"), group_key="poison"))
    async with TestClient(TestServer(create_app(config(tmp_path), credentials=Credentials()))) as client:

        async def listed() -> bool:
            return bool(await _quarantine(client))

        assert await eventually(listed)
        page = await (await client.get("/quarantine")).text()
    assert "&lt;b&gt;Overflowing&lt;/b&gt;" in page


# -- a poison alert in a group: the others page, it is set aside, not released forever -------


class FailsOn:
    """A stage that raises on one alert name, as a bug in a real stage would."""

    def __init__(self, name: str) -> None:
        self._name = name

    async def exec(self, batch: Sequence[Work]) -> list[Work]:
        if any(w.alert.name == self._name for w in batch):
            raise ValueError(f"cannot handle {self._name}")
        return list(batch)


async def worker_on(
    tmp_path: Path, *first: Stage, intake: IntakeActivity | None = None
) -> tuple[SqliteStore, Worker, ThreadPoolExecutor]:
    """A worker on a fresh SQLite store, its pipeline `first` then routing and rendering
    (the fallback too), paging a JSON-lines file. Close the store and the pool after."""
    store = await SqliteStore.open(tmp_path / "kb.db")
    pool = ThreadPoolExecutor(max_workers=1)
    metrics = Metrics()
    outbox = Outbox(
        store, JsonLinesChannel(pool, lambda: NOW), RetryPolicy(3, 0.1, 0.1), metrics, concurrency=1, clock=lambda: NOW
    )
    stages: list[Stage] = [*first, RouteStage(config(tmp_path)), RenderStage()]
    worker = Worker(store, Pipeline(stages), Pipeline(stages), outbox, metrics, lambda: NOW, intake=intake)
    return store, worker, pool


async def _worker_with_poison(tmp_path: Path) -> tuple[SqliteStore, Worker, ThreadPoolExecutor]:
    store, worker, pool = await worker_on(tmp_path, FailsOn("Poison"))
    raw = body(alert("Poison"), alert("Healthy"), alert("AlsoHealthy"))
    await store.accept(raw, 3, NOW)
    return store, worker, pool


async def test_the_others_of_a_group_page_when_one_alert_fails_even_the_fallback(tmp_path: Path) -> None:
    store, worker, pool = await _worker_with_poison(tmp_path)
    await worker.process_available()
    titles = sorted(d.title for d in await store.due_deliveries(NOW, 10))
    await store.close()
    pool.shutdown()
    assert titles == ["[FIRING] AlsoHealthy (critical)", "[FIRING] Healthy (critical)"]


async def test_the_alert_that_fails_even_the_fallback_is_quarantined_not_claimed_again(tmp_path: Path) -> None:
    store, worker, pool = await _worker_with_poison(tmp_path)
    await worker.process_available()
    again = await worker.process_available()
    items = await store.quarantined(10)
    pending = store.pending_count()
    await store.close()
    pool.shutdown()
    assert (again, pending) == (0, 0)
    assert [(i.stage, i.alertname, i.error) for i in items] == [
        ("fails_on", "Poison", "StageFailed: fails_on: ValueError: cannot handle Poison")
    ]


async def test_the_incident_list_links_to_the_quarantine_when_it_holds_alerts(tmp_path: Path) -> None:
    await _seed(tmp_path, POISON)
    async with TestClient(TestServer(create_app(config(tmp_path), credentials=Credentials()))) as client:

        async def listed() -> bool:
            return bool(await _quarantine(client))

        assert await eventually(listed)
        page = await (await client.get("/")).text()
    assert '<a href="/quarantine">1 alert quarantined</a>' in page


# -- start-up recall skips an outcome it cannot read ----------------------------------------


def _rewrite_stored_outcomes(tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    """Every stored outcome as an older version (or a damaged disk) might have left it."""
    with sqlite3.connect(tmp_path / "kb.db") as conn:
        rows = conn.execute("SELECT id, outcome_json FROM alerts WHERE outcome_json IS NOT NULL").fetchall()
        for alert_id, stored in rows:
            changed = json.dumps(change(json.loads(stored)))
            conn.execute("UPDATE alerts SET outcome_json = ? WHERE id = ?", (changed, alert_id))


@pytest.mark.parametrize(
    "damage",
    [
        # Enrichment of another shape (a list): no outcome at all, the store leaves it out.
        lambda outcome: {**outcome, "enrichment": ["written", "by", "an", "older", "version"]},
        # An outcome whose alert recall cannot rebuild: recall fails, start-up goes on.
        lambda outcome: {**outcome, "alert": {**outcome["alert"], "startsAt": "not a time"}},
    ],
    ids=["not-an-outcome", "alert-without-a-time"],
)
async def test_a_stored_outcome_recall_cannot_read_does_not_stop_start_up_or_paging(
    tmp_path: Path, damage: Callable[[dict[str, Any]], object]
) -> None:
    async with TestClient(TestServer(create_app(config(tmp_path), credentials=Credentials()))) as client:
        assert (await client.post("/api/v1/alerts", data=body(alert("First")))).status == 200

        async def first_paged() -> bool:
            return "First" in paged_names(tmp_path)

        assert await eventually(first_paged)
    _rewrite_stored_outcomes(tmp_path, damage)
    async with TestClient(TestServer(create_app(config(tmp_path), credentials=Credentials()))) as client:
        assert (await client.post("/api/v1/alerts", data=body(alert("Second")))).status == 200

        async def second_paged() -> bool:
            return "Second" in paged_names(tmp_path)

        assert await eventually(second_paged)


@pytest.mark.parametrize("limit", ["²", "١٠", "+5", "05", "0", "abc"])
async def test_a_non_canonical_quarantine_limit_is_a_400_not_a_503(client: TestClient[Any, Any], limit: str) -> None:
    response = await client.get("/api/v1/quarantine", params={"limit": limit})
    assert response.status == 400
