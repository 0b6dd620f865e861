"""POST /api/v1/alerts answers per the contract: 200 only once stored, clear 4xx, 503 to retry."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials, create_app
from receiver.config import Config, ServerConfig, StoreConfig, load
from receiver.service.runtime import RUNTIME
from tests.conftest import fixture_json

SAMPLE = fixture_json("alertmanager/alertmanager_webhook_sample.json")
TOKEN = "s3cret-token"


def _config(tmp_path: Path, **overrides: Any) -> Config:
    base = load("", {})
    return Config(
        server=overrides.get("server", ServerConfig(max_body_bytes=64 * 1024)),
        store=overrides.get("store", StoreConfig(path=str(tmp_path / "kb.db"))),
        notify=base.notify.__class__(default_urls=(f"jsonl://{tmp_path}/n.jsonl",)),
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(
        _config(tmp_path),
        credentials=Credentials(bearer_token=TOKEN, basic_user="am", basic_password="pw"),
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_stored_alerts_answer_200_with_their_count(client: TestClient[Any, Any]) -> None:
    response = await client.post("/api/v1/alerts", json=SAMPLE, headers=_bearer())
    assert (response.status, await response.json()) == (200, {"status": "stored", "alerts": 1})


async def test_the_same_alert_state_posted_again_is_processed_once(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    for _ in range(3):
        assert (await client.post("/api/v1/alerts", json=SAMPLE, headers=_bearer())).status == 200
    metrics = ""
    sink = tmp_path / "n.jsonl"
    for _ in range(1000):  # up to 20 s on a loaded machine; usually a few steps
        metrics = await (await client.get("/metrics")).text()
        # The file exists before its first line is written: wait for a whole line.
        if "kubebot_alerts_duplicate_total 2.0" in metrics and sink.exists() and sink.read_text().endswith("\n"):
            break
        await asyncio.sleep(0.02)
    assert "kubebot_alerts_duplicate_total 2.0" in metrics
    assert len((tmp_path / "n.jsonl").read_text().splitlines()) == 1


async def test_basic_auth_as_alertmanager_sends_it_is_accepted(
    client: TestClient[Any, Any],
) -> None:
    header = "Basic " + base64.b64encode(b"am:pw").decode()
    response = await client.post("/api/v1/alerts", json=SAMPLE, headers={"Authorization": header})
    assert response.status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic " + base64.b64encode(b"am:wrong").decode()},
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Token " + TOKEN},
    ],
)
async def test_missing_or_wrong_credentials_answer_401(client: TestClient[Any, Any], headers: dict[str, str]) -> None:
    response = await client.post("/api/v1/alerts", json=SAMPLE, headers=headers)
    assert (response.status, (await response.json())["error"]) == (
        401,
        "missing or wrong credentials",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "$"),
        (b"\xff\xfe", "$"),
        (b"[" * 60_000, "$"),
        (b"[]", "$"),
        (b'{"version": "3", "alerts": []}', "version"),
        (b'{"alerts": {}}', "alerts"),
        (
            b'{"alerts": [{"status": "firing", "labels": {"a": 1}, "startsAt": "2026-01-01T00:00:00Z"}]}',
            "alerts[0].labels.a",
        ),
        (
            b'{"alerts": [{"status": "firing", "labels": {}, "startsAt": "yesterday"}]}',
            "alerts[0].startsAt",
        ),
        (b'{"alerts": [{"status": "pending", "labels": {}}]}', "alerts[0].status"),
        (b'{"alerts": [], "truncatedAlerts": -1}', "truncatedAlerts"),
        (  # too deep for json.loads, which names the bad key on the error path
            b'{"alerts": [{"labels": {"a": ' + b"[" * 5_000 + b"]" * 5_000 + b"}}]}",
            "alerts[0].labels",
        ),
    ],
)
async def test_malformed_bodies_answer_400_naming_the_field(
    client: TestClient[Any, Any], body: bytes, field: str
) -> None:
    response = await client.post("/api/v1/alerts", data=body, headers=_bearer())
    assert (response.status, (await response.json())["field"]) == (400, field)


async def test_unknown_fields_from_newer_alertmanagers_are_accepted(
    client: TestClient[Any, Any],
) -> None:
    body = {**SAMPLE, "notification_reason": "repeat", "routeLabels": {"team": "shop"}}
    response = await client.post("/api/v1/alerts", json=body, headers=_bearer())
    assert response.status == 200


async def test_body_over_the_limit_answers_413(client: TestClient[Any, Any]) -> None:
    body = {**SAMPLE, "padding": "x" * (70 * 1024)}
    response = await client.post("/api/v1/alerts", data=json.dumps(body), headers=_bearer())
    assert response.status == 413


async def test_a_gzip_body_is_stored_when_aiohttp_has_decoded_it_itself(client: TestClient[Any, Any]) -> None:
    # A test server keeps aiohttp's own decoding (`kubebot serve` turns it off): decoded once.
    body = gzip.compress(json.dumps(SAMPLE).encode())
    response = await client.post("/api/v1/alerts", data=body, headers={**_bearer(), "Content-Encoding": "gzip"})
    assert (response.status, await response.json()) == (200, {"status": "stored", "alerts": 1})


async def test_full_queue_answers_503_so_alertmanager_retries(tmp_path: Path) -> None:
    config = _config(tmp_path, store=StoreConfig(path=str(tmp_path / "kb.db"), max_pending=2))
    group = fixture_json("alertmanager/alertmanager_webhook_sample_group3.json")
    async with TestClient(TestServer(create_app(config, credentials=Credentials()))) as c:
        runtime = c.app[RUNTIME]
        for task in runtime.tasks:  # no workers: the queue can only fill
            task.cancel()
        response = await c.post("/api/v1/alerts", json=group)
        assert response.status == 503
        assert "limit 2" in (await response.json())["error"]


async def test_store_that_cannot_write_answers_503_and_readyz_says_why(tmp_path: Path) -> None:
    async with TestClient(TestServer(create_app(_config(tmp_path), credentials=Credentials()))) as c:
        await c.app[RUNTIME].store.close()
        post = await c.post("/api/v1/alerts", json=SAMPLE)
        ready = await c.get("/readyz")
        assert post.status == 503
        assert ready.status == 503
        assert any("store not writable" in r for r in (await ready.json())["reasons"])


async def test_health_and_metrics_need_no_credentials(client: TestClient[Any, Any]) -> None:
    await client.post("/api/v1/alerts", json=SAMPLE, headers=_bearer())
    statuses = [(await client.get(p)).status for p in ("/healthz", "/readyz", "/metrics")]
    metrics = await (await client.get("/metrics")).text()
    assert statuses == [200, 200, 200]
    assert 'kubebot_webhook_requests_total{code="200"} 1.0' in metrics
    assert 'kubebot_alerts_received_total{status="firing"} 1.0' in metrics
    assert TOKEN not in metrics


async def test_the_challenge_offers_basic_when_configured_so_a_browser_can_log_in(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/")
    assert (response.status, response.headers["WWW-Authenticate"]) == (401, 'Basic realm="kubebot"')


async def test_workers_rest_while_intake_is_flooded_and_say_so_in_metrics(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    intake = client.app[RUNTIME].intake
    for _ in range(intake.policy.busy_requests):
        intake.request_arrived()
    intake.worked(1.0)  # a long batch just ran: the workers owe intake a rest
    response = await client.post("/api/v1/alerts", json=SAMPLE, headers=_bearer())
    for _ in range(200):
        if (tmp_path / "n.jsonl").exists():
            break
        await asyncio.sleep(0.02)
    metrics = await (await client.get("/metrics")).text()
    [paused] = [float(line.split()[1]) for line in metrics.splitlines() if line.startswith("kubebot_workers_paused")]
    assert response.status == 200
    assert (tmp_path / "n.jsonl").exists()  # processed once the flood was over
    assert paused > 0
