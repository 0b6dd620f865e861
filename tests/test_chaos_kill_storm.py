"""kill -9 in the middle of a storm of concurrent webhooks: after a restart, every alert
that was acknowledged with a 200 is processed and paged exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.conftest import HttpSink, free_port
from tests.fakes.chaos_tools import missing_and_doubled, quick_retries, storm_body, storm_through_a_restart
from tests.processes import KubebotProcess

BODIES = 120  # of 5 alerts each, over 30 groups
SENDERS = 6
KILL_AFTER_ACKS = 40


def _config(sink_url: str) -> dict[str, Any]:
    return {"notify": quick_retries(sink_url, timeout_seconds=5)}


def _storm_bodies() -> list[dict[str, Any]]:
    return [storm_body(f"g{i % 30}", [f"kill-{i}-{j}" for j in range(5)]) for i in range(BODIES)]


async def test_every_alert_acknowledged_before_kill_9_in_a_storm_is_paged_exactly_once(tmp_path: Path) -> None:
    sink = HttpSink(port=free_port())
    kubebot = KubebotProcess.create(tmp_path, _config(sink.url()))
    await asyncio.to_thread(kubebot.start)

    async def kill() -> None:
        await asyncio.to_thread(kubebot.kill)

    result, pages = await storm_through_a_restart(
        kubebot, sink, _storm_bodies(), tasks=SENDERS, after_acks=KILL_AFTER_ACKS, interrupt=kill
    )
    assert len(set(result.acknowledged)) >= 5 * KILL_AFTER_ACKS
    assert result.statuses[None] >= 1  # the kill really landed mid-storm
    assert missing_and_doubled(result.acknowledged, pages) == (set(), {})
