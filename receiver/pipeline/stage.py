"""The alert pipeline: small stages run in order, assembled by hand in `build_pipeline`.

As in Alertmanager's notify package each stage is one type with one method. Stages see a
batch (the alerts of one group claimed together, so enrichers can share lookups) and
return it with their part filled in. Suppression never drops an alert from the batch: it
sets a decision with a reason, and later stages skip what is not to be sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from enrichers.base import EnrichContext, Enricher, Enrichment, run_enrichers
from rca.model import RootCause
from receiver.config import Config
from receiver.incidents import severity_rank
from receiver.metrics import Metrics
from receiver.models import Alert, Group
from receiver.pipeline.render import Message, render_message
from receiver.pipeline.route import route_urls
from receiver.redact import redact_url


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


@dataclass(frozen=True)
class Work:
    alert: Alert
    group: Group
    received_at: datetime
    held: bool = False  # already held once for a grace period
    enrichment: Mapping[str, Enrichment] = field(default_factory=dict)
    root_causes: tuple[RootCause, ...] = ()
    decision: Decision = field(default_factory=Decision)
    routes: tuple[str, ...] = ()
    message: Message | None = None
    # The dependency graph around the ranked causes, for the dashboard.
    graph: Mapping[str, Any] | None = None
    # Alerts with one key share one incident; the Alertmanager group unless correlated.
    incident_key: str | None = None
    # Paged in the message of another alert of its group (that alert's fingerprint).
    sent_with: str | None = None

    def outcome(self) -> dict[str, Any]:
        """The stored and printed record of what happened to this alert (no secrets)."""
        return {
            "fingerprint": self.alert.fingerprint,
            "alertname": self.alert.name,
            "decision": self.decision.action,
            "reason": self.decision.reason,
            "rule": self.decision.rule,
            "routes": [redact_url(u) for u in self.routes],
            "root_causes": [c.to_json() for c in self.root_causes],
            "enrichment": {name: e.to_json() for name, e in self.enrichment.items()},
            "alert": self.alert.to_json(),
            "group": self.group.to_json(),
            "graph": dict(self.graph) if self.graph else None,
            "incident_key": self.incident_key or self.group.group_key,
            "sent_with": self.sent_with,
        }


class Stage(Protocol):
    async def exec(self, batch: Sequence[Work]) -> list[Work]: ...


class EnrichStage:
    """Every source for every alert of the batch at once, each within the time budget."""

    def __init__(
        self,
        enrichers: Sequence[Enricher],
        timeout_seconds: float,
        metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._enrichers = enrichers
        self._timeout = timeout_seconds
        self._metrics = metrics
        self._clock = clock

    async def exec(self, batch: Sequence[Work]) -> list[Work]:
        if not self._enrichers or not batch:
            return list(batch)
        ctx = EnrichContext(
            group=batch[0].group,
            now=self._clock(),
            timeout_seconds=self._timeout,
            alerts=tuple(w.alert for w in batch),
        )
        results = await asyncio.gather(*(run_enrichers(self._enrichers, w.alert, ctx) for w in batch))
        for found in results:
            for name, enrichment in found.items():
                self._metrics.enrichment_seconds.labels(name).observe(enrichment.elapsed_seconds)
                if enrichment.status == "unavailable":
                    self._metrics.enrichment_failures.labels(name).inc()
        return [dataclasses.replace(w, enrichment=r) for w, r in zip(batch, results, strict=True)]


class RouteStage:
    """Which Apprise URLs each alert goes to, per `notify.routes` and `default_urls`."""

    def __init__(self, config: Config) -> None:
        self._routes = config.notify.routes
        self._default_urls = config.notify.default_urls

    async def exec(self, batch: Sequence[Work]) -> list[Work]:
        return [
            dataclasses.replace(w, routes=route_urls(self._routes, self._default_urls, w.alert.labels))
            if w.decision.action == "notify"
            else w
            for w in batch
        ]


class RenderStage:
    """One message per channel set and status for the alerts of a batch (one Alertmanager
    group), as Alertmanager itself groups: 20 crash-looping pods page once, not 20 times.
    The most severe alert carries the message; the others record that they went with it."""

    async def exec(self, batch: Sequence[Work]) -> list[Work]:
        bundles: dict[tuple[tuple[str, ...], str], list[int]] = {}
        for i, work in enumerate(batch):
            if work.decision.action == "notify" and work.routes:
                bundles.setdefault((work.routes, work.alert.status), []).append(i)
        rendered = list(batch)
        for members in bundles.values():
            carrier = max(members, key=lambda i: (severity_rank(batch[i].alert.severity), -i))
            outcomes = [batch[carrier].outcome()] + [batch[i].outcome() for i in members if i != carrier]
            rendered[carrier] = dataclasses.replace(batch[carrier], message=render_message(*outcomes))
            for i in members:
                if i != carrier:
                    rendered[i] = dataclasses.replace(batch[i], sent_with=batch[carrier].alert.fingerprint)
        return rendered


class StageFailed(Exception):
    """A stage raised: `stage` names it (a word, for metrics and the quarantine list)."""

    def __init__(self, stage: str, error: Exception) -> None:
        super().__init__(f"{stage}: {type(error).__name__}: {error}")
        self.stage = stage


def stage_name(stage: object) -> str:
    """EnrichAndRankStage -> enrich_and_rank: a small fixed set, safe as a label value."""
    name = type(stage).__name__.removesuffix("Stage")
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


class Pipeline:
    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)

    async def run(self, batch: Sequence[Work]) -> list[Work]:
        items = list(batch)
        for stage in self.stages:
            try:
                items = await stage.exec(items)
            except Exception as exc:
                raise StageFailed(stage_name(stage), exc) from exc
        return items
