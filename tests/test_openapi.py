"""The OpenAPI description: served, complete (every registered route), and self-consistent."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs installed

from receiver.app import Credentials, create_app
from receiver.config import Config, StoreConfig
from receiver.web.openapi import OPENAPI_PATH, document
from tests.conftest import fixture_json

METHODS = {"get", "post", "put", "patch", "delete"}


def _registered_routes(tmp_path: Path) -> set[tuple[str, str]]:
    app = create_app(Config(store=StoreConfig(path=str(tmp_path / "kb.db"))), credentials=Credentials())
    routes = set()
    for route in app.router.routes():
        method = route.method.lower()
        if method in METHODS:  # HEAD is implied by GET
            routes.add((method, route.resource.canonical if route.resource else ""))
    return routes


def _described_routes() -> set[tuple[str, str]]:
    return {(method, path) for path, item in document()["paths"].items() for method in item if method in METHODS}


def test_every_route_the_app_registers_is_described(tmp_path: Path) -> None:
    assert _registered_routes(tmp_path) - _described_routes() == set()


def test_nothing_is_described_that_the_app_does_not_serve(tmp_path: Path) -> None:
    assert _described_routes() - _registered_routes(tmp_path) == set()


def test_every_reference_resolves() -> None:
    spec = document()
    refs = re.findall(r"'\$ref': '#/components/schemas/(\w+)'", str(spec))
    assert refs
    assert set(refs) - set(spec["components"]["schemas"]) == set()


def test_every_path_parameter_is_declared() -> None:
    for path, item in document()["paths"].items():
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert set(re.findall(r"{(\w+)}", path)) == declared, path


def test_the_webhook_schema_names_alertmanagers_fields() -> None:
    webhook = document()["components"]["schemas"]["Webhook"]["properties"]
    alert = document()["components"]["schemas"]["WebhookAlert"]["properties"]
    assert {"version", "groupKey", "truncatedAlerts", "status", "receiver", "alerts"} <= set(webhook)
    assert {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"} <= set(alert)


@pytest.mark.parametrize(
    "fixture",
    [
        "alertmanager_webhook_payload_v4.json",
        "alertmanager_webhook_sample.json",
        "alertmanager_webhook_sample_group3.json",
        "alertmanager_webhook_sample_resolved.json",
    ],
)
def test_alertmanagers_real_webhooks_match_the_described_schema(fixture: str) -> None:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12: check real bodies against ours.
    schema = {"$ref": "#/components/schemas/Webhook", "components": document()["components"]}
    errors = list(Draft202012Validator(schema).iter_errors(fixture_json(f"alertmanager/{fixture}")))
    assert [e.message for e in errors] == []


def test_a_webhook_without_alerts_does_not_match() -> None:
    schema = {"$ref": "#/components/schemas/Webhook", "components": document()["components"]}
    assert not Draft202012Validator(schema).is_valid({"version": "4"})


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(Config(store=StoreConfig(path=str(tmp_path / "kb.db"))), credentials=Credentials(bearer_token="t"))
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_the_description_is_served_as_json_behind_auth(client: TestClient[Any, Any]) -> None:
    denied = await client.get(OPENAPI_PATH)
    served = await client.get(OPENAPI_PATH, headers={"Authorization": "Bearer t"})
    body = await served.json()
    assert (denied.status, served.status, body["openapi"]) == (401, 200, "3.1.0")
