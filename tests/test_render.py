"""What a page says: one alert in full; a group's alerts in one message, the worst first."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from receiver.models import parse_webhook
from receiver.pipeline.render import RenderStage, render_message
from receiver.pipeline.stage import Work
from tests.conftest import alerts_paged, fixture_json

GROUP3 = parse_webhook(fixture_json("alertmanager/alertmanager_webhook_sample_group3.json"))
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _works(routes: tuple[str, ...] = ("json://a",)) -> list[Work]:
    return [Work(alert, GROUP3.group, NOW, routes=routes) for alert in GROUP3.alerts]


async def test_a_groups_alerts_go_out_as_one_message_carried_by_the_most_severe() -> None:
    rendered = await RenderStage().exec(_works())
    carriers = [w for w in rendered if w.message is not None]
    assert len(carriers) == 1
    message = carriers[0].message
    assert message is not None
    assert carriers[0].alert.labels["pod"] == "db-0"  # the critical one
    assert message.title == "[FIRING:3] PodCrashLooping payments (critical)"
    assert [w.sent_with for w in rendered] == [carriers[0].alert.fingerprint] * 2 + [None]
    page = {"title": message.title, "message": message.body}
    assert sorted(alerts_paged([page])) == [
        ("PodCrashLooping", "default/api-1"),
        ("PodCrashLooping", "default/api-2"),
        ("PodCrashLooping", "payments/db-0"),
    ]


async def test_a_single_alert_gets_its_own_title() -> None:
    rendered = await RenderStage().exec(_works()[:1])
    assert rendered[0].message is not None
    assert rendered[0].message.title == "[FIRING] PodCrashLooping Pod default/api-1 (warning)"


async def test_alerts_for_different_channels_are_not_bundled() -> None:
    works = _works()
    works[0] = Work(works[0].alert, GROUP3.group, NOW, routes=("json://b",))
    rendered = await RenderStage().exec(works)
    assert sum(w.message is not None for w in rendered) == 2


def _page(*, label: str = "api-1", summary: str = "", generator_url: str = "http://prom/graph?g0.expr=x") -> str:
    """Title and body of the page for one alert whose pod label, summary and source are given."""
    body = fixture_json("alertmanager/alertmanager_webhook_sample_group3.json")
    alert = body["alerts"][0]
    alert["labels"]["pod"] = label
    alert["annotations"] = {"summary": summary} if summary else {}
    alert["generatorURL"] = generator_url
    webhook = parse_webhook({**body, "alerts": [alert]})
    message = render_message(Work(webhook.alerts[0], webhook.group, NOW, routes=("json://a",)).outcome())
    return f"{message.title}\n{message.body}"


MENTIONS = [
    "@everyone",
    "@here",
    "@channel",
    "@all",
    "@Everyone",
    "@alice",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S123>",
    "<@U123ABC>",
    "<@&987654321>",
    "<@!1234>",
    "<#C123>",
]


@pytest.mark.parametrize("mention", MENTIONS)
def test_a_mention_in_a_label_is_shown_but_cannot_ping(mention: str) -> None:
    page = _page(label=f"api {mention} 1")
    assert mention not in page
    assert mention == page.split("api ", 1)[1].split(" 1", 1)[0].replace("\u200b", "")


@pytest.mark.parametrize("mention", MENTIONS)
def test_a_mention_in_an_annotation_cannot_ping(mention: str) -> None:
    assert mention not in _page(summary=f"wake up {mention}, now")


@pytest.mark.parametrize("word", ["@everyone", "@here", "@channel", "@all"])
def test_a_broadcast_mention_glued_to_a_word_cannot_ping(word: str) -> None:
    assert word not in _page(summary=f"hi{word}!")


def test_a_mention_in_a_bundled_alert_cannot_ping() -> None:
    body = fixture_json("alertmanager/alertmanager_webhook_sample_group3.json")
    body["alerts"][0]["annotations"] = {"summary": "ping @here and <!channel>"}
    webhook = parse_webhook(body)
    outcomes = [Work(a, webhook.group, NOW, routes=("json://a",)).outcome() for a in webhook.alerts]
    message = render_message(outcomes[1], *outcomes[:1])
    assert [m for m in ("@here", "<!channel>") if m in message.body] == []


def test_an_email_address_is_left_as_it_is() -> None:
    assert "mail oncall@example.com" in _page(summary="mail oncall@example.com")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "/graph?g0.expr=up",
        "//evil.example/x",
        "http:evil",
        "http://prom/graph\nRunbook: http://evil.example",
        "ftp://prom/graph",
    ],
)
def test_a_source_that_is_not_an_http_link_is_left_out(url: str) -> None:
    page = _page(generator_url=url)
    assert "Source:" not in page
    assert url not in page


def test_an_http_source_is_printed_as_a_link() -> None:
    assert "Source: https://prom.example/graph?g0.expr=up" in _page(
        generator_url="https://prom.example/graph?g0.expr=up"
    )
