"""End-to-end latency: POST of one alert until its page arrives at a local HTTP sink.

`kubebot serve` runs with three enrichment sources (Prometheus, Jaeger, the Kubernetes API)
whose fakes on 127.0.0.1 answer every request after 50 ms (the Kubernetes one the stand-in
API with watch, holding a small cluster that KubeBot lists and watches before the first
alert); pages go through Apprise's
json:// to a sink in this process that notes when each arrives. Alerts are posted one at a
time, each waiting for its page. Since the sources run concurrently, the goal is p99 under
2x the slowest source (100 ms); the same alerts with no sources configured are the
reference for what the pipeline itself costs. Run: `python -m bench.latency`.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.cluster import PODS_PER_GROUP, storm_cluster
from bench.figures import print_figures, requests_per_alert
from tests.fakes.chaos_tools import delayed_sources, metric, pod_of_title, post_alerts, storm_body
from tests.processes import KubebotProcess

ALERTS = 200
REFERENCE_ALERTS = 50
SOURCE_DELAY_SECONDS = 0.05
PAGE_TIMEOUT_SECONDS = 15.0
CLUSTER_GROUPS = 10  # 100 pods; the alerts' pods are not among them (gone pods: events are read)


@dataclass
class TimedSink:
    """Notes the time each page arrives, by the pod in its title."""

    arrived: dict[str, float] = field(default_factory=dict)
    url: str = ""
    event: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        now = time.perf_counter()
        pod = pod_of_title(str((await request.json()).get("title", "")))
        if pod is not None:
            self.arrived.setdefault(pod, now)
            self.event.set()
        return web.Response(status=200)

    async def wait_for(self, pod: str) -> float:
        async with asyncio.timeout(PAGE_TIMEOUT_SECONDS):
            while pod not in self.arrived:
                self.event.clear()
                await self.event.wait()
        return self.arrived[pod]


@asynccontextmanager
async def timed_sink() -> AsyncIterator[TimedSink]:
    sink = TimedSink()
    app = web.Application()
    app.router.add_post("/{tail:.*}", sink.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    sink.url = f"json://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield sink
    finally:
        await runner.cleanup()


async def _latencies(
    work: Path, sources: dict[str, Any], sink: TimedSink, count: int, tag: str, cached: int = 0
) -> list[float]:
    """Each alert's POST-to-page time, once the watch cache holds `cached` objects."""
    config = {**sources, "notify": {"default_urls": [sink.url]}}
    kubebot = KubebotProcess.create(work, config)
    await asyncio.to_thread(kubebot.start)
    seconds: list[float] = []
    try:
        async with asyncio.timeout(60):
            while await metric(kubebot.url, "kubebot_kubernetes_cache_objects") < cached:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as session:
            for i in range(count + 5):  # the first few warm up connections and caches
                pod = f"{tag}-{i}"
                started = time.perf_counter()
                status = await post_alerts(session, kubebot.url, storm_body(f"{tag}-{i}", [pod], service="checkout"))
                if status != 200:
                    raise RuntimeError(f"POST answered {status}")
                arrived = await sink.wait_for(pod)
                if i >= 5:
                    seconds.append(arrived - started)
    finally:
        await asyncio.to_thread(kubebot.stop)
    return seconds


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def measure() -> tuple[list[float], list[float], dict[str, int]]:
    cluster = storm_cluster("c", CLUSTER_GROUPS, SOURCE_DELAY_SECONDS)
    async with delayed_sources(SOURCE_DELAY_SECONDS) as sources, timed_sink() as sink:
        config = sources.config(5.0)
        config["kubernetes"]["host"] = await cluster.start()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                pods = CLUSTER_GROUPS * PODS_PER_GROUP
                enriched = await _latencies(Path(tmp), config, sink, ALERTS, "lat", cached=pods)
        finally:
            await cluster.close()
        with tempfile.TemporaryDirectory() as tmp:
            bare = await _latencies(Path(tmp), {"kubernetes": {"mode": "off"}}, sink, REFERENCE_ALERTS, "ref")
        return enriched, bare, {**sources.requests, "kubernetes": len(cluster.requests)}


def main() -> list[tuple[str, str]]:
    enriched, bare, requests = asyncio.run(measure())
    p50, p99 = _p(enriched, 50) * 1000, _p(enriched, 99) * 1000
    slowest = SOURCE_DELAY_SECONDS * 1000
    per_alert = requests_per_alert(requests, ALERTS + 5)
    rows = [
        (
            f"latency POST->page, 3 sources at 50 ms ({ALERTS} alerts)",
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms",
        ),
        ("latency p99 / slowest source (goal < 2)", f"{p99 / slowest:.1f}"),
        ("latency source requests per alert", per_alert),
        (
            f"latency POST->page, no sources (reference, {REFERENCE_ALERTS})",
            f"p50 {_p(bare, 50) * 1000:.0f} ms, p99 {_p(bare, 99) * 1000:.0f} ms",
        ),
    ]
    return print_figures(rows)


if __name__ == "__main__":
    main()
