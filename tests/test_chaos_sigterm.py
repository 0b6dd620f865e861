"""SIGTERM under load, as at every rolling update: nothing acknowledged is lost, and the
restarted process pages each alert once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import HttpSink, free_port
from tests.fakes.chaos_tools import (
    SlowSink,
    missing_and_doubled,
    paged_pods,
    post_alerts,
    quick_retries,
    stopped_afterwards,
    storm_body,
    storm_through_a_restart,
    wait_until_idle,
)
from tests.processes import KubebotProcess

BODIES = 120  # of 5 alerts each, over 30 groups
SENDERS = 6
TERM_AFTER_ACKS = 40


def _config(sink_url: str) -> dict[str, Any]:
    return {"notify": quick_retries(sink_url, timeout_seconds=10)}


def _terminate(kubebot: KubebotProcess) -> int:
    """SIGTERM, then the exit status once the process has shut down on its own."""
    assert kubebot.proc is not None
    kubebot.proc.send_signal(signal.SIGTERM)
    code = kubebot.proc.wait(30)
    kubebot.proc = None
    return code


async def test_every_alert_acknowledged_before_sigterm_under_load_is_paged_exactly_once_after_restart(
    tmp_path: Path,
) -> None:
    sink = HttpSink(port=free_port())  # down during the load: nothing is half-delivered
    kubebot = KubebotProcess.create(tmp_path, _config(sink.url()))
    await asyncio.to_thread(kubebot.start)
    exit_codes: list[int] = []

    async def terminate() -> None:
        exit_codes.append(await asyncio.to_thread(_terminate, kubebot))

    bodies = [storm_body(f"g{i % 30}", [f"term-{i}-{j}" for j in range(5)]) for i in range(BODIES)]
    result, pages = await storm_through_a_restart(
        kubebot, sink, bodies, tasks=SENDERS, after_acks=TERM_AFTER_ACKS, interrupt=terminate
    )
    assert exit_codes == [0]
    assert len(result.acknowledged) >= 5 * TERM_AFTER_ACKS
    assert missing_and_doubled(result.acknowledged, pages) == (set(), {})


async def test_sigterm_while_pages_are_in_flight_does_not_page_twice(tmp_path: Path) -> None:
    sink = SlowSink(delay_seconds=2.0)
    await sink.start()
    kubebot = KubebotProcess.create(tmp_path, _config(sink.url))
    await asyncio.to_thread(kubebot.start)
    async with stopped_afterwards(kubebot, sink):
        async with aiohttp.ClientSession() as session:
            assert await post_alerts(session, kubebot.url, storm_body("inflight", ["fly-0", "fly-1", "fly-2"])) == 200
        await sink.wait_for(1)  # the group's page has reached the channel, not yet answered
        await asyncio.to_thread(_terminate, kubebot)
        sink.delay_seconds = 0.0
        await asyncio.to_thread(kubebot.start)
        await wait_until_idle(kubebot.url)
    assert paged_pods(sink.received) == {"fly-0": 1, "fly-1": 1, "fly-2": 1}
