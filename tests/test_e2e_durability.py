"""Accepted alerts survive kill -9 and channel outages, and page exactly once."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES, HttpSink, alerts_paged, free_port
from tests.fakes.chaos_tools import quick_retries, stopped_afterwards, wait_until_idle
from tests.processes import KubebotProcess

GROUP_OF_THREE = (FIXTURES / "alertmanager" / "alertmanager_webhook_sample_group3.json").read_bytes()


def _post(base: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{base}/api/v1/alerts",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def _metric(base: str, name: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def _metric_reaching(base: str, name: str, value: float, seconds: float = 10.0) -> float:
    """The metric once it reaches `value`, or what it is after `seconds`."""
    for _ in range(int(seconds / 0.05)):
        if await asyncio.to_thread(_metric, base, name) >= value:
            break
        await asyncio.sleep(0.05)
    return await asyncio.to_thread(_metric, base, name)


def _config(sink_url: str) -> dict[str, Any]:
    return {"notify": quick_retries(sink_url, max_attempts=100, timeout_seconds=5)}


async def test_alerts_acknowledged_before_kill_9_are_delivered_once_after_restart(
    tmp_path: Path,
) -> None:
    sink = HttpSink(port=free_port())  # not listening yet: deliveries cannot happen
    kubebot = KubebotProcess.create(tmp_path, _config(sink.url()))
    await asyncio.to_thread(kubebot.start)
    status, answer = await asyncio.to_thread(_post, kubebot.url, GROUP_OF_THREE)
    await asyncio.to_thread(kubebot.kill)
    assert (status, answer["alerts"]) == (200, 3)

    await sink.start()
    async with stopped_afterwards(kubebot, sink):
        await asyncio.to_thread(kubebot.start)
        received = await sink.wait_for(1)
        # Count once nothing is left to send: a duplicate would have been sent by then.
        await wait_until_idle(kubebot.url)
    # One page for the group (as Alertmanager groups), naming all three alerts once.
    assert len(received) == 1
    assert sorted(alerts_paged(received)) == [
        ("PodCrashLooping", "default/api-1"),
        ("PodCrashLooping", "default/api-2"),
        ("PodCrashLooping", "payments/db-0"),
    ]


async def test_channel_down_then_back_delivers_each_page_once(tmp_path: Path) -> None:
    sink = HttpSink(port=free_port())
    kubebot = KubebotProcess.create(tmp_path, _config(sink.url()))
    await asyncio.to_thread(kubebot.start)
    async with stopped_afterwards(kubebot, sink):
        await asyncio.to_thread(_post, kubebot.url, GROUP_OF_THREE)
        failures = await _metric_reaching(kubebot.url, 'kubebot_notifications_total{result="failure"', 3)
        await sink.start()
        received = await sink.wait_for(1)
        await wait_until_idle(kubebot.url)
        delivered = await asyncio.to_thread(_metric, kubebot.url, 'kubebot_notifications_total{result="success"')
    assert failures >= 3
    assert len(received) == 1  # the group's one page, delivered once
    assert len(alerts_paged(received)) == 3
    assert delivered == 1


async def test_duplicate_posts_from_an_ha_pair_page_once(tmp_path: Path, http_sink: HttpSink) -> None:
    kubebot = KubebotProcess.create(tmp_path, _config(http_sink.url()))
    await asyncio.to_thread(kubebot.start)
    try:
        answers = await asyncio.gather(*(asyncio.to_thread(_post, kubebot.url, GROUP_OF_THREE) for _ in range(6)))
        await http_sink.wait_for(1)
        await wait_until_idle(kubebot.url)
        duplicates = await asyncio.to_thread(_metric, kubebot.url, "kubebot_alerts_duplicate_total")
    finally:
        await asyncio.to_thread(kubebot.stop)
    assert [status for status, _ in answers] == [200] * 6
    assert duplicates == 15
    assert len(http_sink.received) == 1
    assert len(alerts_paged(http_sink.received)) == 3


def _alert(name: str, fingerprint: str, **labels: str) -> bytes:
    body = {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "status": "firing",
        "receiver": "kubebot",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": name, "severity": "critical", **labels},
                "startsAt": "2026-11-25T14:57:37Z",
                "fingerprint": fingerprint,
            }
        ],
    }
    return json.dumps(body).encode()


async def test_a_restart_mid_incident_does_not_page_the_causes_symptoms(tmp_path: Path, http_sink: HttpSink) -> None:
    kubebot = KubebotProcess.create(tmp_path, _config(http_sink.url()))
    await asyncio.to_thread(kubebot.start)
    try:
        await asyncio.to_thread(_post, kubebot.url, _alert("KubeNodeNotReady", "node1", node="node-1"))
        await http_sink.wait_for(1)
        await asyncio.to_thread(kubebot.stop)  # a rollout of KubeBot itself, mid-incident
        await asyncio.to_thread(kubebot.start)
        symptom = _alert("KubePodNotReady", "pod1", node="node-1", namespace="shop", pod="web-1")
        await asyncio.to_thread(_post, kubebot.url, symptom)
        suppressed = await _metric_reaching(kubebot.url, 'kubebot_suppressed_total{reason="symptom"}', 1)
        await wait_until_idle(kubebot.url)
    finally:
        await asyncio.to_thread(kubebot.stop)
    assert suppressed == 1
    assert alerts_paged(http_sink.received) == [("KubeNodeNotReady", "node-1")]
    assert "suppression_recalled" in kubebot.log()
