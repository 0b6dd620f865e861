"""One supervisor for every long-lived task: a background task never dies silently.

A task that raises is logged (with its traceback), counted, and started again after a
backoff that doubles up to a cap, so a fault that persists costs a log line a minute, not
a busy loop. One that keeps failing shows in /readyz. Cancellation (shutdown) is never
caught: it ends the task at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from receiver.metrics import Metrics

log = structlog.get_logger("kubebot.supervisor")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass(frozen=True)
class Backoff:
    initial_seconds: float = 1.0
    max_seconds: float = 60.0
    # This many failures in a row make the task "failing" for readiness...
    failing_after: int = 3
    # ...until a run lasts this long: then it counts as healthy again and backoff starts over.
    healthy_after_seconds: float = 120.0

    def delay(self, failures: int) -> float:
        return float(min(self.max_seconds, self.initial_seconds * 2 ** max(0, failures - 1)))


@dataclass
class _State:
    failures: int = 0  # in a row
    last_error: str = ""
    started_at: float = 0.0
    backing_off: bool = False


class Supervisor:
    def __init__(
        self,
        metrics: Metrics,
        backoff: Backoff | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self._metrics = metrics
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._clock = clock
        self._stopping = stopping
        self._states: dict[str, _State] = {}

    def spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Start `run()` as task `name`, restarted whenever it raises. A normal return ends it."""
        self._states[name] = _State()
        return asyncio.create_task(self._supervise(name, run), name=name)

    def problems(self) -> list[str]:
        """Readiness reasons: the tasks that keep failing, with their last error."""
        now = self._clock()
        reasons = []
        for name, state in sorted(self._states.items()):
            recovered = not state.backing_off and now - state.started_at >= self._backoff.healthy_after_seconds
            if state.failures >= self._backoff.failing_after and not recovered:
                reasons.append(f"{name} failing: {state.failures} failures in a row, last: {state.last_error}")
        return reasons

    async def _supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        state = self._states[name]
        while True:
            state.started_at = self._clock()
            try:
                await run()
                return
            except Exception as exc:
                if self._clock() - state.started_at >= self._backoff.healthy_after_seconds:
                    state.failures = 0  # it had recovered: this is a new fault, not the old one again
                state.failures += 1
                state.last_error = f"{type(exc).__name__}: {exc}"[:300]
                delay = self._backoff.delay(state.failures)
                log.exception(
                    "task_failed",
                    task=name,
                    error_type=type(exc).__name__,
                    error=str(exc)[:300],
                    failures=state.failures,
                    restart_in=delay,
                )
                self._metrics.task_restarts.labels(name).inc()
            if self._stopping is not None and self._stopping.is_set():
                return
            state.backing_off = True
            try:
                await self._sleep(delay)
            finally:
                state.backing_off = False
            if self._stopping is not None and self._stopping.is_set():
                return
            log.info("task_restarted", task=name, failures=state.failures)
