"""The outbox owns delivery retries: every delivery is a stored row, so a restart resumes
retries, and the last failure becomes a dead letter that stays visible.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from receiver.config import NotifyConfig
from receiver.metrics import Metrics
from receiver.pipeline.stage import Message
from receiver.redact import redact_text, redact_url, url_scheme
from receiver.service.channels import Channel
from receiver.service.waiting import keep_working
from receiver.store.base import Delivery, DeliveryQueue

log = structlog.get_logger("kubebot.notify")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    initial_seconds: float
    max_seconds: float

    def delay(self, attempt: int, rng: random.Random) -> float | None:
        """Seconds before the next try after `attempt` failures, or None when out of tries."""
        if attempt >= self.max_attempts:
            return None
        # The exponent is capped: 2.0 ** 1100 overflows, and past 64 doublings the cap rules anyway.
        base = min(self.max_seconds, self.initial_seconds * 2.0 ** min(attempt - 1, 64))
        return float(base * rng.uniform(0.5, 1.0))  # jitter spreads retries after an outage

    @classmethod
    def from_config(cls, config: NotifyConfig) -> RetryPolicy:
        return cls(config.max_attempts, config.backoff_initial_seconds, config.backoff_max_seconds)


class Outbox:
    """Sends due deliveries from the store, with backoff, until each succeeds or is dead."""

    def __init__(
        self,
        store: DeliveryQueue,
        channel: Channel,
        policy: RetryPolicy,
        metrics: Metrics,
        *,
        concurrency: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._channel = channel
        self._policy = policy
        self._metrics = metrics
        self._concurrency = concurrency
        self._clock = clock
        self._rng = rng or random.Random()
        self.wakeup = asyncio.Event()

    async def run(self, poll_seconds: float = 1.0, stopping: asyncio.Event | None = None) -> None:
        await keep_working(self.send_due, self.wakeup, poll_seconds, "outbox", stopping)

    async def send_due(self) -> int:
        due = await self._store.due_deliveries(self._clock(), self._concurrency * 4)
        semaphore = asyncio.Semaphore(self._concurrency)

        async def bounded(delivery: Delivery) -> None:
            async with semaphore:
                await self._attempt(delivery)

        await asyncio.gather(*(bounded(d) for d in due))
        self._metrics.outbox_depth.set(self._store.outbox_count())
        return len(due)

    async def _attempt(self, delivery: Delivery) -> None:
        scheme = url_scheme(delivery.url)
        bound = log.bind(delivery=delivery.id, alert_id=delivery.alert_id, channel=redact_url(delivery.url))
        message = Message(delivery.title, delivery.body, delivery.notify_type)
        try:
            await self._channel.send(delivery.url, message)
        except Exception as exc:  # a channel's failure is data for the retry policy
            error = redact_text(str(exc) or type(exc).__name__)
            self._metrics.notifications.labels(scheme, "failure").inc()
            now = self._clock()
            delay = self._policy.delay(delivery.attempts + 1, self._rng)
            retry_at = now + timedelta(seconds=delay) if delay is not None else None
            await self._store.delivery_failed(delivery.id, error, now, retry_at)
            if retry_at is None:
                self._metrics.dead_letters.labels(scheme).inc()
                bound.error("dead_letter", attempts=delivery.attempts + 1, error=error)
            else:
                bound.warning("delivery_failed", attempts=delivery.attempts + 1, retry_in=delay, error=error)
            return
        self._metrics.notifications.labels(scheme, "success").inc()
        await self._store.delivery_succeeded(delivery.id, self._clock())
        bound.info("delivered", attempts=delivery.attempts + 1)
