"""Which replica leads, watched from inside: the `kubebot_leader` gauge, and a replica that
takes the lead over starts the leader's work at once rather than at its next tick."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge

# A replica taking over notices a dead leader's lock is free within this; each follower
# opens one short connection per look.
EVERY_SECONDS = 2.0


async def watch_leadership(
    leading: Callable[[], Awaitable[bool]],
    gauge: Gauge,
    taken: Callable[[], None],
    every_seconds: float = EVERY_SECONDS,
) -> None:
    """Asks `leading` every `every_seconds`, shows the answer on `gauge` (1 or 0), and calls
    `taken` each time this replica becomes the leader."""
    was_leading = False
    while True:
        now_leading = await leading()
        gauge.set(1 if now_leading else 0)
        if now_leading and not was_leading:
            taken()
        was_leading = now_leading
        await asyncio.sleep(every_seconds)
