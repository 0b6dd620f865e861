"""Against Debian's real Alertmanager sending its webhooks to kubebot: an alert silenced
from its incident that Alertmanager then stops sending (it resolves).

Alertmanager (0.25, Debian) never sends the resolve of an alert that was silenced when it
resolved: its notification pipeline mutes it, and the group forgets it once flushed, so
not even expiring the silence brings it back. So KubeBot asks Alertmanager itself: a firing
alert of a silenced incident that Alertmanager no longer holds (in two checks in a row) is
resolved through the normal intake. Alertmanager unreachable resolves nothing. And a
resolve which does arrive for a silenced incident is recorded and paged once."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials, create_app
from receiver.config import AlertmanagerConfig, Config, NotifyConfig, StoreConfig
from receiver.service.runtime import RUNTIME
from receiver.service.silenced_resolves import SilencedResolves
from tests.conftest import free_port
from tests.processes import AlertmanagerProcess

pytestmark = pytest.mark.skipif(
    AlertmanagerProcess.binary() is None, reason="Debian prometheus-alertmanager not installed"
)
TOKEN = "am-to-kubebot"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T = TypeVar("T")


async def _until(probe: Callable[[], Awaitable[T | None]], what: str, seconds: float = 8.0) -> T:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        found = await probe()
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _am(am: AlertmanagerProcess, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{am.port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
        return json.loads(body) if body else None


def _pages(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
async def wired(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], AlertmanagerProcess, Path]]:
    """kubebot and Alertmanager, each knowing the other: Alertmanager's webhook posts to kubebot."""
    port = free_port()
    am = AlertmanagerProcess.start(tmp_path, f"http://127.0.0.1:{port}/api/v1/alerts", TOKEN)
    notified = tmp_path / "n.jsonl"
    config = Config(
        store=StoreConfig(path=str(tmp_path / "kb.db")),
        alertmanager=AlertmanagerConfig(url=f"http://127.0.0.1:{am.port}"),
        notify=NotifyConfig(default_urls=(f"jsonl://{notified}",)),
    )
    try:
        async with TestClient(TestServer(create_app(config, credentials=Credentials(TOKEN)), port=port)) as kubebot:
            yield kubebot, am, notified
    finally:
        am.stop()


LABELS = {"alertname": "KubePodCrashLooping", "severity": "warning", "namespace": "shop", "pod": "api-0"}
STARTS = datetime.now(UTC) - timedelta(minutes=2)


async def _incident(kubebot: TestClient[Any, Any], status: str) -> dict[str, Any] | None:
    listed = (await (await kubebot.get("/api/v1/incidents", headers=AUTH)).json())["incidents"]
    return next((i for i in listed if i["status"] == status), None)


async def _silence(kubebot: TestClient[Any, Any], incident_id: int) -> None:
    response = await kubebot.post(
        "/api/v1/silences",
        headers=AUTH,
        json={"incident_id": incident_id, "duration_seconds": 3600, "comment": "deploying a fix", "created_by": "ana"},
    )
    assert response.status == 200, await response.text()


async def test_a_resolve_that_reaches_kubebot_for_a_silenced_incident_is_recorded_and_paged_once(
    wired: tuple[TestClient[Any, Any], AlertmanagerProcess, Path],
) -> None:
    kubebot, am, notified = wired
    am.post_alerts([{"labels": LABELS, "startsAt": STARTS.isoformat()}])
    firing = await _until(lambda: _incident(kubebot, "firing"), "the firing incident from Alertmanager's webhook")
    await _until(lambda: _some(len(_pages(notified)) == 1), "the firing page")
    await _silence(kubebot, firing["id"])
    fingerprint = _am(am, "/api/v2/alerts")[0]["fingerprint"]

    # The resolve as Alertmanager's webhook sends it, twice (a retried delivery).
    ends = datetime.now(UTC)
    resolve = {
        "version": "4",
        "groupKey": '{}:{alertname="KubePodCrashLooping"}',
        "status": "resolved",
        "receiver": "kubebot",
        "groupLabels": {"alertname": "KubePodCrashLooping"},
        "alerts": [
            {
                "status": "resolved",
                "labels": LABELS,
                "annotations": {},
                "startsAt": STARTS.isoformat(),
                "endsAt": ends.isoformat(),
                "fingerprint": fingerprint,
            }
        ],
    }
    for _ in range(2):
        assert (await kubebot.post("/api/v1/alerts", json=resolve, headers=AUTH)).status == 200

    resolved = await _until(lambda: _incident(kubebot, "resolved"), "kubebot to record the resolve")
    assert resolved["id"] == firing["id"]
    assert await _incident(kubebot, "firing") is None
    detail = await (await kubebot.get(f"/api/v1/incidents/{firing['id']}", headers=AUTH)).json()
    assert [a["kind"] for a in detail["actions"]] == ["silence"]
    await _until(lambda: _some(len(_pages(notified)) >= 2), "the resolve page")
    assert [p["title"].split("]")[0] + "]" for p in _pages(notified)] == ["[FIRING]", "[RESOLVED]"]


def _checker(kubebot: TestClient[Any, Any]) -> SilencedResolves:
    checker: SilencedResolves | None = kubebot.app[RUNTIME].silenced_resolves
    assert checker is not None  # alertmanager.url is configured
    return checker


async def _fire_and_silence(kubebot: TestClient[Any, Any], am: AlertmanagerProcess, notified: Path) -> dict[str, Any]:
    am.post_alerts([{"labels": LABELS, "startsAt": STARTS.isoformat()}])
    firing = await _until(lambda: _incident(kubebot, "firing"), "the firing incident from Alertmanager's webhook")
    await _until(lambda: _some(len(_pages(notified)) == 1), "the firing page")
    await _silence(kubebot, firing["id"])
    await _until(
        lambda: _some(_am(am, "/api/v2/alerts")[0]["status"]["state"] == "suppressed"), "Alertmanager to mute it"
    )
    return firing


async def test_a_silenced_alert_alertmanager_stops_holding_resolves_its_incident_and_pages_the_resolve(
    wired: tuple[TestClient[Any, Any], AlertmanagerProcess, Path],
) -> None:
    kubebot, am, notified = wired
    firing = await _fire_and_silence(kubebot, am, notified)
    checker = _checker(kubebot)
    assert await checker.check() == 0  # still held: nothing to do

    am.post_alerts([{"labels": LABELS, "startsAt": STARTS.isoformat(), "endsAt": datetime.now(UTC).isoformat()}])
    await _until(lambda: _some(_am(am, "/api/v2/alerts") == []), "Alertmanager to drop the resolved alert")
    assert await checker.check() == 0  # missing once: could be an Alertmanager just restarted
    assert await _incident(kubebot, "firing") is not None
    assert await checker.check() == 1

    resolved = await _until(lambda: _incident(kubebot, "resolved"), "kubebot to record the resolve")
    assert resolved["id"] == firing["id"]
    await _until(lambda: _some(len(_pages(notified)) >= 2), "the resolve page")
    assert [p["title"].split("]")[0] + "]" for p in _pages(notified)] == ["[FIRING]", "[RESOLVED]"]
    assert await checker.check() == 0  # nothing silenced is firing any more


async def test_alertmanager_unreachable_resolves_nothing(
    wired: tuple[TestClient[Any, Any], AlertmanagerProcess, Path],
) -> None:
    kubebot, am, notified = wired
    firing = await _fire_and_silence(kubebot, am, notified)
    am.stop()
    checker = _checker(kubebot)
    for _ in range(3):
        assert await checker.check() == 0
    still = await _incident(kubebot, "firing")
    assert still is not None
    assert still["id"] == firing["id"]
    assert len(_pages(notified)) == 1


async def _some(value: bool) -> bool | None:
    return True if value else None
