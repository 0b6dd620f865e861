"""Intake first: while webhooks pour in, workers get only a share of the loop.

Intake and workers share one event loop. In an alert storm the workers would otherwise
take the loop from intake, Alertmanager's POSTs would slow down, time out and be sent
again, and the storm would grow. What intake accepted is already on disk, so a worker
that waits loses nothing: after each batch it works while intake is busy, the workers
together pause long enough that their batches fill at most `worker_share` of the time.
When intake goes quiet they run at full speed again. Processing never stops, and the
queue stays bounded by store.max_pending (503 beyond it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class IntakeFirst:
    # Busy: at least `busy_requests` within `quiet_seconds` (200 a second). Alertmanager
    # in a normal day sends a few; only a storm or a benchmark gets here.
    quiet_seconds: float = 0.05
    busy_requests: int = 10
    # Or this many requests in flight at once: a loop busy with workers answers slowly, so
    # the rate alone would stay under `busy_requests` while senders queue up behind it.
    busy_in_flight: int = 4
    worker_share: float = 0.2  # of the loop's time, for workers while intake is busy
    longest_pause_seconds: float = 2.0

    def pause_after(self, batch_seconds: float) -> float:
        """How long workers rest after a batch that took `batch_seconds` under pressure."""
        pause = batch_seconds * (1 - self.worker_share) / self.worker_share
        return min(max(pause, 0.0), self.longest_pause_seconds)


class IntakeActivity:
    """When intake last took a request, and when workers may next run while it is busy."""

    def __init__(self, policy: IntakeFirst | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or IntakeFirst()
        self._clock = clock
        self._window_start = float("-inf")
        self._requests_in_window = 0
        self._busy_until = float("-inf")
        self._resume_at = float("-inf")
        self._in_flight = 0

    def request_arrived(self) -> None:
        now = self._clock()
        if now - self._window_start > self.policy.quiet_seconds:
            self._window_start, self._requests_in_window = now, 0
        self._requests_in_window += 1
        self._in_flight += 1
        if self._requests_in_window >= self.policy.busy_requests or self._in_flight >= self.policy.busy_in_flight:
            self._busy_until = now + self.policy.quiet_seconds

    def request_answered(self) -> None:
        self._in_flight = max(0, self._in_flight - 1)

    def busy(self) -> bool:
        return self._clock() < self._busy_until

    def worked(self, seconds: float) -> None:
        """A worker finished a batch that took `seconds`; shared by all workers."""
        if self.busy():
            self._resume_at = max(self._resume_at, self._clock()) + self.policy.pause_after(seconds)

    def pause_left(self) -> float:
        """Seconds workers should still rest: 0 once intake is quiet or the pause is over."""
        return max(0.0, self._resume_at - self._clock()) if self.busy() else 0.0

    async def wait_for_turn(self) -> None:
        # Polling, not an event: what ends the wait is requests *not* arriving.
        while (pause := self.pause_left()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(pause, self.policy.quiet_seconds))
