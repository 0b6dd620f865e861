"""Intake first: workers step back only while requests pour in, and never stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from receiver.service.priority import IntakeActivity, IntakeFirst
from tests.test_quarantine import NOW, alert, body, worker_on


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_few_requests_a_second_never_slow_the_workers() -> None:
    clock = FakeClock()
    intake = IntakeActivity(IntakeFirst(quiet_seconds=0.05, busy_requests=10), clock)
    for _ in range(50):  # 20 a second: a busy Alertmanager on a normal day
        intake.request_arrived()
        intake.worked(0.5)
        clock.now += 0.05
    assert not intake.busy()
    assert intake.pause_left() == 0.0


def test_under_a_flood_workers_rest_four_times_their_batch_then_resume_when_it_stops() -> None:
    clock = FakeClock()
    intake = IntakeActivity(IntakeFirst(quiet_seconds=0.05, busy_requests=10, worker_share=0.2), clock)
    for _ in range(10):
        intake.request_arrived()
    intake.worked(0.01)
    assert intake.busy()
    assert abs(intake.pause_left() - 0.04) < 1e-9
    intake.worked(0.01)  # another worker's batch adds to the same pause
    assert abs(intake.pause_left() - 0.08) < 1e-9
    clock.now += 0.051  # the flood stops: no pause left, though the rest is not over
    assert (intake.busy(), intake.pause_left()) == (False, 0.0)


def test_requests_waiting_together_make_intake_busy_even_when_they_arrive_slowly() -> None:
    clock = FakeClock()
    intake = IntakeActivity(IntakeFirst(quiet_seconds=0.05, busy_requests=10, busy_in_flight=4), clock)
    for _ in range(3):  # a slow trickle, each answered in turn: never busy
        intake.request_arrived()
        intake.request_answered()
        clock.now += 0.02
    assert not intake.busy()
    for _ in range(4):  # four senders waiting at once on a loop the workers keep busy
        intake.request_arrived()
        clock.now += 0.02
    assert intake.busy()
    intake.worked(0.01)
    assert intake.pause_left() > 0


def test_one_long_batch_never_pauses_workers_past_the_longest_pause() -> None:
    policy = IntakeFirst(worker_share=0.2, longest_pause_seconds=2.0)
    assert abs(policy.pause_after(0.1) - 0.4) < 1e-9
    assert policy.pause_after(60.0) == 2.0
    assert policy.pause_after(-1.0) == 0.0


async def test_a_waiting_worker_gets_its_turn_while_the_flood_goes_on() -> None:
    # A quiet period far longer than the pause: the flood keeps intake busy even on a slow machine.
    intake = IntakeActivity(IntakeFirst(quiet_seconds=1.0, busy_requests=1, longest_pause_seconds=0.01))
    flooding = True

    async def flood() -> None:
        while flooding:
            intake.request_arrived()
            await asyncio.sleep(0.001)

    flooder = asyncio.create_task(flood())
    turns = []  # (intake busy when the turn came, the batch after it paused the worker)
    try:
        async with asyncio.timeout(10):  # a starved worker fails the test, not hangs it
            while not intake.busy():  # the flood has begun
                await asyncio.sleep(0.001)
            for _ in range(3):
                await intake.wait_for_turn()
                busy = intake.busy()
                intake.worked(10.0)  # a long batch: the pause is capped, so the next turn comes
                turns.append((busy, intake.pause_left() > 0))
    finally:
        flooding = False
        await flooder
    assert turns == [(True, True)] * 3


async def test_a_claim_stays_small_while_intake_is_busy_and_doubles_once_it_is_quiet(tmp_path: Path) -> None:
    # Small claims hand the loop back to a flooded intake soon; large ones keep more groups
    # waiting on slow sources at once.
    clock = FakeClock()
    intake = IntakeActivity(IntakeFirst(), clock)
    store, worker, pool = await worker_on(tmp_path, intake=intake)
    await store.accept(body(*(alert(f"Alert{i}") for i in range(300))), 300, NOW)
    try:
        for _ in range(IntakeFirst().busy_requests):
            intake.request_arrived()
        busy = await worker.process_available()
        clock.now += 1.0  # no request since: intake is quiet
        quiet = await worker.process_available()
    finally:
        await store.close()
        pool.shutdown()

    assert (busy, quiet) == (64, 128)
