"""Alerts for the telemetry tests, parsed from a real Alertmanager webhook body."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from enrichers.base import EnrichContext
from receiver.models import Alert, WebhookMessage, parse_webhook
from tests.fakes.telemetry_fixtures import fixture

SAMPLE = "alertmanager/alertmanager_webhook_sample.json"


def webhook_with(
    labels: dict[str, str] | None = None,
    starts_at: datetime | None = None,
    expr: str | None = None,
) -> WebhookMessage:
    """The sample firing alert, with the given labels, start time and rule expression."""
    body = fixture(SAMPLE)
    raw = body["alerts"][0]
    if labels is not None:
        raw["labels"] = labels
    if starts_at is not None:
        raw["startsAt"] = starts_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if expr is not None:
        raw["generatorURL"] = "http://prometheus.local/graph?" + urlencode({"g0.expr": expr, "g0.tab": "1"})
    return parse_webhook(body)


def alert_with(
    labels: dict[str, str] | None = None,
    starts_at: datetime | None = None,
    expr: str | None = None,
) -> Alert:
    return webhook_with(labels, starts_at, expr).alerts[0]


def context(now: datetime | None = None, budget_seconds: float = 5.0) -> EnrichContext:
    message = webhook_with()
    return EnrichContext(
        group=message.group,
        now=now or datetime.now(UTC),
        timeout_seconds=budget_seconds,
    )


def at(unix_seconds: float) -> datetime:
    return datetime.fromtimestamp(unix_seconds, UTC)
