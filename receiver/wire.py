"""Alertmanager's webhook body (version 4) as it arrives on the wire, and its validation.

The schema is declared once, as msgspec Structs: msgspec decodes and checks a 20-alert
group in about 11 µs, where `json.loads` alone took 27 µs and checking the result in
Python another 68 µs. Intake only needs the check; workers turn the stored body into the
frozen domain objects of `receiver.models` later, off the request path.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

MAX_LABELS = 256
MAX_LABEL_VALUE_CHARS = 16_384
MAX_ALERTS_PER_MESSAGE = 10_000
MAX_FINGERPRINT_CHARS = 128
# Alertmanager marks "no end yet" with Go's zero time.
GO_ZERO_TIME_YEAR = 1

Text = Annotated[str, msgspec.Meta(max_length=MAX_LABEL_VALUE_CHARS)]
StringMap = Annotated[dict[str, Text], msgspec.Meta(max_length=MAX_LABELS)]
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]


class PayloadError(ValueError):
    """A webhook body that does not match Alertmanager's schema; `field` is its JSON path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# gc=False: these hold only strings, maps of strings and datetimes, so no cycles;
# untracked, a storm of them does not make the cyclic GC run more often.
class WireAlert(
    msgspec.Struct, gc=False, rename={"starts_at": "startsAt", "ends_at": "endsAt", "generator_url": "generatorURL"}
):
    labels: StringMap
    starts_at: Timestamp
    # Some senders leave out the per-alert status; the group's status then applies.
    status: Literal["firing", "resolved"] | None = None
    annotations: StringMap | None = None
    ends_at: Timestamp | None = None
    generator_url: str | None = None
    fingerprint: Annotated[str, msgspec.Meta(max_length=MAX_FINGERPRINT_CHARS)] | None = None


class WireWebhook(
    msgspec.Struct,
    gc=False,
    rename={
        "group_key": "groupKey",
        "group_labels": "groupLabels",
        "common_labels": "commonLabels",
        "common_annotations": "commonAnnotations",
        "external_url": "externalURL",
        "truncated_alerts": "truncatedAlerts",
    },
):
    """Unknown fields (notification_reason, routeLabels, ...) are accepted and ignored."""

    alerts: Annotated[list[WireAlert], msgspec.Meta(max_length=MAX_ALERTS_PER_MESSAGE)]
    version: Literal["4"] = "4"
    group_key: str | None = None
    receiver: str | None = None
    status: str | None = None
    group_labels: StringMap | None = None
    common_labels: StringMap | None = None
    common_annotations: StringMap | None = None
    external_url: str | None = None
    truncated_alerts: Annotated[int, msgspec.Meta(ge=0, le=2**53)] = 0

    def firing_count(self) -> int:
        default_firing = self.status == "firing"
        return sum(1 for alert in self.alerts if alert.status == "firing" or (alert.status is None and default_firing))

    def default_status(self) -> Literal["firing", "resolved"] | None:
        return "firing" if self.status == "firing" else "resolved" if self.status == "resolved" else None


_DECODER = msgspec.json.Decoder(WireWebhook)


def decode_webhook(raw: bytes) -> WireWebhook:
    """Decode and validate a webhook body; PayloadError names the first bad field."""
    try:
        webhook = _DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        raise _payload_error(str(exc), lambda: json.loads(raw)) from None
    except msgspec.DecodeError as exc:
        raise PayloadError("$", f"body is not valid JSON: {str(exc)[:200]}") from None
    _check_semantics(webhook)
    return webhook


def convert_webhook(body: object) -> WireWebhook:
    """The same validation for a body that is already decoded (files, tests)."""
    try:
        webhook = msgspec.convert(body, WireWebhook)
    except msgspec.ValidationError as exc:
        raise _payload_error(str(exc), lambda: body) from None
    _check_semantics(webhook)
    return webhook


def _check_semantics(webhook: WireWebhook) -> None:
    """What a type cannot say: a status must come from somewhere, a start is required, and
    every time must still be a date once in UTC (workers convert it; 200 then a crash is not
    an answer)."""
    default_status = webhook.default_status()
    for i, alert in enumerate(webhook.alerts):
        if alert.status is None and default_status is None:
            raise PayloadError(f"alerts[{i}].status", 'expected "firing" or "resolved"')
        if alert.starts_at.year == GO_ZERO_TIME_YEAR:
            raise PayloadError(f"alerts[{i}].startsAt", "required (Go's zero time is not a start)")
        to_utc(alert.starts_at, f"alerts[{i}].startsAt")
        if alert.ends_at is not None and alert.ends_at.year != GO_ZERO_TIME_YEAR:
            to_utc(alert.ends_at, f"alerts[{i}].endsAt")


def to_utc(moment: datetime, field: str) -> datetime:
    """`moment` in UTC; PayloadError naming `field` when that leaves the calendar (year 1
    with a positive offset, year 9999 with a negative one)."""
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise PayloadError(field, "out of range once converted to UTC (years 1 to 9999)") from None


_AT = re.compile(r"^(?P<problem>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_MISSING = re.compile(r"missing required field `(?P<name>[^`]+)`")


def _payload_error(message: str, body: Any) -> PayloadError:
    """msgspec says `$.alerts[0].labels[...]`; users want `alerts[0].labels.severity`."""
    match = _AT.match(message)
    problem, path = (match["problem"], match["path"]) if match else (message, "")
    missing = _MISSING.search(problem)
    if missing:
        path = f"{path}.{missing['name']}"
    if path.endswith("[...]"):
        path = path[: -len("[...]")]
        try:
            key = _first_bad_key(_walk(body(), path))
        except (ValueError, RecursionError):  # too deep for json.loads: the map's path will do
            key = None
        if key is not None:
            path = f"{path}.{key}"
    return PayloadError(path.lstrip(".") or "$", problem)


def _walk(obj: Any, path: str) -> Any:
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path):
        try:
            obj = obj[int(index)] if index else obj[name]
        except (KeyError, IndexError, TypeError):
            return None
    return obj


def _first_bad_key(mapping: Any) -> str | None:
    if not isinstance(mapping, dict):
        return None
    for key, value in mapping.items():
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE_CHARS:
            return str(key)
    return None
