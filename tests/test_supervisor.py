"""A background task never dies silently: it is logged, counted, restarted with backoff,
reported by readiness when it keeps failing, and still stops at once when cancelled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from receiver.app import ALERTS_PATH, Credentials, create_app
from receiver.config import Config, StoreConfig
from receiver.metrics import Metrics
from receiver.service.supervisor import Backoff, Supervisor
from tests.conftest import fixture_json


class FakeTime:
    """An injected clock and sleep: a backoff passes at once, and the clock moves with it."""

    def __init__(self, block_after: int | None = None) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._block_after = block_after
        self.blocked = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if self._block_after is not None and len(self.slept) >= self._block_after:
            self.blocked.set()
            await asyncio.Event().wait()  # resting until cancelled
        self.slept.append(seconds)
        self.now += seconds


Body = Callable[[], Awaitable[None]]


def failing(times: int, then: Body | None = None) -> tuple[Body, list[int]]:
    """A task body that raises `times` times, then returns (or runs `then`)."""
    runs: list[int] = []

    async def run() -> None:
        runs.append(len(runs))
        if len(runs) <= times:
            raise RuntimeError(f"boom {len(runs)}")
        if then is not None:
            await then()

    return run, runs


def restarts(metrics: Metrics, task: str) -> float:
    return metrics.registry.get_sample_value("kubebot_task_restarts_total", {"task": task}) or 0.0


async def test_a_task_that_raises_is_restarted_until_it_returns() -> None:
    time = FakeTime()
    run, runs = failing(2)
    supervisor = Supervisor(Metrics(), sleep=time.sleep, clock=time.clock)
    await supervisor.spawn("worker-0", run)
    assert len(runs) == 3


async def test_each_restart_is_counted_by_task() -> None:
    time = FakeTime()
    metrics = Metrics()
    run, _ = failing(2)
    await Supervisor(metrics, sleep=time.sleep, clock=time.clock).spawn("outbox", run)
    assert restarts(metrics, "outbox") == 2.0


async def test_a_failure_is_logged_with_task_name_type_message_and_traceback() -> None:
    time = FakeTime()
    run, _ = failing(1)
    with capture_logs() as logs:
        await Supervisor(Metrics(), sleep=time.sleep, clock=time.clock).spawn("maintenance", run)
    failed = [entry for entry in logs if entry["event"] == "task_failed"]
    assert [(e["task"], e["error_type"], e["error"], e["exc_info"]) for e in failed] == [
        ("maintenance", "RuntimeError", "boom 1", True)
    ]


async def test_backoff_doubles_from_one_second_up_to_a_minute() -> None:
    time = FakeTime()
    run, _ = failing(9)
    await Supervisor(Metrics(), sleep=time.sleep, clock=time.clock).spawn("watchkeeper", run)
    assert time.slept == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


async def problems_of_a_failing_task(backoffs: int) -> list[str]:
    """What readiness hears of a task that always fails, once it has waited out `backoffs`
    backoffs and failed again."""
    time = FakeTime(block_after=backoffs)
    run, _ = failing(100)
    supervisor = Supervisor(Metrics(), sleep=time.sleep, clock=time.clock)
    task = supervisor.spawn("worker-1", run)
    await time.blocked.wait()
    problems = supervisor.problems()
    task.cancel()
    return problems


async def test_a_task_that_keeps_failing_is_reported_for_readiness() -> None:
    problems = await problems_of_a_failing_task(backoffs=3)
    assert problems == ["worker-1 failing: 4 failures in a row, last: RuntimeError: boom 4"]


async def test_a_task_that_failed_once_is_not_reported() -> None:
    problems = await problems_of_a_failing_task(backoffs=1)
    assert problems == []


async def test_a_task_that_recovered_is_no_longer_reported() -> None:
    time = FakeTime()
    running = asyncio.Event()

    async def stay_up() -> None:
        running.set()
        await asyncio.Event().wait()

    run, _ = failing(5, then=stay_up)
    supervisor = Supervisor(Metrics(), Backoff(healthy_after_seconds=120), sleep=time.sleep, clock=time.clock)
    task = supervisor.spawn("outbox", run)
    await running.wait()
    time.now += 120
    problems = supervisor.problems()
    task.cancel()
    assert problems == []


async def test_cancellation_stops_a_running_task() -> None:
    running = asyncio.Event()

    async def forever() -> None:
        running.set()
        await asyncio.Event().wait()

    task = Supervisor(Metrics()).spawn("worker-0", forever)
    await running.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancellation_stops_a_task_waiting_out_its_backoff() -> None:
    time = FakeTime(block_after=0)
    run, _ = failing(100)
    task = Supervisor(Metrics(), sleep=time.sleep, clock=time.clock).spawn("worker-0", run)
    await time.blocked.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_task_that_fails_during_shutdown_is_not_restarted() -> None:
    time = FakeTime()
    stopping = asyncio.Event()
    stopping.set()
    run, runs = failing(100)
    await Supervisor(Metrics(), sleep=time.sleep, clock=time.clock, stopping=stopping).spawn("outbox", run)
    assert (len(runs), time.slept) == (1, [])


# -- in the app: readiness names the failing task, intake goes on --------------------------------


class BreakableClock:
    """The app's clock; once broken, every reading raises, so each task that reads it fails
    on every run (the fault persists: restarting does not help)."""

    def __init__(self) -> None:
        self.broken = False

    def __call__(self) -> datetime:
        if self.broken:
            raise OSError("clock source unavailable")
        return datetime.now(UTC)


async def _not_ready_reasons(client: TestClient[Any, Any], task: str) -> list[str]:
    for _ in range(1000):
        answer = await client.get("/readyz")
        reasons: list[str] = (await answer.json()).get("reasons", [])
        if answer.status == 503 and any(r.startswith(f"{task} failing") for r in reasons):
            return reasons
        await asyncio.sleep(0.01)
    raise AssertionError(f"/readyz never named {task}")


async def test_a_task_that_keeps_failing_in_the_app_makes_readyz_503_naming_it_while_alerts_are_still_accepted(
    tmp_path: Path,
) -> None:
    clock = BreakableClock()
    config = Config(store=StoreConfig(path=str(tmp_path / "kb.db")))
    fast = Backoff(initial_seconds=0.01, max_seconds=0.01, failing_after=3)
    app = create_app(config, clock=clock, credentials=Credentials(), backoff=fast)
    body = json.dumps(fixture_json("alertmanager/alertmanager_webhook_sample.json"))
    async with TestClient(TestServer(app)) as client:
        clock.broken = True
        first = await client.post(ALERTS_PATH, data=body)  # wakes the worker, which reads the clock
        reasons = await _not_ready_reasons(client, "worker-0")
        second = await client.post(ALERTS_PATH, data=body)
    assert (first.status, second.status) == (200, 200)
    assert "OSError: clock source unavailable" in next(r for r in reasons if r.startswith("worker-0"))
