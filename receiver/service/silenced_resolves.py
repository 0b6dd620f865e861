"""Resolves that Alertmanager never sends: alerts silenced when they resolved.

Alertmanager (0.25) mutes the resolve of a silenced alert and then forgets the alert, so a
KubeBot incident silenced from its page would stay firing for ever. While
`alertmanager.url` is configured, the leader asks Alertmanager now and then for every
alert it still holds (silenced and inhibited ones too); a firing alert of a silenced
incident that Alertmanager no longer holds at all, in two checks in a row (an
Alertmanager that just restarted holds nothing until Prometheus sends again), is resolved
by a webhook body built like Alertmanager's, through the normal intake: the resolve is
recorded and paged by the same rules as any other. An error asking is never an answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

import structlog

from receiver.models import Alert, Group, WebhookMessage
from receiver.pipeline.outcome import GroupRecord
from receiver.service.silences import AlertmanagerClient, AlertmanagerRefused, AlertmanagerUnavailable
from receiver.store.base import Actions, IncidentQuery, Incidents, Queue, StoreUnavailable

log = structlog.get_logger("kubebot.silenced_resolves")
PAGE = 200


class SilencedStore(Incidents, Actions, Queue, Protocol):
    """What the check reads (firing incidents, their silences and alerts) and feeds (intake)."""


@dataclass(frozen=True)
class Watched:
    """A firing alert of a silenced incident, with the notification it arrived in."""

    alert: Alert
    group: GroupRecord


def gone_alerts(watched: Iterable[Watched], held: Sequence[Mapping[str, Any]]) -> list[Watched]:
    """The watched alerts Alertmanager holds neither by fingerprint nor by labels (pure)."""
    fingerprints = {a.get("fingerprint") for a in held}
    label_sets = [a.get("labels") for a in held]
    return [w for w in watched if w.alert.fingerprint not in fingerprints and dict(w.alert.labels) not in label_sets]


def resolved_bodies(watched: Sequence[Watched], now: datetime) -> list[tuple[bytes, int]]:
    """The webhooks Alertmanager would have sent, one per group (its key places the alert
    in its incident): the same alerts, resolved now; each with its alert count (pure)."""
    groups: dict[str, list[Watched]] = {}
    for item in watched:
        groups.setdefault(item.group.group_key, []).append(item)
    bodies = []
    for items in groups.values():
        record = items[0].group
        group = Group(
            group_key=record.group_key,
            receiver=record.receiver,
            status="resolved",
            group_labels=record.group_labels,
            common_labels=record.common_labels,
            common_annotations=record.common_annotations,
            external_url=record.external_url,
        )
        resolved = tuple(replace(w.alert, status="resolved", ends_at=now) for w in items)
        bodies.append((WebhookMessage(group, resolved).to_body(), len(resolved)))
    return bodies


class SilencedResolves:
    def __init__(
        self,
        store: SilencedStore,
        alertmanager: AlertmanagerClient,
        clock: Callable[[], datetime],
        wakeup: Callable[[], None],
    ) -> None:
        self._store = store
        self._alertmanager = alertmanager
        self._clock = clock
        self._wakeup = wakeup
        self._missing: set[str] = set()  # fingerprints Alertmanager did not hold last time

    async def run(self, every_seconds: float = 60.0, leading: Callable[[], Awaitable[bool]] | None = None) -> None:
        while True:
            try:
                if leading is None or await leading():
                    await self.check()
            except StoreUnavailable as exc:
                log.warning("silenced_resolve_check_failed", error=str(exc))
            await asyncio.sleep(every_seconds)

    async def check(self) -> int:
        """One look; how many alerts it resolved."""
        watched = await self.silenced_firing()
        if not watched:
            self._missing.clear()
            return 0
        try:
            held = await self._alertmanager.active_alerts()
        except (AlertmanagerUnavailable, AlertmanagerRefused) as exc:
            log.warning("alertmanager_alerts_unavailable", error=str(exc))
            return 0
        gone = gone_alerts(watched, held)
        confirmed = [w for w in gone if w.alert.fingerprint in self._missing]
        self._missing = {w.alert.fingerprint for w in gone} - {w.alert.fingerprint for w in confirmed}
        if confirmed:
            now = self._clock()
            for body, count in resolved_bodies(confirmed, now):
                await self._store.accept(body, count, now)
            self._wakeup()
            log.info("silenced_alerts_resolved", fingerprints=[w.alert.fingerprint for w in confirmed])
        return len(confirmed)

    async def silenced_firing(self) -> list[Watched]:
        """The alerts still firing (each one's latest state) of firing incidents that carry
        a silence."""
        found: list[Watched] = []
        before: int | None = None
        while True:
            page = await self._store.incidents(IncidentQuery(status="firing", limit=PAGE, before_id=before))
            for incident in page:
                if incident.id is not None:
                    found += await self._firing_if_silenced(incident.id)
            if len(page) < PAGE or page[-1].id is None:
                return found
            before = page[-1].id

    async def _firing_if_silenced(self, incident_id: int) -> list[Watched]:
        if not any(action.kind == "silence" for action in await self._store.actions(incident_id)):
            return []
        detail = await self._store.incident(incident_id)
        if detail is None:
            return []
        latest = {a.outcome.alert.fingerprint: a.outcome for a in detail.alerts}
        firing = []
        for outcome in latest.values():
            record = outcome.alert
            if record.status != "firing":
                continue
            try:
                firing.append(Watched(record.to_alert(), outcome.group))
            except ValueError:  # a damaged row: left alone rather than resolved wrongly
                log.warning("stored_alert_unreadable", fingerprint=record.fingerprint)
        return firing
