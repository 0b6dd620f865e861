"""KubeBot's own notices: a missing heartbeat, and digests of what was suppressed.

Silence must be visible. If the always-firing Watchdog alert stops arriving, the alerting
pipeline in front of KubeBot is broken and nobody would know: KubeBot says so itself. And
each route hears, once per digest interval, what was not paged to it and why.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from receiver.config import Config
from receiver.pipeline.outcome import Outcome
from receiver.pipeline.render import neutralise_mentions
from receiver.pipeline.route import route_urls
from receiver.pipeline.suppress import HEARTBEAT_RULE, Memory
from receiver.service.outbox import Outbox
from receiver.service.waiting import wait_for_wakeup
from receiver.store.base import DeliveryQueue, Meta, NewDelivery, Outcomes, StoreUnavailable

log = structlog.get_logger("kubebot.watch")
DIGEST_MARK = "digest_sent_until"
HEARTBEAT_LABELS = {"alertname": "KubeBotHeartbeatMissing", "severity": "critical"}
DIGEST_LABELS = {"alertname": "KubeBotSuppressionDigest", "severity": "info"}


def digest_messages(
    outcomes: Sequence[Outcome], routes_for: Callable[[Mapping[str, str]], Sequence[str]], hours: float
) -> list[NewDelivery]:
    """One digest per channel: counts by reason and the alerts behind them (pure)."""
    per_url: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        for url in routes_for(outcome.alert.labels):
            per_url[url].append(outcome)
    messages = []
    for url, items in per_url.items():
        reasons = Counter(o.reason or "unknown" for o in items)
        lines = [f"{count} suppressed as {reason}" for reason, count in reasons.most_common()]
        names = Counter(f"{o.alert.name} ({o.reason}" + (f": {o.rule}" if o.rule else "") + ")" for o in items)
        lines.append("")
        lines.extend(f"  {n} x {name}" for name, n in names.most_common(20))
        if len(names) > 20:
            lines.append(f"  ... and {len(names) - 20} more kinds")
        title = f"[DIGEST] {len(items)} alerts not paged in the last {hours:g}h"
        # Alert names are untrusted: no mention in them may ping anyone.
        messages.append(NewDelivery(url, title, neutralise_mentions("\n".join(lines)), "info"))
    return messages


class WatchedStore(Outcomes, DeliveryQueue, Meta, Protocol):
    """What the watchkeeper reads (suppressed outcomes, its digest mark) and writes (notices)."""


class Watchkeeper:
    def __init__(
        self, config: Config, store: WatchedStore, outbox: Outbox, memory: Memory, clock: Callable[[], datetime]
    ) -> None:
        self._config = config
        self._store = store
        self._outbox = outbox
        self._memory = memory
        self._clock = clock
        self._started = clock()
        self._heartbeat_alarm = False
        # Set when this replica has just become the leader: it checks now, not at its next tick.
        self.wakeup = asyncio.Event()

    def _routes(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        return route_urls(self._config.notify.routes, self._config.notify.default_urls, labels)

    async def run(self, every_seconds: float = 10.0, leading: Callable[[], Awaitable[bool]] | None = None) -> None:
        """Checks every `every_seconds` while `leading` says this replica is the one (with
        several replicas, one watches, and each digest goes out once), and when woken."""
        while True:
            self.wakeup.clear()  # before looking, so a wake-up during the look is kept
            try:
                if leading is None or await leading():
                    await self.check()
            except StoreUnavailable as exc:
                log.warning("watch_failed", error=str(exc))
            await wait_for_wakeup(self.wakeup, every_seconds)

    async def check(self) -> None:
        notices = self.heartbeat_notices()
        try:
            notices += await self.digest_notices()
        except StoreUnavailable:
            raise
        except Exception:
            # A digest is a convenience; the heartbeat check beside it must never stop.
            log.exception("digest_failed")
            await self._store.set_meta(DIGEST_MARK, self._clock().isoformat())  # not again in 10 s
        if notices:
            await self._store.send_later(notices, self._clock())
            self._outbox.wakeup.set()

    def heartbeat_notices(self) -> list[NewDelivery]:
        heartbeat = self._config.suppression.heartbeat
        if not heartbeat.matchers:
            return []
        now = self._clock()
        last = self._memory.heartbeat_at or self._started
        missing = now - last > timedelta(seconds=heartbeat.missing_after_seconds)
        if missing == self._heartbeat_alarm:
            return []
        self._heartbeat_alarm = missing
        matchers = ", ".join(str(m) for m in heartbeat.matchers)
        if missing:
            log.error("heartbeat_missing", since=last.isoformat())
            title = "[FIRING] KubeBotHeartbeatMissing: the alerting pipeline may be down"
            body = (
                f"No alert matching {matchers} has arrived since {last.isoformat()}. "
                "Prometheus, Alertmanager or the route to KubeBot may be broken: alerts may not be reaching anyone."
            )
            kind = "failure"
        else:
            title = "[RESOLVED] KubeBotHeartbeatMissing: heartbeat is back"
            body = f"An alert matching {matchers} arrived again at {last.isoformat()}."
            kind = "success"
        return [NewDelivery(url, title, body, kind) for url in self._routes(HEARTBEAT_LABELS)]

    async def digest_notices(self) -> list[NewDelivery]:
        interval = self._config.suppression.digest_interval_seconds
        if interval <= 0:
            return []
        now = self._clock()
        since = _time_or_none(await self._store.get_meta(DIGEST_MARK)) or self._started
        if now - since < timedelta(seconds=interval):
            return []
        dropped = {rule.name for rule in self._config.suppression.rules if rule.action == "drop"}
        dropped.add(HEARTBEAT_RULE)  # the heartbeat is expected, not news
        outcomes = [o for o in await self._store.suppressed_since(since) if o.rule not in dropped]
        await self._store.set_meta(DIGEST_MARK, now.isoformat())
        return digest_messages(outcomes, self._routes, interval / 3600)


def _time_or_none(mark: str | None) -> datetime | None:
    """A stored mark written by another version (or damaged) counts as no mark."""
    try:
        parsed = datetime.fromisoformat(mark) if mark else None
    except ValueError:
        log.warning("digest_mark_unreadable")
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None
