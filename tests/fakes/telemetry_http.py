"""A small aiohttp server on 127.0.0.1 that answers a telemetry API with canned responses.

Each route answers with JSON (the real fixtures), or misbehaves on purpose: hangs, sends
garbage, or fails with a status. Every request is recorded for assertions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    body: Any = None
    status: int = 200
    hang: bool = False  # never answer (until the server stops)
    raw: bytes | None = None  # send these bytes instead of JSON

    @classmethod
    def json(cls, body: Any) -> Reply:
        return cls(body=body)

    @classmethod
    def garbage(cls) -> Reply:
        return cls(raw=b"<html>502 Bad Gateway</html>\x00\xff")

    @classmethod
    def hanging(cls) -> Reply:
        return cls(hang=True)


@dataclass(frozen=True)
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeTelemetryServer:
    """Routes are matched by exact path, then by the longest prefix ending in '/'."""

    routes: dict[str, Reply]
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def reply_for(self, path: str) -> Reply | None:
        if path in self.routes:
            return self.routes[path]
        prefixes = [p for p in self.routes if p.endswith("/") and path.startswith(p)]
        return self.routes[max(prefixes, key=len)] if prefixes else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.path, dict(request.query), dict(request.headers)))
        reply = self.reply_for(request.path)
        if reply is None:
            return web.json_response({"error": "not found"}, status=404)
        if reply.hang:
            await self._release.wait()
            return web.Response(status=503)
        if reply.raw is not None:
            return web.Response(body=reply.raw, status=reply.status, content_type="text/html")
        return web.Response(text=json.dumps(reply.body), status=reply.status, content_type="application/json")

    def requests_to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]


@asynccontextmanager
async def serve(routes: dict[str, Reply]) -> AsyncIterator[FakeTelemetryServer]:
    """Start the fake on a free 127.0.0.1 port; always stopped on exit."""
    server = FakeTelemetryServer(routes)
    app = web.Application()
    app.router.add_get("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        server._release.set()  # let hanging handlers finish so cleanup does not wait
        await runner.cleanup()
