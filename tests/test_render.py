"""What a page says: one alert in full; a group's alerts in one message, the worst first."""

from __future__ import annotations

from datetime import UTC, datetime

from receiver.models import parse_webhook
from receiver.pipeline import RenderStage, Work
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
    assert rendered[0].message.title == "[FIRING] PodCrashLooping default/api-1 (warning)"


async def test_alerts_for_different_channels_are_not_bundled() -> None:
    works = _works()
    works[0] = Work(works[0].alert, GROUP3.group, NOW, routes=("json://b",))
    rendered = await RenderStage().exec(works)
    assert sum(w.message is not None for w in rendered) == 2
