"""Which silenced alerts count as gone from Alertmanager, and the resolve built for them."""

from __future__ import annotations

from datetime import UTC, datetime

from receiver.models import Alert, message_from_body
from receiver.pipeline.outcome import GroupRecord
from receiver.service.silenced_resolves import Watched, gone_alerts, resolved_bodies

LABELS = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "api-0"}
STARTS = datetime(2026, 1, 1, tzinfo=UTC)


def _watched(fingerprint: str, labels: dict[str, str], group_key: str = "g1") -> Watched:
    alert = Alert(fingerprint, "firing", labels, {"summary": "s"}, STARTS, None, "http://prom")
    return Watched(alert, GroupRecord(group_key=group_key, receiver="kubebot", group_labels={"alertname": "K"}))


def test_an_alert_held_by_fingerprint_or_by_its_labels_is_not_gone() -> None:
    by_fingerprint = _watched("aaa", LABELS)
    by_labels = _watched("bbb", {**LABELS, "pod": "api-1"})
    gone = _watched("ccc", {**LABELS, "pod": "api-2"})
    held = [{"fingerprint": "aaa", "labels": {}}, {"fingerprint": "zzz", "labels": {**LABELS, "pod": "api-1"}}]
    assert gone_alerts([by_fingerprint, by_labels, gone], held) == [gone]


def test_the_resolve_keeps_the_alert_and_its_group_and_ends_now() -> None:
    now = datetime(2026, 1, 1, 1, tzinfo=UTC)
    bodies = resolved_bodies([_watched("a", LABELS), _watched("b", LABELS, "g2"), _watched("c", LABELS)], now)
    assert [count for _, count in bodies] == [2, 1]
    message = message_from_body(bodies[0][0])
    assert message.group.group_key == "g1"
    assert message.group.status == "resolved"
    assert dict(message.group.group_labels) == {"alertname": "K"}
    assert [(a.fingerprint, a.status, a.starts_at, a.ends_at) for a in message.alerts] == [
        ("a", "resolved", STARTS, now),
        ("c", "resolved", STARTS, now),
    ]
    assert dict(message.alerts[0].labels) == LABELS
