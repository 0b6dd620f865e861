"""The incidents API: listing with filters and cursor, one incident in full, 400/401/404."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials, create_app
from receiver.config import Config, NotifyConfig, StoreConfig
from receiver.incidents import Incident
from receiver.pipeline.outcome import decode_outcome
from receiver.store.base import IncidentDetail, StoredOutcome
from receiver.web.api import incident_json
from tests.conftest import fixture_json
from tests.test_outcome import STORED_PAGED

TOKEN = "api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    config = Config(
        store=StoreConfig(path=str(tmp_path / "kb.db")),
        notify=NotifyConfig(default_urls=(f"jsonl://{tmp_path}/n.jsonl", "json://user:secret@127.0.0.1:9/x")),
    )
    async with TestClient(TestServer(create_app(config, credentials=Credentials(bearer_token=TOKEN)))) as c:
        yield c


async def _post_and_wait(client: TestClient[Any, Any], body: dict[str, Any], alerts: int) -> list[dict[str, Any]]:
    """Post, then wait until `alerts` alerts in all have been folded into incidents."""
    assert (await client.post("/api/v1/alerts", json=body, headers=AUTH)).status == 200
    for _ in range(200):
        listed = await (await client.get("/api/v1/incidents", headers=AUTH)).json()
        if sum(i["alert_count"] for i in listed["incidents"]) >= alerts:
            return list(listed["incidents"])
        await asyncio.sleep(0.02)
    raise AssertionError("incident did not appear")


async def test_an_alert_group_becomes_an_incident_with_its_alerts_and_deliveries(
    client: TestClient[Any, Any],
) -> None:
    incidents = await _post_and_wait(client, fixture_json("alertmanager/alertmanager_webhook_sample_group3.json"), 3)
    detail = await (await client.get(f"/api/v1/incidents/{incidents[0]['id']}", headers=AUTH)).json()
    assert (incidents[0]["status"], incidents[0]["severity"], incidents[0]["firing_alerts"]) == (
        "firing",
        "critical",
        3,
    )
    assert [a["labels"]["pod"] for a in detail["alerts"]] == ["api-1", "api-2", "db-0"]
    assert [d["decision"] for d in detail["decisions"]] == ["notify"] * 3
    assert len(detail["notifications"]) == 2  # the group's one message, to each of 2 channels
    assert [d["sent_with"] for d in detail["decisions"]].count(None) == 1
    assert "secret" not in str(detail)
    assert {"id", "alerts", "enrichments", "root_causes", "decisions", "notifications"} <= set(detail)


async def test_filters_and_cursor_page_through_newest_first(client: TestClient[Any, Any]) -> None:
    for name in ("A", "B", "C"):
        body = fixture_json("alertmanager/alertmanager_webhook_sample.json")
        body["groupKey"] = f"group-{name}"
        body["alerts"][0]["fingerprint"] = f"fp-{name}"
        body["alerts"][0]["labels"]["alertname"] = f"Alert{name}"
        await client.post("/api/v1/alerts", json=body, headers=AUTH)
    await _post_and_wait(client, fixture_json("alertmanager/alertmanager_webhook_sample.json"), 4)
    first = await (await client.get("/api/v1/incidents?limit=2", headers=AUTH)).json()
    rest = await (await client.get(f"/api/v1/incidents?limit=2&cursor={first['next']}", headers=AUTH)).json()
    by_text = await (await client.get("/api/v1/incidents?text=AlertB", headers=AUTH)).json()
    resolved = await (await client.get("/api/v1/incidents?status=resolved", headers=AUTH)).json()
    ids = [i["id"] for i in first["incidents"] + rest["incidents"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 4
    assert [i["title"] for i in by_text["incidents"]] == ["AlertB Pod default/checkout-7d9f"]
    assert resolved == {"incidents": [], "next": None}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/incidents/99999", 404),
        ("/api/v1/incidents/abc", 404),
        ("/api/v1/incidents?limit=0", 400),
        ("/api/v1/incidents?limit=x", 400),
        ("/api/v1/incidents?status=open", 400),
        ("/api/v1/incidents?cursor=-3", 400),
    ],
)
async def test_bad_requests_get_a_clear_4xx(client: TestClient[Any, Any], path: str, status: int) -> None:
    response = await client.get(path, headers=AUTH)
    assert response.status == status
    assert "error" in await response.json()


async def test_the_api_needs_the_same_credentials_as_intake(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/api/v1/incidents")).status == 401


def test_each_alert_shows_the_causes_ranked_for_it_and_the_incident_its_latest() -> None:
    outcome = decode_outcome(STORED_PAGED)
    other = msgspec.structs.replace(outcome, root_causes=outcome.root_causes[::-1])
    incident = Incident(1, "k", "t", "firing", "critical", "shop", 0.0, 0.0, None, "api", True, 2, 2)
    detail = IncidentDetail(incident, (StoredOutcome(1, 0.0, 0.0, outcome), StoredOutcome(2, 0.0, 0.0, other)), ())

    shown = incident_json(detail)

    assert [[c["service"] for c in a["root_causes"]] for a in shown["alerts"]] == [["api", "db"], ["db", "api"]]
    assert [c["service"] for c in shown["root_causes"]] == ["db", "api"]
