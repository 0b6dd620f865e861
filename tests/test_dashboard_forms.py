"""The incident page's forms (silence, acknowledge, feedback) over the app: each post does
what the API does and sends the browser back to the incident, the actor is recorded, a post
without its form's CSRF token is refused, and failures show on the page, never as a 500."""

from __future__ import annotations

import re
from base64 import b64encode
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials, create_app
from receiver.config import AlertmanagerConfig, Config, NotifyConfig, StoreConfig
from tests.conftest import free_port
from tests.test_dashboard_support import (
    IMG,
    SCRIPT,
    Markup,
    hostile_sources,
    hostile_webhook,
    wait_for_incidents,
)

BODIES = web.AppKey("bodies", list[Any])
ALICE = {"Authorization": "Basic " + b64encode(b"alice:secret").decode()}


async def _silences_taken(request: web.Request) -> web.Response:
    request.app[BODIES].append(await request.json())
    return web.json_response({"silenceID": f"s-{len(request.app[BODIES])}"})


@pytest.fixture
async def alertmanager() -> AsyncIterator[TestServer]:
    app = web.Application()
    app[BODIES] = []
    app.router.add_post("/api/v2/silences", _silences_taken)
    server = TestServer(app)
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


async def _client(tmp_path: Path, credentials: Credentials, alertmanager_url: str) -> TestClient[Any, Any]:
    config = Config(
        store=StoreConfig(path=str(tmp_path / "kb.db")),
        notify=NotifyConfig(default_urls=(f"jsonl://{tmp_path}/n.jsonl",)),
        alertmanager=AlertmanagerConfig(url=alertmanager_url),
    )
    client = TestClient(TestServer(create_app(config, credentials=credentials, sources_factory=hostile_sources)))
    await client.start_server()
    return client


async def _incident(client: TestClient[Any, Any], headers: dict[str, str] | None = None) -> int:
    assert (await client.post("/api/v1/alerts", json=hostile_webhook(), headers=headers)).status == 200

    async def get_json(path: str) -> Any:
        return await (await client.get(path, headers=headers)).json()

    return int((await wait_for_incidents(get_json, 1))[0]["id"])


@pytest.fixture
async def open_client(tmp_path: Path, alertmanager: TestServer) -> AsyncIterator[TestClient[Any, Any]]:
    client = await _client(tmp_path, Credentials(), str(alertmanager.make_url("/")))
    try:
        yield client
    finally:
        await client.close()


async def _token(client: TestClient[Any, Any], incident: int, headers: dict[str, str] | None = None) -> str:
    html = await (await client.get(f"/incidents/{incident}", headers=headers)).text()
    tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', html))
    assert len(tokens) == 1  # one per page, in each of its forms
    return str(tokens.pop())


async def _post(
    client: TestClient[Any, Any], path: str, form: dict[str, str], headers: dict[str, str] | None = None
) -> Any:
    return await client.post(path, data=form, headers=headers, allow_redirects=False)


async def _actions(client: TestClient[Any, Any], incident: int, headers: dict[str, str] | None = None) -> Any:
    return (await (await client.get(f"/api/v1/incidents/{incident}", headers=headers)).json())["actions"]


async def test_acknowledging_from_the_page_records_who_and_goes_back_to_the_incident(
    open_client: TestClient[Any, Any],
) -> None:
    incident = await _incident(open_client)
    token = await _token(open_client, incident)
    response = await _post(
        open_client, f"/incidents/{incident}/ack", {"csrf_token": token, "by": "bob", "note": "on it"}
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/incidents/{incident}#timeline"
    [action] = await _actions(open_client, incident)
    assert (action["kind"], action["by"], action["note"]) == ("ack", "bob", "on it")
    page = await (await open_client.get(f"/incidents/{incident}")).text()
    assert "on it" in page


async def test_feedback_from_the_page_is_stored_with_verdict_and_cause(open_client: TestClient[Any, Any]) -> None:
    incident = await _incident(open_client)
    form = {
        "csrf_token": await _token(open_client, incident),
        "by": "bob",
        "verdict": "noise",
        "cause": "db",
        "note": "",
    }
    assert (await _post(open_client, f"/incidents/{incident}/feedback", form)).status == 303
    detail = await (await open_client.get(f"/api/v1/incidents/{incident}")).json()
    assert detail["feedback"] == [
        {"by": "bob", "at": detail["feedback"][0]["at"], "note": "", "verdict": "noise", "cause": "db"}
    ]


async def test_silencing_from_the_page_creates_it_in_alertmanager_for_the_chosen_duration(
    open_client: TestClient[Any, Any], alertmanager: TestServer
) -> None:
    incident = await _incident(open_client)
    form = {
        "csrf_token": await _token(open_client, incident),
        "by": "bob",
        "duration_seconds": "3600",
        "comment": "deploy",
    }
    assert (await _post(open_client, f"/incidents/{incident}/silence", form)).status == 303
    [body] = alertmanager.app[BODIES]
    assert (body["createdBy"], body["comment"]) == ("bob", "deploy")
    [action] = await _actions(open_client, incident)
    assert action["kind"] == "silence"
    assert action["details"]["duration_seconds"] == 3600


async def test_the_basic_auth_user_is_the_actor_and_no_by_field_is_asked(
    tmp_path: Path, alertmanager: TestServer
) -> None:
    client = await _client(
        tmp_path, Credentials(basic_user="alice", basic_password="secret"), str(alertmanager.make_url("/"))
    )
    try:
        incident = await _incident(client, ALICE)
        page = await (await client.get(f"/incidents/{incident}", headers=ALICE)).text()
        assert 'name="by"' not in page
        assert "as alice" in page
        form = {"csrf_token": await _token(client, incident, ALICE), "by": "mallory", "note": "mine"}
        assert (await _post(client, f"/incidents/{incident}/ack", form, ALICE)).status == 303
        [action] = await _actions(client, incident, ALICE)
        assert action["by"] == "alice"
        # The forms sit behind the same auth as everything else.
        assert (await _post(client, f"/incidents/{incident}/ack", form)).status == 401
    finally:
        await client.close()


async def _second_incident(client: TestClient[Any, Any]) -> int:
    body = hostile_webhook("second")
    body["alerts"][0]["labels"]["alertname"] = "Other"
    assert (await client.post("/api/v1/alerts", json=body)).status == 200

    async def get_json(path: str) -> Any:
        return await (await client.get(path)).json()

    listed = await wait_for_incidents(get_json, 2)
    return next(int(i["id"]) for i in listed if i["title"].startswith("Other"))


@pytest.mark.parametrize("token", ["missing", "forged", "for another incident", "garbage"])
async def test_a_post_without_its_forms_token_is_refused_and_does_nothing(
    open_client: TestClient[Any, Any], token: str
) -> None:
    incident = await _incident(open_client)
    stamp, _, mac = (await _token(open_client, incident)).partition(".")
    form = {"by": "eve", "note": "forged", "verdict": "noise", "comment": "x", "duration_seconds": "3600"}
    if token == "forged":
        form["csrf_token"] = f"{stamp}.{'0' * len(mac)}"
    elif token == "for another incident":
        form["csrf_token"] = await _token(open_client, await _second_incident(open_client))
    elif token == "garbage":
        form["csrf_token"] = "not-a-token"
    for path in ("ack", "feedback", "silence"):
        response = await _post(open_client, f"/incidents/{incident}/{path}", form)
        assert response.status == 403
        assert "Refused" in await response.text()
    assert await _actions(open_client, incident) == []


async def test_bad_input_shows_on_the_page_naming_the_field(open_client: TestClient[Any, Any]) -> None:
    incident = await _incident(open_client)
    token = await _token(open_client, incident)
    cases = [
        ("ack", {"csrf_token": token, "note": "no name"}, "by"),
        ("feedback", {"csrf_token": token, "by": "bob", "verdict": "maybe"}, "verdict"),
        (
            "silence",
            {"csrf_token": token, "by": "bob", "duration_seconds": "forever", "comment": "c"},
            "duration_seconds",
        ),
        (
            "silence",
            {"csrf_token": token, "by": "bob", "duration_seconds": "99999999", "comment": "c"},
            "duration_seconds",
        ),
        ("silence", {"csrf_token": token, "by": "bob", "duration_seconds": "60"}, "comment"),
    ]
    for path, form, field in cases:
        response = await _post(open_client, f"/incidents/{incident}/{path}", form)
        assert response.status == 400, (path, form)
        html = await response.text()
        error = re.search(r'<p class="error" id="form-error">([^<]*)</p>', html)
        assert error is not None, (path, form)
        assert error[1].startswith(f"{field}:"), (path, error)
    assert await _actions(open_client, incident) == []


async def test_alertmanager_unreachable_shows_on_the_page_as_a_503(tmp_path: Path) -> None:
    client = await _client(tmp_path, Credentials(), f"http://127.0.0.1:{free_port()}/")
    try:
        incident = await _incident(client)
        form = {"csrf_token": await _token(client, incident), "by": "bob", "duration_seconds": "3600", "comment": "c"}
        response = await _post(client, f"/incidents/{incident}/silence", form)
        assert response.status == 503
        assert 'id="form-error"' in await response.text()
    finally:
        await client.close()


async def test_hostile_notes_and_names_show_as_text(open_client: TestClient[Any, Any]) -> None:
    incident = await _incident(open_client)
    form = {
        "csrf_token": await _token(open_client, incident),
        "by": f"eve{IMG}",
        "verdict": "noise",
        "cause": SCRIPT,
        "note": SCRIPT,
    }
    assert (await _post(open_client, f"/incidents/{incident}/feedback", form)).status == 303
    html = await (await open_client.get(f"/incidents/{incident}")).text()
    parsed = Markup.of(html)
    assert not any(tag == "script" and not attrs.get("src") for tag, attrs in parsed.elements)
    assert not any("onerror" in attrs for _, attrs in parsed.elements)
    assert SCRIPT in "".join(parsed.text)
    assert f"eve{IMG}" in "".join(parsed.text)


async def test_the_noisiest_alerts_page_shows_suggestions_as_escaped_yaml(open_client: TestClient[Any, Any]) -> None:
    incident = await _incident(open_client)
    form = {"csrf_token": await _token(open_client, incident), "by": "bob", "verdict": "noise"}
    assert (await _post(open_client, f"/incidents/{incident}/feedback", form)).status == 303
    assert 'href="/insights"' in await (await open_client.get("/")).text()
    html = await (await open_client.get("/insights?days=7")).text()
    parsed = Markup.of(html)
    assert not any(
        tag in ("script", "img") and not (attrs.get("src") or "").startswith("/static/")
        for tag, attrs in parsed.elements
    )
    [suggestion] = re.findall(r'<pre class="suggestion">(.*?)</pre>', html, re.S)
    assert "&lt;img" in suggestion  # the hostile namespace, escaped inside the YAML
    [api_row] = (await (await open_client.get("/api/v1/insights?days=7")).json())["alerts"]
    yaml_text = "".join(Markup.of(f"<pre>{suggestion}</pre>").text)
    assert yaml.safe_load(yaml_text) == {"suppression": {"rules": [api_row["suggestion"]["rule"]]}}


@pytest.mark.parametrize("days", ["0", "x", "366", "07"])
async def test_the_noisiest_alerts_page_names_a_bad_period(open_client: TestClient[Any, Any], days: str) -> None:
    response = await open_client.get(f"/insights?days={days}")
    assert response.status == 400
    assert "days must be" in await response.text()
