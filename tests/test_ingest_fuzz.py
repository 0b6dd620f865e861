"""Property: no request body makes the intake answer 500 (or crash the server)."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.app import Credentials, create_app
from receiver.config import Config, NotifyConfig, ServerConfig, StoreConfig
from tests.conftest import fixture_json, free_port

ALLOWED = {200, 400, 413}

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
timestamps = st.sampled_from(
    [
        "2026-11-25T14:57:37.786626674Z",
        "0001-01-01T00:00:00Z",
        "2018-03-07T06:33:21-05:00",
        "",
        "nope",
        "2026-13-01T00:00:00Z",
    ]
)
alerts = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["firing", "resolved", "pending"]) | json_values,
        "labels": st.dictionaries(st.text(max_size=12), st.text(max_size=30) | json_values, max_size=5),
        "annotations": st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=3) | json_values,
        "startsAt": timestamps | json_values,
        "endsAt": timestamps,
        "fingerprint": st.text(max_size=20) | json_values,
        "generatorURL": st.text(max_size=30) | json_values,
    },
)
webhooks = st.fixed_dictionaries(
    {"alerts": st.lists(alerts, max_size=4) | json_values},
    optional={
        "version": st.sampled_from(["4", "3", 4]),
        "groupKey": st.text(max_size=20) | json_values,
        "truncatedAlerts": st.integers(-5, 5) | json_values,
        "commonLabels": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3) | json_values,
        "status": st.text(max_size=10) | json_values,
    },
)


def _nested_at(depth: int, where: str) -> bytes:
    """Arrays nested deeper than json.loads (or a recursive walk) can follow, at one place
    of an otherwise valid body."""
    deep = b"[" * depth + b"]" * depth
    alert = b'{"status": "firing", "startsAt": "2026-11-25T14:57:37Z", "labels": {"a": "b"}}'
    places = {
        "label value": alert.replace(b'"b"', deep),
        "labels": alert.replace(b'{"a": "b"}', deep),
        "startsAt": alert.replace(b'"2026-11-25T14:57:37Z"', deep),
        "alert": deep,
    }
    return b'{"alerts": [' + places[where] + b"]}"


deeply_nested = st.builds(
    _nested_at, st.integers(1, 20_000), st.sampled_from(["label value", "labels", "startsAt", "alert"])
)
bodies = (
    deeply_nested
    | webhooks.map(lambda w: json.dumps(w).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.binary(min_size=65 * 1024, max_size=66 * 1024)
)


@pytest.fixture(scope="module")
def server_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    config = Config(
        server=ServerConfig(max_body_bytes=64 * 1024),
        store=StoreConfig(path=str(tmp / "kb.db")),
        notify=NotifyConfig(default_urls=(f"jsonl://{tmp}/n.jsonl",)),
    )
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(config, credentials=Credentials()))
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(10)
    yield port
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _post(port: int, body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/api/v1/alerts", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload: Any = json.loads(response.read())
        assert "error" in payload or payload["status"] == "stored"
        return response.status
    finally:
        connection.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_no_body_makes_the_intake_answer_500(server_port: int, body: bytes) -> None:
    assert _post(server_port, body) in ALLOWED


def test_real_fixtures_are_accepted(server_port: int) -> None:
    names = [
        "alertmanager_webhook_sample.json",
        "alertmanager_webhook_sample_group3.json",
        "alertmanager_webhook_sample_resolved.json",
        "alertmanager_webhook_payload_v4.json",
        "alertmanager_webhook_payload_v4_fingerprint.json",
    ]
    statuses = [_post(server_port, json.dumps(fixture_json(f"alertmanager/{n}")).encode()) for n in names]
    assert statuses == [200] * len(names)
