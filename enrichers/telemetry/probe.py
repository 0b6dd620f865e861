"""A start-up look at whether the configured Prometheus answers, with prometheus-api-client.

The storm path speaks to Prometheus over aiohttp on the event loop (promclient.py): in a
storm, the library's blocking requests from a thread pool fought the loop for the GIL.
Once at start-up that cost is nothing, and the library's own connection check is what an
operator would run by hand; it runs in a worker thread under a timeout.
"""

from __future__ import annotations

import asyncio

from prometheus_api_client import PrometheusConnect


async def prometheus_answers(url: str, timeout_seconds: float) -> bool:
    """True when Prometheus at `url` answers its API; False when it does not in time."""

    def check() -> bool:
        client = PrometheusConnect(url=url, timeout=max(1, round(timeout_seconds)))
        return bool(client.check_prometheus_connection())

    try:
        async with asyncio.timeout(timeout_seconds):
            return await asyncio.to_thread(check)
    except Exception:  # a timeout, or requests' errors as the library wraps them
        return False
