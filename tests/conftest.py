"""Shared test fixtures: fixture files, free ports, a real HTTP sink and a real SMTP server."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from aiohttp import web

from receiver.models import WebhookMessage
from receiver.pipeline.outcome import Action, Decision, Outcome
from receiver.pipeline.stage import Work
from receiver.store.base import (
    DeliveryRecord,
    Finished,
    IncidentQuery,
    Incidents,
    NewDelivery,
    Queue,
    QueuedAlert,
)

if TYPE_CHECKING:
    from tests.postgres_server import PostgresServer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"


def fixture_json(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


async def accept(store: Queue, message: WebhookMessage, received_at: datetime) -> None:
    """Hand the store a message as intake would: its body, validated, and how many alerts."""
    await store.accept(message.to_body(), len(message.alerts), received_at)


def outcome_of(queued: QueuedAlert, decision: Action = "notify", **changes: Any) -> Outcome:
    """The smallest outcome the pipeline hands the store for a claimed alert."""
    outcome = Work(queued.alert, queued.group, queued.received_at, decision=Decision(decision)).outcome()
    return msgspec.structs.replace(outcome, **changes)


async def finish(
    store: Queue, alert_id: int, outcome: Outcome, deliveries: Sequence[NewDelivery], now: datetime
) -> None:
    """Record one alert's outcome, as a worker records a group's."""
    await store.finish_many([Finished(alert_id, outcome, tuple(deliveries))], now)


async def all_deliveries(store: Incidents) -> list[DeliveryRecord]:
    """Every delivery of every incident, oldest first, as the incident API shows them."""
    details = [await store.incident(i.id or 0) for i in await store.incidents(IncidentQuery())]
    return sorted((d for detail in details if detail for d in detail.deliveries), key=lambda d: d.id)


# A headline names the alert, then its subject: "Kind namespace/name" (or "Kind name").
_SINGLE_TITLE = re.compile(r"^\[(?:FIRING|RESOLVED|FLAPPING)\] (\S+) (?:[A-Z][A-Za-z]+ )?(\S+)")
_BUNDLE_TITLE = re.compile(r"^\[(?:FIRING|RESOLVED):\d+\] ")
_BUNDLED_LINE = re.compile(r"^  - (\S+) (?:[A-Z][A-Za-z]+ )?(\S+?)(?::|$)")


def alerts_paged(received: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(alertname, subject) of every alert in the pages a sink received: a page for one
    alert names it in its title; a page for a group names the first in full and lists the
    others as "  - alertname subject: ..." lines."""
    found: list[tuple[str, str]] = []
    for page in received:
        title, body = str(page.get("title", "")), str(page.get("message", ""))
        if _BUNDLE_TITLE.match(title):
            lines = body.splitlines()
            carrier = _SINGLE_TITLE.match(lines[2]) if len(lines) > 2 else None
            if carrier:
                found.append(carrier.groups())  # type: ignore[arg-type]
            found.extend(m.groups() for m in map(_BUNDLED_LINE.match, lines) if m)  # type: ignore[misc]
        elif single := _SINGLE_TITLE.match(title):
            found.append(single.groups())  # type: ignore[arg-type]
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class HttpSink:
    """A real local HTTP server that records what Apprise's json:// posts to it."""

    port: int
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 200
    runner: web.AppRunner | None = None

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        async def handle(request: web.Request) -> web.Response:
            self.received.append(await request.json())
            self.headers.append(dict(request.headers))
            self.arrived.set()
            return web.Response(status=self.status)

        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        async def enough() -> None:
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), timeout)
        return self.received


@pytest.fixture
async def http_sink() -> AsyncIterator[HttpSink]:
    sink = HttpSink(port=free_port())
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the session; each test that wants one takes a fresh database."""
    from tests.postgres_server import PostgresServer  # imported here: most tests need no PostgreSQL

    server = PostgresServer.create()
    server.start()
    yield server
    server.remove()
