"""The dashboard over real incidents: webhooks posted through the app, pages read back."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials
from receiver.web.dashboard import CONTENT_SECURITY_POLICY
from tests.conftest import fixture_json
from tests.test_dashboard_support import (
    ATTRIBUTE_BREAK,
    PAYLOADS,
    SCRIPT,
    Markup,
    dashboard_app,
    hostile_webhook,
    wait_for_incidents,
)

TOKEN = "dashboard-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    app = dashboard_app(tmp_path, Credentials(bearer_token=TOKEN))
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
async def incidents(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    """Three incidents: a resolved one, a plain critical one, and one full of payloads."""
    resolved = fixture_json("alertmanager/alertmanager_webhook_sample.json")
    resolved["groupKey"] = "old"
    resolved["alerts"][0]["labels"] = {**resolved["alerts"][0]["labels"], "alertname": "DiskFull", "severity": "info"}
    resolved["alerts"][0]["fingerprint"] = "fp-old"
    gone = {**resolved, "alerts": [{**resolved["alerts"][0], "status": "resolved"}]}
    for body in (resolved, gone, fixture_json("alertmanager/alertmanager_webhook_sample.json"), hostile_webhook()):
        assert (await client.post("/api/v1/alerts", json=body, headers=AUTH)).status == 200

    async def get_json(path: str) -> Any:
        return await (await client.get(path, headers=AUTH)).json()

    return await wait_for_incidents(get_json, 4)


async def _page(client: TestClient[Any, Any], path: str, status: int = 200) -> str:
    response = await client.get(path, headers=AUTH)
    assert response.status == status
    return await response.text()


def _by_title(incidents: list[dict[str, Any]], start: str) -> dict[str, Any]:
    return next(i for i in incidents if i["title"].startswith(start))


async def test_the_list_shows_firing_incidents_above_resolved_ones(
    client: TestClient[Any, Any], incidents: list[dict[str, Any]]
) -> None:
    html = await _page(client, "/")
    assert html.index("HighErrorRate Pod default/checkout-7d9f") < html.index("DiskFull Pod default/checkout-7d9f")
    assert html.index("Firing") < html.index("Resolved")


async def test_the_list_says_who_was_paged(client: TestClient[Any, Any], incidents: list[dict[str, Any]]) -> None:
    html = await _page(client, "/?status=firing")
    assert ">paged<" in html
    assert "DiskFull" not in html


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("status=resolved", "DiskFull", "HighErrorRate"),
        ("severity=critical&status=firing", "HighErrorRate", "DiskFull"),
        ("text=HighError", "HighErrorRate", "DiskFull"),
        ("namespace=nowhere", "Nothing is firing that matches", "HighErrorRate"),
    ],
)
async def test_filters_narrow_the_list(
    client: TestClient[Any, Any], incidents: list[dict[str, Any]], query: str, shown: str, hidden: str
) -> None:
    html = await _page(client, f"/?{query}")
    assert shown in html
    assert hidden not in html


async def test_a_bad_filter_is_a_400_page_naming_it(client: TestClient[Any, Any]) -> None:
    html = await _page(client, "/?status=open", status=400)
    assert "status must be firing or resolved" in html


async def test_the_incident_page_shows_facts_chart_logs_and_dead_letters(
    client: TestClient[Any, Any], incidents: list[dict[str, Any]]
) -> None:
    html = await _page(client, f"/incidents/{_by_title(incidents, 'HighErrorRate')['id']}")
    assert "BackOff" in html  # a Kubernetes event
    assert '<span class="err">panic:' in html  # the error line of the log excerpt, marked
    assert re.search(r'<polyline class="series" points="[\d., ]+"', html)  # the metric chart
    assert "dead letter" in html
    assert "hunter2" not in html  # the channel's password never reaches the page
    assert "json://&lt;redacted:" in html


@pytest.mark.parametrize("path", ["/incidents/99999", "/incidents/abc", "/incidents/1" + "0" * 30])
async def test_an_unknown_incident_is_a_404_page(client: TestClient[Any, Any], path: str) -> None:
    assert "Not found" in await _page(client, path, status=404)


@pytest.mark.parametrize("path", ["/", "/incidents/1", "/static/style.css"])
async def test_the_dashboard_needs_the_same_credentials_as_the_api(client: TestClient[Any, Any], path: str) -> None:
    assert (await client.get(path)).status == 401


@pytest.mark.parametrize("path", ["/", "/incidents/99999", "/static/app.js"])
async def test_every_dashboard_response_carries_the_security_headers(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path, headers=AUTH)
    assert (response.headers["Content-Security-Policy"], response.headers["X-Content-Type-Options"]) == (
        CONTENT_SECURITY_POLICY,
        "nosniff",
    )


async def test_only_the_two_static_files_are_served(client: TestClient[Any, Any]) -> None:
    statuses = [
        (await client.get(f"/static/{name}", headers=AUTH)).status
        for name in ("style.css", "app.js", "..%2Fdashboard.py", "dashboard.py", "templates")
    ]
    assert statuses == [200, 200, 404, 404, 404]


@pytest.mark.parametrize("path", ["/", "/incidents/{id}"])
async def test_payloads_in_labels_annotations_events_and_logs_stay_text(
    client: TestClient[Any, Any], incidents: list[dict[str, Any]], path: str
) -> None:
    page = Markup.of(await _page(client, path.format(id=_by_title(incidents, "Pwn")["id"])))
    handlers = [(tag, name) for tag, attrs in page.elements for name in attrs if name.startswith("on")]
    scripts = [attrs.get("src") or "" for tag, attrs in page.elements if tag == "script"]
    links = [attrs["href"] or "" for tag, attrs in page.elements if tag == "a" and "href" in attrs]
    assert handlers == []
    assert [s.split("?")[0] for s in scripts] == ["/static/app.js"]
    assert [tag for tag, _ in page.elements if tag in ("img", "iframe", "object", "embed")] == []
    assert [link for link in links if not link.startswith(("/", "#", "http://", "https://"))] == []
    assert SCRIPT in "".join(page.text)  # shown, as text


async def test_a_hostile_filter_value_is_echoed_as_a_value_not_markup(client: TestClient[Any, Any]) -> None:
    page = Markup.of(await _page(client, "/?" + urlencode({"text": ATTRIBUTE_BREAK})))
    values = [attrs.get("value") for tag, attrs in page.elements if tag == "input" and attrs.get("name") == "text"]
    scripts = [attrs.get("src") for tag, attrs in page.elements if tag == "script"]
    assert values == [ATTRIBUTE_BREAK]
    assert len(scripts) == 1


async def test_every_payload_shows_as_text_on_the_incident_page(
    client: TestClient[Any, Any], incidents: list[dict[str, Any]]
) -> None:
    text = "".join(Markup.of(await _page(client, f"/incidents/{_by_title(incidents, 'Pwn')['id']}")).text)
    assert [p for p in PAYLOADS if p not in text] == []


async def test_the_page_has_no_inline_style(client: TestClient[Any, Any], incidents: list[dict[str, Any]]) -> None:
    page = Markup.of(await _page(client, f"/incidents/{_by_title(incidents, 'Pwn')['id']}"))
    assert [tag for tag, attrs in page.elements if "style" in attrs or tag == "style"] == []


async def test_acks_and_feedback_show_on_the_incidents_timeline_with_who_and_their_note_as_text(
    client: TestClient[Any, Any], incidents: list[dict[str, Any]]
) -> None:
    incident_id = _by_title(incidents, "HighErrorRate")["id"]
    ack = {"by": "ana", "note": SCRIPT}
    feedback = {"verdict": "noise", "cause": "db", "by": "bo", "note": "flapped all night"}
    assert (await client.post(f"/api/v1/incidents/{incident_id}/ack", json=ack, headers=AUTH)).status == 200
    assert (await client.post(f"/api/v1/incidents/{incident_id}/feedback", json=feedback, headers=AUTH)).status == 200
    page = Markup.of(await _page(client, f"/incidents/{incident_id}"))
    text = "".join(page.text)
    assert f"acknowledged by ana: {SCRIPT}" in text
    assert "feedback from bo: noise, cause db: flapped all night" in text
    assert [(attrs.get("src") or "").split("?")[0] for tag, attrs in page.elements if tag == "script"] == [
        "/static/app.js"
    ]


async def test_a_pages_alert_link_leads_to_the_newest_incident_holding_the_alert(
    client: TestClient[Any, Any], incidents: list[dict[str, Any]]
) -> None:
    response = await client.get("/alerts/fp-old", headers=AUTH, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == f"/incidents/{_by_title(incidents, 'DiskFull')['id']}"
    critical = await client.get("/alerts/c0472510028453c7", headers=AUTH, allow_redirects=False)
    assert critical.headers["Location"] == f"/incidents/{_by_title(incidents, 'HighErrorRate')['id']}"


@pytest.mark.parametrize("fingerprint", ["0123456789abcdef", "fp old", "a" * 129, "<script>", "..%2Fincidents"])
async def test_an_unknown_or_malformed_alert_fingerprint_is_a_404_page(
    client: TestClient[Any, Any], incidents: list[dict[str, Any]], fingerprint: str
) -> None:
    html = await _page(client, f"/alerts/{fingerprint}", status=404)
    assert "There is no incident holding this alert" in html
    assert "<script>" not in html
