"""One small JSON-over-HTTP client for the telemetry backends (Jaeger, Tempo, Loki).

Every failure becomes `SourceUnavailable` with a short reason fit for the notification,
so enrichers turn it into "unavailable (reason)" without knowing aiohttp's exceptions.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import aiohttp

from enrichers.base import AlertInput, EnrichContext, Enrichment

T = TypeVar("T")
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 4.0  # per request; the factory derives it from the enrichment budget
DEFAULT_WINDOW = timedelta(minutes=30)  # looked at before the alert started


class SourceUnavailable(Exception):
    """A backend could not answer usefully; `reason` is short and safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedResponse(SourceUnavailable):
    """The backend answered, but not in the shape its API documents."""

    def __init__(self, what: str) -> None:
        super().__init__(f"malformed response: {what}")


class JsonHttp:
    """GET JSON from one base URL with a per-request timeout and classified errors."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession belongs to the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
            )
        return self._session

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """The JSON answer, or SourceUnavailable. The request runs in a Task of its own:
        aiohttp ties its timeout to the current Task, and a caller may be stepped eagerly
        in another's (enrichers/eager.py)."""
        return await asyncio.ensure_future(self._get(path, params))

    async def _get(self, path: str, params: Mapping[str, str] | None) -> Any:
        url = f"{self.base_url}{path}"
        try:
            async with self._client().get(url, params=dict(params or {})) as response:
                if response.status != 200:
                    raise SourceUnavailable(f"HTTP {response.status} from {path}")
                body = await response.content.read(MAX_RESPONSE_BYTES + 1)
        except SourceUnavailable:
            raise
        except TimeoutError:
            raise SourceUnavailable(f"timed out after {self.timeout_seconds:g}s on {path}") from None
        except aiohttp.ClientConnectionError as exc:
            raise SourceUnavailable(f"cannot connect: {type(exc).__name__}") from None
        except aiohttp.ClientError as exc:
            raise SourceUnavailable(f"HTTP client error: {type(exc).__name__}") from None
        if len(body) > MAX_RESPONSE_BYTES:
            raise SourceUnavailable(f"response from {path} larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise MalformedResponse(f"{path} did not return JSON") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class BackendSettings(Protocol):
    @property
    def url(self) -> str: ...


S = TypeVar("S", bound=BackendSettings)


class HttpBackend(Generic[S]):
    """What the Jaeger, Tempo and Loki enrichers share: their settings, one JSON client
    (sending the tenant as X-Scope-OrgID where the settings name one), the window looked
    at before the alert, and `enrich`'s timing: a `SourceUnavailable` raised anywhere in
    `lookup` makes the source unavailable with its reason."""

    name: str
    steps_eagerly = True  # every request goes through JsonHttp.get, in a Task of its own

    def __init__(
        self,
        settings: S,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        window: timedelta = DEFAULT_WINDOW,
    ) -> None:
        self.settings = settings
        self.window = window
        tenant = getattr(settings, "tenant", None)  # Jaeger's settings have none
        headers = {"X-Scope-OrgID": tenant} if tenant else None
        self._http = JsonHttp(settings.url, timeout_seconds=timeout_seconds, headers=headers)

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        started = time.monotonic()
        try:
            found = await self.lookup(alert, ctx)
        except SourceUnavailable as exc:
            found = Enrichment.unavailable(self.name, exc.reason)
        return replace(found, elapsed_seconds=time.monotonic() - started)

    async def lookup(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        """What the backend says about the alert; `enrich` adds the time it took."""
        raise NotImplementedError

    async def close(self) -> None:
        await self._http.close()


def alert_window(alert: AlertInput, now: datetime, before: timedelta) -> tuple[datetime, datetime]:
    """From `before` ahead of the alert's start to now (or its end, once resolved)."""
    end = alert.ends_at if alert.ends_at is not None and alert.ends_at < now else now
    start = alert.starts_at - before
    return start, max(end, alert.starts_at)


async def gather_available(named: Sequence[tuple[str, Awaitable[T]]]) -> tuple[list[tuple[str, T]], list[str]]:
    """Await every query concurrently; keep the answers by name, in order.

    A `SourceUnavailable` becomes a problem line "name: reason" and the others still
    count; any other exception is a bug, and is raised once all have finished.
    """
    answers = await asyncio.gather(*(query for _, query in named), return_exceptions=True)
    found: list[tuple[str, T]] = []
    problems: list[str] = []
    for (name, _), answer in zip(named, answers, strict=True):
        if isinstance(answer, SourceUnavailable):
            problems.append(f"{name}: {answer.reason}")
        elif isinstance(answer, BaseException):
            raise answer
        else:
            found.append((name, answer))
    return found, problems
