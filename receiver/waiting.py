"""Sleeping until woken, in a way that shutdown can always interrupt."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_for_wakeup(event: asyncio.Event, timeout_seconds: float) -> None:
    """Wait until `event` is set or the timeout passes.

    `asyncio.timeout` rather than `wait_for`: on Python 3.11 `wait_for` can swallow a
    cancellation that arrives as the event is set, and a worker would then never stop.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_seconds):
            await event.wait()
