"""The store's disk full: intake answers 503 (Alertmanager retries), /readyz turns 503,
nothing is acknowledged that was not stored, and all recovers once space returns.

The store lives on a tmpfs of its own, mounted for the test (root only) and filled up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import HttpSink, free_port
from tests.fakes.chaos_tools import (
    get_json,
    missing_and_doubled,
    paged_pods,
    pods_of,
    post_alerts,
    quick_retries,
    stopped_afterwards,
    storm_body,
    wait_until_idle,
)
from tests.fakes.telemetry_http import Reply, serve
from tests.processes import KubebotProcess

DISK_SIZE = "16m"
MAX_POSTS_UNTIL_FULL = 400
AFTER = 10_000  # the body posted once space is back


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted at a fresh directory, unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root and mount permission): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _fill(disk: Path) -> Path:
    """Write a filler file until the disk refuses more."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler


def _config(disk: Path, sink_url: str) -> dict[str, Any]:
    return {
        "store": {"path": str(disk / "kubebot.db")},
        "notify": quick_retries(sink_url),
    }


def _body(i: int) -> dict[str, Any]:
    body = storm_body(f"disk-{i % 7}", [f"disk-{i}-{j}" for j in range(10)])
    for alert in body["alerts"]:  # bulky, so the database must grow to take them
        alert["annotations"]["description"] = "x" * 2000
    return body


@dataclass
class FullDiskRun:
    acknowledged: list[str]  # pods whose POST got a 200
    refused: int | None  # the first non-200 answer while the disk was full
    ready_when_full: int
    accepted_after: int | None  # the answer to a POST once space returned


async def _through_a_full_disk(base: str, disk: Path, hold: Callable[[], Awaitable[None]] | None = None) -> FullDiskRun:
    """Post, fill the disk, post until refused, ask /readyz, `hold`, free the space, post again."""
    acknowledged: list[str] = []
    refused = None
    async with aiohttp.ClientSession() as session:
        assert await post_alerts(session, base, _body(0)) == 200
        acknowledged += pods_of(_body(0))
        filler = await asyncio.to_thread(_fill, disk)
        for i in range(1, MAX_POSTS_UNTIL_FULL):
            status = await post_alerts(session, base, _body(i))
            if status != 200:
                refused = status
                break
            acknowledged += pods_of(_body(i))
        ready_when_full, _ = await get_json(base, "/readyz")
        if hold is not None:
            await hold()
        filler.unlink()
        accepted_after = await post_alerts(session, base, _body(AFTER))
        if accepted_after == 200:
            acknowledged += pods_of(_body(AFTER))
    return FullDiskRun(acknowledged, refused, ready_when_full, accepted_after)


async def test_full_disk_refuses_intake_with_503_until_space_returns_and_acknowledged_alerts_survive(
    tiny_disk: Path, tmp_path: Path
) -> None:
    sink = HttpSink(port=free_port())
    await sink.start()
    kubebot = KubebotProcess.create(tmp_path, _config(tiny_disk, sink.url()))
    await asyncio.to_thread(kubebot.start)
    async with stopped_afterwards(kubebot, sink):
        run = await _through_a_full_disk(kubebot.url, tiny_disk)
        # A restart requeues whatever a worker had claimed; what was acknowledged is on disk.
        await asyncio.to_thread(kubebot.stop)
        await asyncio.to_thread(kubebot.start)
        await wait_until_idle(kubebot.url)
    assert (run.refused, run.ready_when_full, run.accepted_after) == (503, 503, 200)
    assert missing_and_doubled(run.acknowledged, paged_pods(sink.received)) == (set(), {})


async def test_alerts_whose_outcome_could_not_be_stored_are_paged_once_the_disk_has_space_again(
    tiny_disk: Path, tmp_path: Path
) -> None:
    sink = HttpSink(port=free_port())
    await sink.start()
    # A hanging Prometheus keeps the first alerts in the pipeline while the disk fills,
    # so a worker meets the full disk when it records their outcome.
    async with serve({"/": Reply.hanging()}) as prometheus:
        config = {**_config(tiny_disk, sink.url()), "prometheus": {"url": prometheus.url}}
        kubebot = KubebotProcess.create(tmp_path, {**config, "enrichment": {"timeout_seconds": 1}})
        await asyncio.to_thread(kubebot.start)

        async def until_a_worker_meets_the_full_disk() -> None:
            async with asyncio.timeout(15):
                while '"task": "worker"' not in kubebot.log():
                    await asyncio.sleep(0.1)

        async with stopped_afterwards(kubebot, sink):
            run = await _through_a_full_disk(kubebot.url, tiny_disk, until_a_worker_meets_the_full_disk)
            ready, reasons = await _poll_ready(kubebot.url, attempts=25)
            with contextlib.suppress(TimeoutError):
                await wait_until_idle(kubebot.url, timeout_seconds=10)
    assert (run.refused, run.accepted_after) == (503, 200)
    assert ready == 200, reasons
    assert set(run.acknowledged) - set(paged_pods(sink.received)) == set()


async def _poll_ready(base: str, attempts: int) -> tuple[int, Any]:
    status, body = 0, None
    for _ in range(attempts):
        status, body = await get_json(base, "/readyz")
        if status == 200:
            break
        await asyncio.sleep(0.2)
    return status, body
