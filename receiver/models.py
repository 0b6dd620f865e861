"""The domain: what Alertmanager sends us, validated once at the edge.

The wire format and its checks live in `receiver.wire`; everything past `parse_webhook`
(or `message_from_body`) works with these frozen dataclasses and may trust them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from receiver.wire import GO_ZERO_TIME_YEAR, PayloadError, WireWebhook, convert_webhook, decode_webhook, to_utc

__all__ = [
    "Alert",
    "Group",
    "PayloadError",
    "WebhookMessage",
    "fingerprint_of",
    "message_from_body",
    "parse_webhook",
]

AlertStatus = Literal["firing", "resolved"]


def _frozen(mapping: dict[str, str] | None) -> Mapping[str, str]:
    # Freshly decoded maps that nothing else holds: a read-only view needs no copy.
    return MappingProxyType(mapping if mapping is not None else {})


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    status: AlertStatus
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "unnamed")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "none")

    @property
    def dedup_key(self) -> str:
        """One alert state: a retry or an HA peer posting it again maps to the same key."""
        return f"{self.fingerprint}:{self.status}:{self.starts_at.isoformat()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": self.starts_at.isoformat(),
            "endsAt": self.ends_at.isoformat() if self.ends_at else None,
            "generatorURL": self.generator_url,
        }


@dataclass(frozen=True)
class Group:
    """The Alertmanager notification an alert arrived in."""

    group_key: str
    receiver: str
    status: str
    group_labels: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    common_labels: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    common_annotations: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    external_url: str = ""
    truncated_alerts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "groupKey": self.group_key,
            "receiver": self.receiver,
            "status": self.status,
            "groupLabels": dict(self.group_labels),
            "commonLabels": dict(self.common_labels),
            "commonAnnotations": dict(self.common_annotations),
            "externalURL": self.external_url,
            "truncatedAlerts": self.truncated_alerts,
        }


@dataclass(frozen=True)
class WebhookMessage:
    group: Group
    alerts: tuple[Alert, ...]

    def to_body(self) -> bytes:
        """A webhook body that parses back to this message (for bodies built, not received)."""
        body = {**self.group.to_json(), "version": "4", "alerts": [a.to_json() for a in self.alerts]}
        return json.dumps(body).encode()


def parse_webhook(body: object) -> WebhookMessage:
    """Validate a decoded Alertmanager webhook body (version 4). Unknown fields are ignored."""
    return message_from_wire(convert_webhook(body))


def message_from_body(raw: bytes) -> WebhookMessage:
    """The domain view of a webhook body as it came over the wire."""
    return message_from_wire(decode_webhook(raw))


def message_from_wire(webhook: WireWebhook) -> WebhookMessage:
    """Domain objects from a validated body (pure; the checks were made at decoding).

    A body stored by an older, laxer version may still hold a time that leaves the
    calendar in UTC: that is a PayloadError naming the field, never an OverflowError."""
    group = Group(
        group_key=webhook.group_key or "",
        receiver=webhook.receiver or "",
        status=webhook.status or "",
        group_labels=_frozen(webhook.group_labels),
        common_labels=_frozen(webhook.common_labels),
        common_annotations=_frozen(webhook.common_annotations),
        external_url=webhook.external_url or "",
        truncated_alerts=webhook.truncated_alerts,
    )
    default_status = webhook.default_status() or "firing"
    alerts = tuple(
        Alert(
            fingerprint=alert.fingerprint or fingerprint_of(alert.labels),
            status=alert.status or default_status,
            labels=_frozen(alert.labels),
            annotations=_frozen(alert.annotations),
            starts_at=to_utc(alert.starts_at, f"alerts[{i}].startsAt"),
            ends_at=_end(alert.ends_at, f"alerts[{i}].endsAt"),
            generator_url=alert.generator_url or "",
        )
        for i, alert in enumerate(webhook.alerts)
    )
    return WebhookMessage(group=group, alerts=alerts)


def fingerprint_of(labels: Mapping[str, str]) -> str:
    """Stable identity for alerts that arrive without Alertmanager's fingerprint."""
    canonical = "\xff".join(f"{k}\xfe{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _end(ends_at: datetime | None, field: str) -> datetime | None:
    # Year 1, whatever its offset, is Go's zero time: "no end", never converted.
    if ends_at is None or ends_at.year == GO_ZERO_TIME_YEAR:
        return None
    return to_utc(ends_at, field)
