"""The two ways a read is answered, behind api.Reader: from the watch cache where it is fresh
(else directly), and pod logs shared process-wide for a while.

Logs are not cached by the watch (they are not objects); instead one read per pod,
container and kind of log is shared, for `ttl_seconds`, by every alert that asks for it:
a storm of alerts about one crash-looping pod reads its log once a minute, not per alert.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from enrichers.kubernetes.api import MISS, LookupFailed, Reader, Request
from enrichers.kubernetes.cache import WatchCache

MAX_SHARED_LOGS = 4096  # entries kept before expired ones are swept


class CachedReader:
    """From the cache where it can answer (synced, watch fresh), else from `direct`."""

    def __init__(self, cache: WatchCache, direct: Reader) -> None:
        self._cache = cache
        self._direct = direct
        self.call_timeout_seconds = direct.call_timeout_seconds

    def answer_now(self, request: Request) -> Any:
        """The cache's answer, or MISS; raises NotFound (an answer too)."""
        informer = self._cache.informer_for(request)
        return MISS if informer is None else informer.answer(request)

    async def fetch(self, request: Request, seconds_allowed: float) -> Any:
        answer = self.answer_now(request)
        if answer is not MISS:
            return answer
        return await self._direct.fetch(request, seconds_allowed)


class SharedLogReads:
    """pods/log reads shared by every caller for `ttl_seconds` (a TTL'd single flight);
    every other read passes through."""

    def __init__(self, inner: Reader, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._inner = inner
        self._ttl = ttl_seconds
        self._clock = clock
        self._reads: dict[str, tuple[float, asyncio.Task[Any]]] = {}
        self.call_timeout_seconds = inner.call_timeout_seconds

    async def fetch(self, request: Request, seconds_allowed: float) -> Any:
        if request.resource != "pods/log":
            return await self._inner.fetch(request, seconds_allowed)
        if seconds_allowed <= 0:
            raise LookupFailed(request, "no time left in the enrichment budget")
        task = self._shared(request)
        try:
            async with asyncio.timeout(seconds_allowed):
                return await asyncio.shield(task)
        except TimeoutError:
            raise LookupFailed(request, f"timed out after {seconds_allowed:.3g}s") from None

    def _shared(self, request: Request) -> asyncio.Task[Any]:
        now = self._clock()
        found = self._reads.get(request.key)
        if found is not None and found[0] > now:
            return found[1]
        if len(self._reads) >= MAX_SHARED_LOGS:
            self._reads = {k: v for k, v in self._reads.items() if v[0] > now}
        # The shared read gets the whole call timeout: one caller's short budget must not
        # cut it short for the others.
        task = asyncio.ensure_future(self._inner.fetch(request, self._inner.call_timeout_seconds))
        task.add_done_callback(_consume_exception)
        self._reads[request.key] = (now + self._ttl, task)
        return task


def _consume_exception(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
