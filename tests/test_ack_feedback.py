"""Acknowledge and feedback: stored with the incident (who, when, what) and shown on it;
an acknowledged incident's repeats are not paged until it resolves, new alerts joining it
still are, and an incident nobody acknowledged pages its repeats as before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials, create_app
from receiver.config import Config, NotifyConfig, StoreConfig, SuppressionConfig

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(tmp_path: Path, clock: Clock) -> AsyncIterator[TestClient[Any, Any]]:
    config = Config(
        store=StoreConfig(path=str(tmp_path / "kb.db")),
        suppression=SuppressionConfig(repeat_interval_seconds=60, digest_interval_seconds=0),
        notify=NotifyConfig(default_urls=(f"jsonl://{tmp_path}/n.jsonl",)),
    )
    async with TestClient(TestServer(create_app(config, clock=clock, credentials=Credentials()))) as c:
        yield c


def _webhook(group: str, fingerprint: str, starts: datetime, pod: str) -> dict[str, Any]:
    labels = {"alertname": f"Crash-{group}", "namespace": "shop", "pod": pod, "severity": "critical"}
    return {
        "version": "4",
        "groupKey": group,
        "status": "firing",
        "alerts": [{"status": "firing", "labels": labels, "startsAt": starts.isoformat(), "fingerprint": fingerprint}],
    }


async def _post(client: TestClient[Any, Any], body: dict[str, Any], total: int) -> None:
    assert (await client.post("/api/v1/alerts", json=body)).status == 200
    for _ in range(300):
        listed = (await (await client.get("/api/v1/incidents")).json())["incidents"]
        if sum(i["alert_count"] for i in listed) >= total:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("alert not processed")


async def _incident(client: TestClient[Any, Any], group: str) -> dict[str, Any]:
    listed = (await (await client.get("/api/v1/incidents")).json())["incidents"]
    found = next(i for i in listed if i["title"].startswith(f"Crash-{group}"))
    detail: dict[str, Any] = await (await client.get(f"/api/v1/incidents/{found['id']}")).json()
    return detail


async def test_a_repeat_after_the_interval_pages_unless_the_incident_was_acknowledged(
    client: TestClient[Any, Any], clock: Clock
) -> None:
    await _post(client, _webhook("acked", "fa", T0, "a-1"), 1)
    await _post(client, _webhook("plain", "fb", T0, "b-1"), 2)
    acked = await _incident(client, "acked")
    response = await client.post(f"/api/v1/incidents/{acked['id']}/ack", json={"by": "ana", "note": "on it"})
    assert response.status == 200

    clock.now = T0 + timedelta(seconds=120)  # past repeat_interval_seconds
    again = T0 + timedelta(seconds=90)
    await _post(client, _webhook("acked", "fa", again, "a-1"), 3)
    await _post(client, _webhook("plain", "fb", again, "b-1"), 4)
    await _post(client, _webhook("acked", "fc", again, "a-2"), 5)  # a new alert joins the acked incident

    acked_detail, plain_detail = await _incident(client, "acked"), await _incident(client, "plain")
    assert [(d["fingerprint"], d["decision"], d["reason"]) for d in acked_detail["decisions"]] == [
        ("fa", "notify", None),
        ("fa", "suppress", "acknowledged"),
        ("fc", "notify", None),
    ]
    assert [(d["decision"], d["reason"]) for d in plain_detail["decisions"]] == [("notify", None), ("notify", None)]
    assert acked_detail["acknowledged"] == {"by": "ana", "at": (T0 + timedelta(seconds=0)).timestamp()}
    assert [(a["kind"], a["by"], a["note"]) for a in acked_detail["actions"]] == [("ack", "ana", "on it")]
    assert plain_detail["acknowledged"] is None


async def test_an_acknowledgement_ends_when_the_incident_resolves(client: TestClient[Any, Any], clock: Clock) -> None:
    await _post(client, _webhook("ends", "fe", T0, "e-1"), 1)
    first = await _incident(client, "ends")
    await client.post(f"/api/v1/incidents/{first['id']}/ack", json={"by": "ana"})
    resolved = _webhook("ends", "fe", T0, "e-1")
    resolved["alerts"][0] |= {"status": "resolved", "endsAt": (T0 + timedelta(seconds=30)).isoformat()}
    resolved["status"] = "resolved"
    await _post(client, resolved, 2)
    clock.now = T0 + timedelta(seconds=300)
    await _post(client, _webhook("ends", "fe", T0 + timedelta(seconds=200), "e-1"), 3)
    reopened = await _incident(client, "ends")
    assert reopened["id"] != first["id"]
    assert [(d["decision"], d["reason"]) for d in reopened["decisions"]] == [("notify", None)]
    assert reopened["acknowledged"] is None


async def test_feedback_is_stored_and_shown_on_the_incident(client: TestClient[Any, Any]) -> None:
    await _post(client, _webhook("fb", "ff", T0, "f-1"), 1)
    incident = await _incident(client, "fb")
    response = await client.post(
        f"/api/v1/incidents/{incident['id']}/feedback",
        json={"verdict": "noise", "cause": "Deployment shop/cart", "by": "bo", "note": "rollout"},
    )
    assert response.status == 200
    shown = await _incident(client, "fb")
    assert shown["feedback"] == [
        {"by": "bo", "at": T0.timestamp(), "note": "rollout", "verdict": "noise", "cause": "Deployment shop/cart"}
    ]
    assert [(a["kind"], a["details"]) for a in shown["actions"]] == [
        ("feedback", {"verdict": "noise", "cause": "Deployment shop/cart"})
    ]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/api/v1/incidents/1/feedback", {"verdict": "meh", "by": "a"}, 400, "verdict"),
        ("/api/v1/incidents/1/feedback", {"verdict": "useful"}, 400, "by"),
        ("/api/v1/incidents/1/feedback", {"verdict": "useful", "by": "a", "cause": 3}, 400, "cause"),
        ("/api/v1/incidents/1/ack", {"note": "x"}, 400, "by"),
        ("/api/v1/incidents/1/ack", ["by"], 400, "$"),
        ("/api/v1/incidents/999/ack", {"by": "a"}, 404, None),
        ("/api/v1/incidents/01/feedback", {"verdict": "useful", "by": "a"}, 404, None),
    ],
)
async def test_bad_actions_are_4xx_naming_the_field(
    client: TestClient[Any, Any], path: str, body: Any, status: int, field: str | None
) -> None:
    await _post(client, _webhook("bad", "fx", T0, "x-1"), 1)
    response = await client.post(path, json=body)
    assert response.status == status
    assert (await response.json()).get("field") == field


async def test_a_confirmed_cause_is_remembered_for_the_next_incident_of_that_alert_in_that_namespace(
    client: TestClient[Any, Any], clock: Clock
) -> None:
    await _post(client, _webhook("again", "fr", T0, "r-1"), 1)
    first = await _incident(client, "again")
    feedback = {"verdict": "useful", "cause": "Deployment shop/cart", "by": "ana"}
    assert (await client.post(f"/api/v1/incidents/{first['id']}/feedback", json=feedback)).status == 200
    resolved = _webhook("again", "fr", T0, "r-1")
    resolved["alerts"][0] |= {"status": "resolved", "endsAt": (T0 + timedelta(seconds=30)).isoformat()}
    await _post(client, resolved, 2)

    clock.now = T0 + timedelta(days=2)
    await _post(client, _webhook("again", "fr", T0 + timedelta(days=2), "r-1"), 3)
    elsewhere = _webhook("again", "fo", T0 + timedelta(days=2), "ledger-9")
    elsewhere["groupKey"] = "again-elsewhere"
    elsewhere["alerts"][0]["labels"]["namespace"] = "billing"
    await _post(client, elsewhere, 4)

    listed = (await (await client.get("/api/v1/incidents")).json())["incidents"]
    by_namespace = {}
    for item in listed:
        if item["id"] != first["id"]:
            detail = await (await client.get(f"/api/v1/incidents/{item['id']}")).json()
            by_namespace[item["namespace"]] = detail["root_causes"]
    assert {"service": "Deployment shop/cart", "score": 0.5, "evidence": ["confirmed by ana on 2026-11-20"]} in (
        by_namespace["shop"]
    )
    assert all(c["service"] != "Deployment shop/cart" for c in by_namespace["billing"])
