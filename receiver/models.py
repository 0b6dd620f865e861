"""The domain: what Alertmanager sends us, validated once at the edge.

Everything past `parse_webhook` works with these frozen dataclasses and may trust them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

AlertStatus = Literal["firing", "resolved"]

# Alertmanager marks "no end yet" with Go's zero time.
_GO_ZERO_TIME_YEAR = 1
MAX_LABELS = 256
MAX_LABEL_VALUE_CHARS = 16_384
MAX_ALERTS_PER_MESSAGE = 10_000


class PayloadError(ValueError):
    """A webhook body that does not match Alertmanager's schema; `field` is its JSON path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


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


def parse_webhook(body: object) -> WebhookMessage:
    """Validate a decoded Alertmanager webhook body (version 4). Unknown fields are ignored."""
    if not isinstance(body, dict):
        raise PayloadError("$", "expected a JSON object")
    version = body.get("version", "4")
    if version != "4":
        raise PayloadError("version", f'unsupported version {version!r}, expected "4"')
    raw_alerts = body.get("alerts")
    if not isinstance(raw_alerts, list):
        raise PayloadError("alerts", "expected a list of alerts")
    if len(raw_alerts) > MAX_ALERTS_PER_MESSAGE:
        raise PayloadError("alerts", f"more than {MAX_ALERTS_PER_MESSAGE} alerts in one message")
    truncated = body.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise PayloadError("truncatedAlerts", "expected a non-negative integer")
    group = Group(
        group_key=_optional_str(body, "groupKey", "groupKey"),
        receiver=_optional_str(body, "receiver", "receiver"),
        status=_optional_str(body, "status", "status"),
        group_labels=_string_map(body.get("groupLabels"), "groupLabels"),
        common_labels=_string_map(body.get("commonLabels"), "commonLabels"),
        common_annotations=_string_map(body.get("commonAnnotations"), "commonAnnotations"),
        external_url=_optional_str(body, "externalURL", "externalURL"),
        truncated_alerts=truncated,
    )
    # Some senders leave out the per-alert status; the group's status then applies.
    default_status = group.status if group.status in ("firing", "resolved") else None
    alerts = tuple(_parse_alert(raw, f"alerts[{i}]", default_status) for i, raw in enumerate(raw_alerts))
    return WebhookMessage(group=group, alerts=alerts)


def _parse_alert(raw: object, path: str, default_status: str | None) -> Alert:
    if not isinstance(raw, dict):
        raise PayloadError(path, "expected an object")
    status = raw.get("status", default_status)
    if status not in ("firing", "resolved"):
        raise PayloadError(f"{path}.status", 'expected "firing" or "resolved"')
    labels = _string_map(raw.get("labels"), f"{path}.labels", required=True)
    annotations = _string_map(raw.get("annotations"), f"{path}.annotations")
    starts_at = _timestamp(raw.get("startsAt"), f"{path}.startsAt")
    if starts_at is None:
        raise PayloadError(f"{path}.startsAt", "required")
    ends_at = _timestamp(raw.get("endsAt"), f"{path}.endsAt")
    fingerprint = raw.get("fingerprint")
    if fingerprint is None or fingerprint == "":
        fingerprint = fingerprint_of(labels)
    elif not isinstance(fingerprint, str) or len(fingerprint) > 128:
        raise PayloadError(f"{path}.fingerprint", "expected a string of at most 128 characters")
    return Alert(
        fingerprint=fingerprint,
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=_optional_str(raw, "generatorURL", f"{path}.generatorURL"),
    )


def fingerprint_of(labels: Mapping[str, str]) -> str:
    """Stable identity for alerts that arrive without Alertmanager's fingerprint."""
    canonical = "\xff".join(f"{k}\xfe{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _optional_str(obj: dict[str, Any], key: str, path: str) -> str:
    value = obj.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(path, "expected a string")
    return value


def _string_map(value: object, path: str, *, required: bool = False) -> Mapping[str, str]:
    if value is None:
        if required:
            raise PayloadError(path, "required")
        return _frozen({})
    if not isinstance(value, dict):
        raise PayloadError(path, "expected an object of strings")
    if len(value) > MAX_LABELS:
        raise PayloadError(path, f"more than {MAX_LABELS} entries")
    for key, item in value.items():
        if not isinstance(item, str):
            raise PayloadError(f"{path}.{key}", "expected a string")
        if len(item) > MAX_LABEL_VALUE_CHARS:
            raise PayloadError(f"{path}.{key}", f"longer than {MAX_LABEL_VALUE_CHARS} characters")
    # Freshly decoded JSON that nothing else holds: a read-only view needs no copy.
    return MappingProxyType(value)


def _timestamp(value: object, path: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(path, "expected an RFC 3339 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(path, f"not an RFC 3339 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise PayloadError(path, "timestamp needs a time zone")
    if parsed.year == _GO_ZERO_TIME_YEAR:
        return None
    return parsed.astimezone(UTC)
