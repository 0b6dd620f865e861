"""The enrichers' eager gather: steps that finish at once need no Task, and
steps that wait still wait together."""

from __future__ import annotations

import asyncio

import pytest

from enrichers import eager


async def _now(value: int) -> int:
    return value


async def _later(event: asyncio.Event, value: int) -> int:
    await event.wait()
    return value


async def _fails() -> int:
    raise ValueError("boom")


async def test_results_come_in_the_steps_order_whether_they_waited_or_not() -> None:
    first, second = asyncio.Event(), asyncio.Event()
    gathered = asyncio.ensure_future(eager.gather(_later(first, 1), _now(2), _later(second, 3)))
    await asyncio.sleep(0)
    second.set()  # the later step finishes first: they wait concurrently
    await asyncio.sleep(0)
    first.set()
    assert await gathered == [1, 2, 3]


async def test_a_failure_is_raised_and_the_other_steps_still_run() -> None:
    event = asyncio.Event()
    ran: list[int] = []

    async def records(value: int) -> None:
        await event.wait()
        ran.append(value)

    with pytest.raises(ValueError, match="boom"):
        await eager.gather(_fails(), records(1))
    event.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert ran == [1]


async def test_cancelling_the_gather_cancels_the_waiting_steps() -> None:
    cancelled = asyncio.Event()

    async def waits() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    gathered = asyncio.ensure_future(eager.gather(waits()))
    for _ in range(3):  # until the step waits in its own Task
        await asyncio.sleep(0)
    gathered.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gathered
    assert cancelled.is_set()
