"""The webhook body from real Alertmanagers parses; anything else is refused with its path."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from receiver.models import PayloadError, fingerprint_of, parse_webhook
from tests.conftest import fixture_json


def test_a_real_firing_alert_keeps_go_escaped_text_and_has_no_end() -> None:
    message = parse_webhook(fixture_json("alertmanager/alertmanager_webhook_sample.json"))
    alert = message.alerts[0]
    assert alert.annotations["summary"] == "5xx ratio > 5%"
    assert alert.ends_at is None
    assert alert.starts_at == datetime(2026, 11, 25, 14, 57, 37, 786627, tzinfo=UTC)  # nanoseconds, rounded
    assert message.group.group_key == '{}:{alertname="HighErrorRate"}'


def test_a_resolved_alert_keeps_its_end() -> None:
    message = parse_webhook(fixture_json("alertmanager/alertmanager_webhook_sample_resolved.json"))
    assert [(a.status, a.ends_at is not None) for a in message.alerts] == [("resolved", True)]


def test_alerts_without_status_or_fingerprint_take_the_groups_status_and_a_label_hash() -> None:
    message = parse_webhook(fixture_json("alertmanager/alertmanager_webhook_payload_v4.json"))
    alert = message.alerts[0]
    assert alert.status == "firing"
    assert alert.fingerprint == fingerprint_of(alert.labels)


def test_dedup_key_is_fingerprint_status_and_start() -> None:
    alert = parse_webhook(fixture_json("alertmanager/alertmanager_webhook_sample.json")).alerts[0]
    assert alert.dedup_key == "c0472510028453c7:firing:2026-11-25T14:57:37.786627+00:00"


def test_fingerprint_of_does_not_depend_on_label_order() -> None:
    assert fingerprint_of({"a": "1", "b": "2"}) == fingerprint_of({"b": "2", "a": "1"})
    assert fingerprint_of({"a": "1"}) != fingerprint_of({"a": "2"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"alerts": [{"status": "firing", "labels": {}, "startsAt": "2026-01-01T00:00:00"}]},
            "alerts[0].startsAt",
        ),
        ({"alerts": [{"status": "firing", "labels": {}}]}, "alerts[0].startsAt"),
        (
            {"alerts": [{"status": "firing", "startsAt": "2026-01-01T00:00:00Z"}]},
            "alerts[0].labels",
        ),
        (
            {
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {},
                        "startsAt": "2026-01-01T00:00:00Z",
                        "fingerprint": 7,
                    }
                ]
            },
            "alerts[0].fingerprint",
        ),
        ({"alerts": [], "groupKey": 5}, "groupKey"),
        ({"alerts": [], "truncatedAlerts": True}, "truncatedAlerts"),
        ({"alerts": ["x"]}, "alerts[0]"),
    ],
)
def test_schema_violations_name_their_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_webhook(body)
    assert raised.value.field == field
