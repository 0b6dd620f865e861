"""Alert storm: 10,000 alerts in 500 groups, with every enrichment source 50 ms slow.

`kubebot serve` runs with Prometheus, Jaeger and the Kubernetes API pointed at small fakes
on 127.0.0.1 that answer every request after 50 ms; the Kubernetes one holds a 5,000-pod
cluster that KubeBot lists and watches (its watch cache) before the storm starts; pages
go to a JSON-lines file. Each
group is posted twice, as Alertmanager does: first 10 of its alerts, then (at the next
group_interval) all 20. The enriched storm gets a bounded time to drain; if it does not,
its throughput gives the projected time until every page is out.

The reference is the same storm with no sources configured, run twice on one process:
time until every page is out, pages against incidents and alerts (noise reduction), and
RSS after the second storm of new alerts against RSS after the first (growth with
history). Peak RSS (VmHWM) is compared with the 250 MB goal. Run: `python -m bench.storm`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.cluster import PODS_PER_GROUP, storm_cluster
from bench.figures import print_figures, requests_per_alert
from tests.fakes.chaos_tools import delayed_sources, metric, post_alerts, rss_kib, storm_body
from tests.processes import KubebotProcess

GROUPS = 500
ALERTS_PER_GROUP = 20
SOURCE_DELAY_SECONDS = 0.05
SENDERS = 8
POST_DEADLINE_SECONDS = 60.0
ENRICHED_DRAIN_SECONDS = 75.0
REFERENCE_DRAIN_SECONDS = 60.0
RSS_GOAL_MIB = 250


@dataclass(frozen=True)
class StormFigures:
    alerts: int
    posted_seconds: float
    seconds: float  # until drained, or until the deadline
    drained: bool
    processed: int
    pages: int
    rss_mib: float
    peak_mib: float

    @property
    def alerts_per_second(self) -> float:
        return self.processed / self.seconds

    def done(self) -> str:
        rate = f"{self.alerts_per_second:,.0f} alerts/s"
        if self.drained:
            return f"all out in {self.seconds:.1f} s ({rate})"
        projected = self.alerts / self.alerts_per_second if self.processed else float("inf")
        done = f"{self.processed:,} of {self.alerts:,} done after {self.seconds:.0f} s"
        return f"{done} ({rate}; all out in ~{projected:.0f} s)"


def _bodies(tag: str) -> list[dict[str, Any]]:
    """Per group: a first flush of half its alerts, then the whole group again."""
    first, second = [], []
    for g in range(GROUPS):
        pods = [f"{tag}-{g}-{j}" for j in range(ALERTS_PER_GROUP)]
        service = f"svc{g % 50}"
        first.append(storm_body(f"{tag}-g{g}", pods[: ALERTS_PER_GROUP // 2], service=service))
        second.append(storm_body(f"{tag}-g{g}", pods, service=service))
    return first + second


async def _post_all(base: str, bodies: list[dict[str, Any]]) -> None:
    queue = list(reversed(bodies))
    failures: list[int | None] = []

    async def sender(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            for _ in range(100):  # a 503 means "retry", as Alertmanager would
                status = await post_alerts(session, base, body)
                if status == 200:
                    break
                await asyncio.sleep(0.2)
            else:
                failures.append(status)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        async with asyncio.timeout(POST_DEADLINE_SECONDS):
            await asyncio.gather(*(sender(session) for _ in range(SENDERS)))
    if failures:
        raise RuntimeError(f"{len(failures)} webhook bodies were never accepted: {failures[:5]}")


async def _idle(base: str) -> bool:
    return not (await metric(base, "kubebot_queue_depth") or await metric(base, "kubebot_outbox_depth"))


async def _storm(kubebot: KubebotProcess, tag: str, pages_file: Path, deadline_seconds: float) -> StormFigures:
    assert kubebot.proc is not None
    pages_before = _count_lines(pages_file)
    processed_before = await metric(kubebot.url, "kubebot_processing_seconds_count")
    started = time.perf_counter()
    await _post_all(kubebot.url, _bodies(tag))
    posted = time.perf_counter() - started
    drained = False
    while time.perf_counter() - started < deadline_seconds:
        if await _idle(kubebot.url):
            drained = True
            break
        await asyncio.sleep(0.25)
    seconds = time.perf_counter() - started
    processed = await metric(kubebot.url, "kubebot_processing_seconds_count") - processed_before
    rss, peak = rss_kib(kubebot.proc.pid)
    return StormFigures(
        alerts=GROUPS * ALERTS_PER_GROUP,
        posted_seconds=posted,
        seconds=seconds,
        drained=drained,
        processed=int(processed),
        pages=_count_lines(pages_file) - pages_before,
        rss_mib=rss / 1024,
        peak_mib=peak / 1024,
    )


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as lines:
        return sum(1 for _ in lines)


async def _incidents(base: str) -> int:
    count, cursor = 0, None
    async with aiohttp.ClientSession() as session:
        while True:
            query = "?limit=500" + (f"&cursor={cursor}" if cursor else "")
            async with session.get(f"{base}/api/v1/incidents{query}") as response:
                page = await response.json()
            count += len(page["incidents"])
            cursor = page["next"]
            if cursor is None:
                return count


def _config(work: Path, pages_file: Path, sources: dict[str, Any]) -> dict[str, Any]:
    return {
        **sources,
        "store": {"path": str(work / "kb.db"), "max_pending": 1_000_000},
        "notify": {"default_urls": [f"jsonl://{pages_file}"]},
    }


async def measure_enriched() -> tuple[StormFigures, dict[str, int]]:
    """The storm with every source 50 ms slow; Kubernetes is the stand-in API holding a
    5,000-pod cluster (bench.cluster), listed and watched by KubeBot before the storm."""
    cluster = storm_cluster("e", GROUPS, SOURCE_DELAY_SECONDS)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        async with delayed_sources(SOURCE_DELAY_SECONDS) as sources:
            config = sources.config(5.0)
            config["kubernetes"]["host"] = await cluster.start()
            kubebot = KubebotProcess.create(work, _config(work, work / "pages.jsonl", config))
            await asyncio.to_thread(kubebot.start)
            try:
                await _watching(kubebot.url)
                figures = await _storm(kubebot, "e", work / "pages.jsonl", ENRICHED_DRAIN_SECONDS)
            finally:
                await asyncio.to_thread(kubebot.stop)
                await cluster.close()
            requests = {**sources.requests, "kubernetes": len(cluster.requests)}
            return figures, requests


async def _watching(base: str, timeout_seconds: float = 60.0) -> None:
    """Until the watch cache holds the cluster's pods (the storm then reads memory)."""
    async with asyncio.timeout(timeout_seconds):
        while True:
            if await metric(base, "kubebot_kubernetes_cache_objects") >= GROUPS * PODS_PER_GROUP:
                return
            await asyncio.sleep(0.25)


async def measure_reference() -> tuple[StormFigures, StormFigures, int]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        no_sources = {"kubernetes": {"mode": "off"}}
        kubebot = KubebotProcess.create(work, _config(work, work / "pages.jsonl", no_sources))
        await asyncio.to_thread(kubebot.start)
        try:
            first = await _storm(kubebot, "a", work / "pages.jsonl", REFERENCE_DRAIN_SECONDS)
            second = await _storm(kubebot, "b", work / "pages.jsonl", REFERENCE_DRAIN_SECONDS)
            incidents = await _incidents(kubebot.url)
        finally:
            await asyncio.to_thread(kubebot.stop)
        return first, second, incidents


def main() -> list[tuple[str, str]]:
    enriched, requests = asyncio.run(measure_enriched())
    first, second, incidents = asyncio.run(measure_reference())
    alerts = first.alerts + second.alerts
    pages = first.pages + second.pages
    per_alert = requests_per_alert(requests, max(enriched.processed, 1))
    kube_per_alert = requests["kubernetes"] / max(enriched.processed, 1)
    peak = max(enriched.peak_mib, second.peak_mib)
    rows = [
        ("storm posting 10,000 alerts in 500 groups (goal < 60 s)", f"{enriched.posted_seconds:.1f} s"),
        ("storm, sources answering in 50 ms", enriched.done()),
        ("storm, source requests per alert", per_alert),
        (
            "storm, Kubernetes API requests per alert (goal <= 0.25)",
            f"{kube_per_alert:.3f} (lists, watches, logs; 5,000 pods cached)",
        ),
        ("storm, no sources (reference), 1st storm", first.done()),
        ("storm, no sources (reference), 2nd storm", second.done()),
        (
            "storm throughput ratio with sources / without",
            f"{enriched.alerts_per_second / first.alerts_per_second:.3f}",
        ),
        ("storm pages / incidents / alerts (reference storms)", f"{pages:,} / {incidents:,} / {alerts:,}"),
        ("storm noise reduction alerts / pages", f"{alerts / pages:.2f}x" if pages else "no pages"),
        ("storm peak RSS (goal < 250 MB)", f"{peak:.0f} MiB, ratio to goal {peak / RSS_GOAL_MIB:.2f}"),
        (
            "storm RSS after 1st / after 2nd storm (reference)",
            f"{first.rss_mib:.0f} / {second.rss_mib:.0f} MiB, ratio {second.rss_mib / first.rss_mib:.2f}",
        ),
    ]
    return print_figures(rows)


if __name__ == "__main__":
    main()
