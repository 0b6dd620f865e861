"""POST /api/v1/silences against Debian's real Alertmanager: the silences land there with
the alert's identifying matchers and the asked duration, cover the incident's firing
alerts and nothing else in the namespace; Alertmanager down is a 503, refusing a 502."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials, create_app
from receiver.config import AlertmanagerConfig, Config, NotifyConfig, StoreConfig
from tests.processes import AlertmanagerProcess

pytestmark = pytest.mark.skipif(
    AlertmanagerProcess.binary() is None, reason="Debian prometheus-alertmanager not installed"
)
STARTS = datetime.now(UTC) - timedelta(minutes=5)


def _labels(pod: str, alertname: str = "KubePodCrashLooping") -> dict[str, str]:
    return {
        "alertname": alertname,
        "severity": "warning",
        "namespace": "shop",
        "pod": pod,
        "container": "app",
        # Volatile: none of these may end up in a matcher.
        "instance": "10.1.2.3:8443",
        "endpoint": "https-main",
        "prometheus": "monitoring/k8s",
        "uid": "6d1c0a3e-0000-4000-8000-000000000001",
        "job": "kube-state-metrics",
    }


def _webhook(group: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": group,
        "status": "firing",
        "receiver": "kubebot",
        "alerts": [
            {
                "status": "firing",
                "labels": one,
                "annotations": {},
                "startsAt": STARTS.isoformat(),
                "fingerprint": f"fp-{one['pod']}",
            }
            for one in labels
        ],
    }


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[AlertmanagerProcess]:
    am = AlertmanagerProcess.start(tmp_path, "http://127.0.0.1:9/unused", "unused-token")
    yield am
    am.stop()


async def _client(tmp_path: Path, url: str) -> TestClient[Any, Any]:
    config = Config(
        store=StoreConfig(path=str(tmp_path / "kb.db")),
        alertmanager=AlertmanagerConfig(url=url, external_url="https://alertmanager.example.com/"),
        notify=NotifyConfig(default_urls=(f"jsonl://{tmp_path}/n.jsonl",)),
    )
    client = TestClient(TestServer(create_app(config, credentials=Credentials())))
    await client.start_server()
    return client


@pytest.fixture
async def kubebot(tmp_path: Path, alertmanager: AlertmanagerProcess) -> AsyncIterator[TestClient[Any, Any]]:
    client = await _client(tmp_path, f"http://127.0.0.1:{alertmanager.port}")
    yield client
    await client.close()


async def _incident_of(client: TestClient[Any, Any], body: dict[str, Any]) -> int:
    assert (await client.post("/api/v1/alerts", json=body)).status == 200
    for _ in range(300):
        listed = (await (await client.get("/api/v1/incidents")).json())["incidents"]
        found = [i for i in listed if i["title"].startswith(body["alerts"][0]["labels"]["alertname"])]
        mine = [i for i in found if i["alert_count"] >= len(body["alerts"])]
        if mine:
            detail = await (await client.get(f"/api/v1/incidents/{mine[0]['id']}")).json()
            pods = {a["labels"]["pod"] for a in detail["alerts"]}
            if pods == {a["labels"]["pod"] for a in body["alerts"]}:
                return int(mine[0]["id"])
        await asyncio.sleep(0.02)
    raise AssertionError("incident did not appear")


def _am_get(am: AlertmanagerProcess, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{am.port}{path}", timeout=5) as response:
        return json.loads(response.read())


async def test_an_incidents_firing_alerts_are_silenced_on_identifying_labels_and_nothing_else(
    kubebot: TestClient[Any, Any], alertmanager: AlertmanagerProcess
) -> None:
    incident = await _incident_of(kubebot, _webhook("g-crash", _labels("checkout-1"), _labels("checkout-2")))
    bystander = _labels("payments-0")  # same alert, same namespace, another incident
    await _incident_of(kubebot, _webhook("g-other", bystander))
    # Alertmanager holds all three, so that it says itself which its silences mute.
    alertmanager.post_alerts(
        [{"labels": _labels(p), "startsAt": STARTS.isoformat()} for p in ("checkout-1", "checkout-2", "payments-0")]
    )

    response = await kubebot.post(
        "/api/v1/silences",
        json={"incident_id": incident, "duration_seconds": 7200, "comment": "rolling back", "created_by": "ana"},
    )

    assert response.status == 200, await response.text()
    created = (await response.json())["silences"]
    assert len(created) == 2
    assert all(s["url"] == f"https://alertmanager.example.com/#/silences/{s['id']}" for s in created)
    stored = {s["id"]: s for s in _am_get(alertmanager, "/api/v2/silences")}
    matchers = sorted(
        sorted((m["name"], m["value"], m["isRegex"], m["isEqual"]) for m in stored[s["id"]]["matchers"])
        for s in created
    )
    assert matchers == [
        [
            (n, v, False, True)
            for n, v in (("alertname", "KubePodCrashLooping"), ("container", "app"), ("namespace", "shop"), ("pod", p))
        ]
        for p in ("checkout-1", "checkout-2")
    ]
    for s in created:
        one = stored[s["id"]]
        length = datetime.fromisoformat(one["endsAt"]) - datetime.fromisoformat(one["startsAt"])
        assert abs(length.total_seconds() - 7200) < 2
        assert (one["createdBy"], one["comment"], one["status"]["state"]) == ("ana", "rolling back", "active")
    silenced = await _silenced_pods(alertmanager)
    assert silenced == {"checkout-1": True, "checkout-2": True, "payments-0": False}
    detail = await (await kubebot.get(f"/api/v1/incidents/{incident}")).json()
    assert [(a["kind"], a["by"], a["note"]) for a in detail["actions"]] == [("silence", "ana", "rolling back")]
    assert {s["id"] for s in detail["actions"][0]["details"]["silences"]} == {s["id"] for s in created}


async def _silenced_pods(am: AlertmanagerProcess) -> dict[str, bool]:
    for _ in range(100):
        alerts = _am_get(am, "/api/v2/alerts")
        state = {a["labels"]["pod"]: bool(a["status"]["silencedBy"]) for a in alerts}
        if sum(state.values()) >= 2:
            return state
        await asyncio.sleep(0.05)
    return state


async def test_one_alert_and_explicit_matchers_are_silenced_too(
    kubebot: TestClient[Any, Any], alertmanager: AlertmanagerProcess
) -> None:
    incident = await _incident_of(kubebot, _webhook("g-one", _labels("cart-0")))
    alert_id = (await (await kubebot.get(f"/api/v1/incidents/{incident}")).json())["alerts"][0]["alert_id"]
    by_alert = await kubebot.post(
        "/api/v1/silences",
        json={"alert_id": alert_id, "duration_seconds": 60, "comment": "known", "created_by": "bo"},
    )
    explicit = await kubebot.post(
        "/api/v1/silences",
        json={
            "matchers": ['alertname="Watchdog"', 'namespace=~"shop|cart"'],
            "duration_seconds": 1,
            "comment": "quiet",
            "created_by": "bo",
        },
    )
    assert (by_alert.status, explicit.status) == (200, 200)
    stored = {s["id"]: s for s in _am_get(alertmanager, "/api/v2/silences")}
    explicit_id = (await explicit.json())["silences"][0]["id"]
    assert sorted((m["name"], m["value"], m["isRegex"]) for m in stored[explicit_id]["matchers"]) == [
        ("alertname", "Watchdog", False),
        ("namespace", "shop|cart", True),
    ]
    detail = await (await kubebot.get(f"/api/v1/incidents/{incident}")).json()
    assert [a["kind"] for a in detail["actions"]] == ["silence"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"duration_seconds": 60, "comment": "c", "created_by": "a"}, "incident_id"),
        ({"incident_id": 1, "alert_id": 1, "duration_seconds": 60, "comment": "c", "created_by": "a"}, "incident_id"),
        ({"incident_id": 1, "duration_seconds": 0, "comment": "c", "created_by": "a"}, "duration_seconds"),
        ({"incident_id": 1, "duration_seconds": 30 * 86400 + 1, "comment": "c", "created_by": "a"}, "duration_seconds"),
        ({"incident_id": 1, "duration_seconds": "60", "comment": "c", "created_by": "a"}, "duration_seconds"),
        ({"incident_id": 1, "duration_seconds": 60, "created_by": "a"}, "comment"),
        ({"incident_id": 1, "duration_seconds": 60, "comment": "c", "created_by": " "}, "created_by"),
        ({"incident_id": True, "duration_seconds": 60, "comment": "c", "created_by": "a"}, "incident_id"),
        ({"matchers": ['job=""'], "duration_seconds": 60, "comment": "c", "created_by": "a"}, "matchers"),
        ({"matchers": ["not a matcher"], "duration_seconds": 60, "comment": "c", "created_by": "a"}, "matchers[0]"),
        ([], "$"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(kubebot: TestClient[Any, Any], body: Any, field: str) -> None:
    response = await kubebot.post("/api/v1/silences", json=body)
    assert response.status == 400
    assert (await response.json())["field"] == field


async def test_an_unknown_incident_or_alert_is_a_404(kubebot: TestClient[Any, Any]) -> None:
    common = {"duration_seconds": 60, "comment": "c", "created_by": "a"}
    assert (await kubebot.post("/api/v1/silences", json={"incident_id": 999, **common})).status == 404
    assert (await kubebot.post("/api/v1/silences", json={"alert_id": 999, **common})).status == 404


async def test_alertmanager_down_is_a_503_and_nothing_is_recorded(
    kubebot: TestClient[Any, Any], alertmanager: AlertmanagerProcess
) -> None:
    incident = await _incident_of(kubebot, _webhook("g-down", _labels("api-0")))
    alertmanager.stop()
    response = await kubebot.post(
        "/api/v1/silences",
        json={"incident_id": incident, "duration_seconds": 60, "comment": "c", "created_by": "a"},
    )
    assert response.status == 503
    assert "unreachable" in (await response.json())["error"]
    detail = await (await kubebot.get(f"/api/v1/incidents/{incident}")).json()
    assert detail["actions"] == []


async def test_alertmanager_refusing_is_a_502(tmp_path: Path) -> None:
    async def refuse(_: web.Request) -> web.Response:
        return web.json_response("silence invalid: bad matcher", status=400)

    refuser = web.Application()
    refuser.router.add_post("/api/v2/silences", refuse)
    async with TestServer(refuser) as server:
        client = await _client(tmp_path, str(server.make_url("/")))
        try:
            incident = await _incident_of(client, _webhook("g-refused", _labels("api-1")))
            response = await client.post(
                "/api/v1/silences",
                json={"incident_id": incident, "duration_seconds": 60, "comment": "c", "created_by": "a"},
            )
            assert response.status == 502
            assert "bad matcher" in (await response.json())["error"]
        finally:
            await client.close()


async def test_without_alertmanager_configured_silences_are_a_409(tmp_path: Path) -> None:
    config = Config(store=StoreConfig(path=str(tmp_path / "kb.db")))
    async with TestClient(TestServer(create_app(config, credentials=Credentials()))) as client:
        response = await client.post(
            "/api/v1/silences",
            json={"matchers": ['alertname="X"'], "duration_seconds": 60, "comment": "c", "created_by": "a"},
        )
        assert response.status == 409
