"""Noise insights from a recorded history (firing/resolved pairs with past times): the
flappy alert comes first with a rule that would have saved exactly the pages it caused,
an alert marked useful is never suggested, and `kubebot insights`, opening the store as
serve does (SQLite or PostgreSQL), agrees with the API."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials, create_app
from receiver.config import Config, FlappingConfig, NotifyConfig, StoreConfig, SuppressionConfig, load
from receiver.insights import noise_score
from tests.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _alert(name: str, namespace: str, pod: str, starts: datetime, ends: datetime | None) -> dict[str, Any]:
    labels = {"alertname": name, "namespace": namespace, "pod": pod, "severity": "warning", "instance": "10.0.0.1:80"}
    alert: dict[str, Any] = {
        "status": "resolved" if ends else "firing",
        "labels": labels,
        "startsAt": starts.isoformat(),
        "fingerprint": f"{name}-{pod}",
    }
    if ends is not None:
        alert["endsAt"] = ends.isoformat()
    return {"version": "4", "groupKey": f"g-{name}", "alerts": [alert]}


async def _post(client: TestClient[Any, Any], body: dict[str, Any], total: int) -> None:
    assert (await client.post("/api/v1/alerts", json=body)).status == 200
    for _ in range(500):
        listed = (await (await client.get("/api/v1/incidents?limit=500")).json())["incidents"]
        if sum(i["alert_count"] for i in listed) >= total:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("alert not processed")


async def _record(client: TestClient[Any, Any], clock: Clock) -> None:
    """Flappy fires and clears within a minute six times; Bouncy does the same but its
    owners said it was useful; DiskFull fired once for two hours."""
    total = 0
    for i in range(6):
        for name, namespace, pod in (("Flappy", "shop", "web-1"), ("Bouncy", "billing", "ledger-0")):
            starts = T0 + timedelta(minutes=20 * i)
            clock.now = starts + timedelta(seconds=5)
            total += 1
            await _post(client, _alert(name, namespace, pod, starts, None), total)
            clock.now = starts + timedelta(seconds=70)
            total += 1
            await _post(client, _alert(name, namespace, pod, starts, starts + timedelta(seconds=60)), total)
    starts = T0 + timedelta(hours=3)
    clock.now = starts
    await _post(client, _alert("DiskFull", "shop", "db-0", starts, None), total + 1)
    clock.now = starts + timedelta(hours=2)
    await _post(client, _alert("DiskFull", "shop", "db-0", starts, starts + timedelta(hours=2)), total + 2)
    listed = (await (await client.get("/api/v1/incidents?text=Bouncy")).json())["incidents"]
    feedback = {"verdict": "useful", "by": "ledger-team", "note": "each one was a real outage"}
    assert (await client.post(f"/api/v1/incidents/{listed[-1]['id']}/feedback", json=feedback)).status == 200


async def _pages_of(client: TestClient[Any, Any], name: str) -> int:
    pages = 0
    for incident in (await (await client.get(f"/api/v1/incidents?text={name}&limit=500")).json())["incidents"]:
        detail = await (await client.get(f"/api/v1/incidents/{incident['id']}")).json()
        pages += sum(1 for d in detail["decisions"] if d["decision"] == "notify")
    return pages


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The `store:` section of the config, for serve and for `kubebot insights` alike."""
    if request.param == "sqlite":
        return {"path": str(tmp_path / "kb.db")}
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return {"url": server.new_database(), "password_file": str(server.password_file)}


async def test_insights_name_the_flappy_alert_first_with_a_rule_that_saves_its_pages(
    tmp_path: Path, store_settings: dict[str, str]
) -> None:
    clock = Clock()
    config = Config(
        store=StoreConfig(**store_settings),  # type: ignore[arg-type]
        suppression=SuppressionConfig(flapping=FlappingConfig(max_changes=100), digest_interval_seconds=0),
        notify=NotifyConfig(default_urls=(f"jsonl://{tmp_path}/n.jsonl",)),
    )
    async with TestClient(TestServer(create_app(config, clock=clock, credentials=Credentials()))) as client:
        await _record(client, clock)
        clock.now = T0 + timedelta(hours=6)
        response = await client.get("/api/v1/insights?days=7")
        assert response.status == 200
        alerts = (await response.json())["alerts"]
        flappy_pages = await _pages_of(client, "Flappy")
        assert (await client.get("/api/v1/insights?days=0")).status == 400

    assert [a["alertname"] for a in alerts] == ["Flappy", "Bouncy", "DiskFull"]
    flappy, bouncy, disk = alerts
    assert flappy["labels"] == {"alertname": "Flappy", "namespace": "shop", "pod": "web-1"}
    assert (flappy["fired"], flappy["resolved_within_5m"], flappy["median_firing_seconds"]) == (6, 6, 60)
    assert flappy["paged"] == flappy_pages == 12  # each firing and each resolved notice
    assert flappy["suggestion"]["pages_saved"] == flappy_pages
    rule = flappy["suggestion"]["rule"]
    assert rule["action"] == "drop"
    # A ready entry: the config loads with it.
    load(yaml.safe_dump({"suppression": {"rules": [rule]}}), {})
    assert bouncy["feedback"] == {"useful": 1, "noise": 0}
    assert bouncy["suggestion"] is None
    assert bouncy["noise_score"] < flappy["noise_score"]
    assert (disk["fired"], disk["resolved_within_5m"], disk["suggestion"]) == (1, 0, None)

    config_file = _config_file(tmp_path, store_settings)
    await asyncio.to_thread(_cli_agrees, config_file, alerts)


def _cli_agrees(config_file: Path, alerts: list[dict[str, Any]]) -> None:
    """`kubebot insights` reads the same store and prints the same data."""
    cli = _insights_cli("--days", "7", "--json", "--config", str(config_file))
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["alerts"] == alerts
    table = _insights_cli("--days", "7", "--config", str(config_file))
    assert "Flappy namespace=shop, pod=web-1" in table.stdout.splitlines()[1]
    assert "would save 12 page(s)" in table.stdout


def test_kubebot_insights_names_a_store_it_cannot_reach_and_fails(tmp_path: Path) -> None:
    refused = {"url": "postgresql://kubebot@127.0.0.1:1/kubebot", "connect_timeout_seconds": 1}
    cli = _insights_cli("--days", "7", "--config", str(_config_file(tmp_path, refused)))
    assert (cli.returncode, cli.stdout) == (1, "")
    assert "kubebot insights: cannot reach PostgreSQL" in cli.stderr


def _insights_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", "insights", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )


def _config_file(tmp_path: Path, store: dict[str, Any]) -> Path:
    path = tmp_path / "kubebot.yaml"
    path.write_text(yaml.safe_dump({"store": store}))
    return path


def test_the_noise_score_stays_within_0_and_1_and_feedback_weighs_in() -> None:
    assert noise_score(0, 0, 0, 0) == 0.0
    assert noise_score(50, 50, 0, 0) == 1.0
    assert noise_score(50, 50, 3, 0) == 0.5
    assert noise_score(1, 0, 0, 2) > noise_score(1, 0, 0, 0)
