"""Background loops: sleep until woken, in a way that shutdown can always interrupt."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from receiver.store.base import StoreUnavailable

log = structlog.get_logger("kubebot.work")


async def wait_for_wakeup(event: asyncio.Event, timeout_seconds: float) -> None:
    """Wait until `event` is set or the timeout passes.

    `asyncio.timeout` rather than `wait_for`: on Python 3.11 `wait_for` can swallow a
    cancellation that arrives as the event is set, and a worker would then never stop.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_seconds):
            await event.wait()


async def keep_working(
    step: Callable[[], Awaitable[int]],
    wakeup: asyncio.Event,
    poll_seconds: float,
    name: str,
    stopping: asyncio.Event | None = None,
) -> None:
    """Run `step` while it finds work; otherwise sleep until woken or `poll_seconds` pass.
    Returns between steps once `stopping` is set, so a shutdown never cuts a step short.

    A store that cannot write (disk full, read-only) is survivable: intake answers 503
    meanwhile, and the loop tries again instead of ending.
    """
    while stopping is None or not stopping.is_set():
        wakeup.clear()  # before looking, so a wake-up during the look is kept
        try:
            if await step():
                continue
        except StoreUnavailable as exc:
            log.warning("store_unavailable", task=name, error=str(exc), retry_in=poll_seconds)
        await wait_for_wakeup(wakeup, poll_seconds)
