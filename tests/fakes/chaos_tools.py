"""Shared by the chaos tests and the benchmarks: storm payloads, posting, slow sources, RSS.

Everything here talks to 127.0.0.1 only. The storm alerts are distinct by pod, so the
title Apprise posts to a sink ("[FIRING] ChaosStorm Pod chaos/<pod> (warning)") names the
alert it came from, and a page seen twice is a duplicate.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from tests.conftest import HttpSink, alerts_paged
from tests.processes import KubebotProcess

ALERTNAME = "ChaosStorm"
NAMESPACE = "chaos"
FIRING_ENDS_AT = "0001-01-01T00:00:00Z"
TITLE = re.compile(rf"^\[FIRING\] {ALERTNAME} (?:Pod )?{NAMESPACE}/(\S+) \(")  # the subject named with its kind


def storm_alert(pod: str, *, service: str = "checkout", starts_at: str = "2026-11-25T14:57:37Z") -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {
            "alertname": ALERTNAME,
            "namespace": NAMESPACE,
            "pod": pod,
            "service": service,
            "severity": "warning",
        },
        "annotations": {"summary": f"{pod} is unwell"},
        "startsAt": starts_at,
        "endsAt": FIRING_ENDS_AT,
        "generatorURL": "http://prometheus/graph?g0.expr=rate%28http_requests_total%5B5m%5D%29+%3E+1&g0.tab=1",
        "fingerprint": f"fp-{pod}",
    }


def storm_body(group: str, pods: Sequence[str], **alert_fields: Any) -> dict[str, Any]:
    """One Alertmanager webhook body (version 4) for the alerts of one group."""
    return {
        "version": "4",
        "groupKey": f'{{}}:{{group="{group}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "kubebot",
        "groupLabels": {"group": group},
        "commonLabels": {"alertname": ALERTNAME, "namespace": NAMESPACE},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local",
        "alerts": [storm_alert(pod, **alert_fields) for pod in pods],
    }


def pods_of(body: dict[str, Any]) -> list[str]:
    return [alert["labels"]["pod"] for alert in body["alerts"]]


def pod_of_title(title: str) -> str | None:
    found = TITLE.match(title)
    return found.group(1) if found else None


def paged_pods(received: Iterable[dict[str, Any]]) -> Counter[str]:
    """How often each storm pod was paged (Apprise json:// bodies; a group's page counts
    every alert it lists)."""
    prefix = f"{NAMESPACE}/"
    return Counter(
        subject[len(prefix) :]
        for alertname, subject in alerts_paged(received)
        if alertname == ALERTNAME and subject.startswith(prefix)
    )


async def post_alerts(session: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> int | None:
    """The HTTP status of one webhook POST, or None when the server was not there to answer."""
    try:
        async with session.post(f"{base}/api/v1/alerts", json=body) as response:
            await response.read()
            return response.status
    except (TimeoutError, aiohttp.ClientConnectionError):
        return None


@dataclass
class StormResult:
    acknowledged: list[str] = field(default_factory=list)  # pods whose POST got a 200
    statuses: Counter[int | None] = field(default_factory=Counter)


async def storm(
    base: str,
    bodies: Sequence[dict[str, Any]],
    *,
    tasks: int,
    after_acks: int | None = None,
    interrupt: Callable[[], Awaitable[None]] | None = None,
) -> StormResult:
    """Post `bodies` from `tasks` concurrent senders; a sender stops at its first failure.

    With `interrupt`, it runs (once) as soon as `after_acks` bodies have been acknowledged,
    while the senders keep posting.
    """
    result = StormResult()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    enough = asyncio.Event()
    acks = 0

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal acks
        while not queue.empty():
            body = queue.get_nowait()
            status = await post_alerts(session, base, body)
            result.statuses[status] += 1
            if status == 200:
                result.acknowledged.extend(pods_of(body))
                acks += 1
                if after_acks is not None and acks >= after_acks:
                    enough.set()
            elif status is None:
                return

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        senders = [asyncio.create_task(sender(session)) for _ in range(tasks)]
        if interrupt is not None:
            waiting = asyncio.create_task(enough.wait())
            await asyncio.wait([waiting, *senders], return_when=asyncio.FIRST_COMPLETED)
            if not enough.is_set():
                waiting.cancel()
                await asyncio.gather(*senders)
                raise AssertionError("the storm ended before the interruption point")
            await interrupt()
        await asyncio.gather(*senders)
    return result


async def storm_through_a_restart(
    kubebot: KubebotProcess,
    sink: HttpSink,
    bodies: Sequence[dict[str, Any]],
    *,
    tasks: int,
    after_acks: int,
    interrupt: Callable[[], Awaitable[None]],
) -> tuple[StormResult, Counter[str]]:
    """A storm while the sink is down, the process interrupted after `after_acks`
    acknowledged bodies; then the sink up, the process started again, and everything sent:
    the storm's result and the pods paged. A page cannot be half-delivered when the
    process goes, so any second page is the pipeline's fault."""
    async with stopped_afterwards(kubebot, sink):
        result = await storm(kubebot.url, bodies, tasks=tasks, after_acks=after_acks, interrupt=interrupt)
        await sink.start()
        await asyncio.to_thread(kubebot.start)
        await wait_until_idle(kubebot.url)
    return result, paged_pods(sink.received)


async def get_json(base: str, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(f"{base}{path}") as response:
        return response.status, await response.json(content_type=None)


async def metric(base: str, name: str) -> float:
    """Sum of every sample of one metric on /metrics (labels ignored)."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
        text = await response.text()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name) and line[len(name)] in " {"
    )


async def wait_until_idle(base: str, timeout_seconds: float = 60.0) -> None:
    """Until nothing waits in the queue or the outbox: every page is delivered or dead."""
    async with asyncio.timeout(timeout_seconds):
        while await metric(base, "kubebot_queue_depth") or await metric(base, "kubebot_outbox_depth"):
            await asyncio.sleep(0.1)


# ---- the process ---------------------------------------------------------------------------


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process in KiB, from /proc/PID/status."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


# ---- enrichment sources that answer after a delay --------------------------------------------

EMPTY_MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": []}}
EMPTY_VECTOR = {"status": "success", "data": {"resultType": "vector", "result": []}}


def _prometheus_routes() -> dict[str, Any]:
    return {"/api/v1/query_range": EMPTY_MATRIX, "/api/v1/query": EMPTY_VECTOR}


def _jaeger_routes() -> dict[str, Any]:
    return {
        "/api/services": {"data": ["checkout"], "total": 1},
        "/api/traces": {"data": [], "total": 0, "limit": 20, "offset": 0, "errors": None},
        "/api/dependencies": {"data": []},
    }


def _kubernetes_answer(path: str) -> tuple[int, Any]:
    """A complete-enough Kubernetes answer: empty lists, 404 Status for any one object."""
    parts = [p for p in path.split("/") if p]
    resource = parts[-1]
    if resource in ("pods", "events", "nodes", "services", "endpointslices", "replicasets", "deployments"):
        kind = {"endpointslices": "EndpointSliceList"}.get(resource, resource[:-1].capitalize() + "List")
        return 200, {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": []}
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"{resource} not found",
        "reason": "NotFound",
        "code": 404,
    }
    return 404, status


@dataclass
class DelayedSources:
    """Prometheus, Jaeger and Kubernetes APIs on three ports, each answering after `delay`."""

    delay_seconds: float
    prometheus_url: str = ""
    jaeger_url: str = ""
    kubernetes_url: str = ""
    requests: Counter[str] = field(default_factory=Counter)

    def config(self, timeout_seconds: float = 5.0) -> dict[str, Any]:
        """The kubebot config sections that point at these sources."""
        return {
            "prometheus": {"url": self.prometheus_url},
            "traces": {"jaeger": {"url": self.jaeger_url}},
            "kubernetes": {"mode": "auto", "host": self.kubernetes_url},
            "enrichment": {"timeout_seconds": timeout_seconds},
        }

    def app_for(self, source: str, answer: Callable[[str], tuple[int, Any]]) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            self.requests[source] += 1
            await asyncio.sleep(self.delay_seconds)
            status, body = answer(request.path)
            return web.Response(text=json.dumps(body), status=status, content_type="application/json")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app


def _fixed(routes: dict[str, Any]) -> Callable[[str], tuple[int, Any]]:
    def answer(path: str) -> tuple[int, Any]:
        return (200, routes[path]) if path in routes else (404, {"error": "not found"})

    return answer


@asynccontextmanager
async def delayed_sources(delay_seconds: float) -> AsyncIterator[DelayedSources]:
    sources = DelayedSources(delay_seconds)
    runners: list[web.AppRunner] = []
    try:
        for name, answer in (
            ("prometheus", _fixed(_prometheus_routes())),
            ("jaeger", _fixed(_jaeger_routes())),
            ("kubernetes", _kubernetes_answer),
        ):
            runner = web.AppRunner(sources.app_for(name, answer), access_log=None, shutdown_timeout=0.1)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            setattr(sources, f"{name}_url", f"http://127.0.0.1:{runner.addresses[0][1]}")
        yield sources
    finally:
        for runner in runners:
            await runner.cleanup()


# ---- a kubebot under test and the sink it pages --------------------------------------------


def quick_retries(sink_url: str, **notify: Any) -> dict[str, Any]:
    """A `notify` section paging `sink_url` only, retrying soon (0.1 s, at most 0.5 s apart)
    and long (1000 attempts, unless `notify` says otherwise)."""
    retries = {"backoff_initial_seconds": 0.1, "backoff_max_seconds": 0.5, "max_attempts": 1000}
    return {"default_urls": [sink_url], **retries, **notify}


class Stoppable(Protocol):
    async def stop(self) -> None: ...


@asynccontextmanager
async def stopped_afterwards(kubebot: KubebotProcess, sink: Stoppable) -> AsyncIterator[None]:
    """The process, then the sink, stopped on the way out, however the block ends."""
    try:
        yield
    finally:
        await asyncio.to_thread(kubebot.stop)
        await sink.stop()


def missing_and_doubled(acknowledged: Iterable[str], pages: Counter[str]) -> tuple[set[str], dict[str, int]]:
    """Acknowledged pods never paged, and pods paged more than once: both empty when each
    acknowledged alert was paged exactly once."""
    return set(acknowledged) - set(pages), {pod: n for pod, n in pages.items() if n > 1}


# ---- a sink that is slow to answer ------------------------------------------------------------


@dataclass
class SlowSink:
    """Like tests.conftest.HttpSink, but answers `delay_seconds` after a page has arrived.

    A page is recorded on arrival, so the test sees it while the sender still waits.
    """

    delay_seconds: float
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def handle(request: web.Request) -> web.Response:
            self.received.append(await request.json())
            await asyncio.sleep(self.delay_seconds)
            return web.Response(status=200)

        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"json://127.0.0.1:{self.runner.addresses[0][1]}/hook"

    async def wait_for(self, count: int, timeout_seconds: float = 20.0) -> None:
        async with asyncio.timeout(timeout_seconds):
            while len(self.received) < count:
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
