"""What the pipeline decided about one alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class Decision:
    action: Literal["notify", "suppress", "hold"] = "notify"
    reason: str | None = None  # a stable word: rule, maintenance, flapping, repeat, ...
    rule: str | None = None  # the config entry (or the fact) that decided
    hold_until: datetime | None = None  # "hold": look again then (grace periods)
    incident_key: str | None = None  # "symptom": the cause's incident

    @classmethod
    def suppress(cls, reason: str, rule: str | None = None) -> Decision:
        return cls("suppress", reason, rule)

    @classmethod
    def hold(cls, until: datetime) -> Decision:
        return cls("hold", hold_until=until)
