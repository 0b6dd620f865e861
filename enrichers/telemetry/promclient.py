"""Prometheus queries over aiohttp, on the event loop.

One pooled aiohttp session, not a blocking client in a thread pool: in a storm of
thousands of queries the threads fought the event loop for the GIL, and intake slowed
with them. Every request has the same timeout, and every failure becomes a short
classified `SourceUnavailable`. Results are parsed once, here, into frozen `Series`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

import aiohttp

from enrichers.telemetry.http import MalformedResponse, SourceUnavailable

MAX_RESPONSE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Series:
    """One series of a query result: its labels and (unix seconds, value) points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(value for _, value in self.points)

    @property
    def last(self) -> float | None:
        return self.points[-1][1] if self.points else None


def _number(raw: object) -> float:
    # Prometheus sends sample values as strings ("NaN", "+Inf" included).
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise MalformedResponse(f"sample value {raw!r:.40} is not a number")
    try:
        return float(raw)
    except ValueError:
        raise MalformedResponse(f"sample value {raw!r:.40} is not a number") from None


def _point(raw: object) -> tuple[float, float]:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise MalformedResponse("sample is not a [timestamp, value] pair")
    return _number(raw[0]), _number(raw[1])


def _labels(raw: object) -> Mapping[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise MalformedResponse("series labels are not an object of strings")
    return MappingProxyType(dict(raw))


def parse_result(result: object) -> tuple[Series, ...]:
    """Parse the `data.result` of a matrix or vector response."""
    if not isinstance(result, list):
        raise MalformedResponse("result is not a list")
    parsed = []
    for item in result:
        if not isinstance(item, dict):
            raise MalformedResponse("result item is not an object")
        if "values" in item:
            values = item["values"]
            if not isinstance(values, list):
                raise MalformedResponse("series values are not a list")
            points = tuple(_point(raw) for raw in values)
        elif "value" in item:
            points = (_point(item["value"]),)
        else:
            raise MalformedResponse("series has neither values nor value")
        parsed.append(Series(_labels(item.get("metric", {})), points))
    return tuple(parsed)


def finite(values: Sequence[float]) -> list[float]:
    return [value for value in values if math.isfinite(value)]


def step_for(start: datetime, end: datetime, points: int = 120, minimum: float = 15.0) -> float:
    """A range-query step giving about `points` samples, never finer than `minimum`."""
    return max(minimum, math.ceil((end - start).total_seconds() / points))


class PromClient:
    """Async Prometheus HTTP API client: `range_query` and `instant_query`."""

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 4.0,
        max_workers: int = 32,  # requests in flight: a storm needs many, each one waits on I/O
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self._limit = max_workers
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession belongs to the running event loop. No retries:
        # retrying is the pipeline's decision, and would outlive the enrichment budget.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
                connector=aiohttp.TCPConnector(limit=self._limit),
            )
        return self._session

    async def _get(self, what: str, params: Mapping[str, str]) -> Any:
        try:
            async with self._client().get(f"{self.url}/api/v1/{what}", params=dict(params)) as response:
                body = await response.content.read(MAX_RESPONSE_BYTES + 1)
                status = response.status
        except TimeoutError:
            raise SourceUnavailable(f"timed out after {self.timeout_seconds:g}s") from None
        except aiohttp.ClientConnectionError:
            raise SourceUnavailable("cannot connect to Prometheus") from None
        except aiohttp.ClientError as exc:
            raise SourceUnavailable(f"HTTP error: {type(exc).__name__}") from None
        if status != 200:
            raise SourceUnavailable(_api_error(status, body, what))
        if len(body) > MAX_RESPONSE_BYTES:
            raise SourceUnavailable(f"{what} answered more than {MAX_RESPONSE_BYTES} bytes")
        try:
            return json.loads(body)["data"]["result"]
        except (ValueError, KeyError, TypeError):
            raise MalformedResponse(f"{what} did not return Prometheus JSON") from None

    async def range_query(self, expr: str, start: datetime, end: datetime, step_seconds: float) -> tuple[Series, ...]:
        params = {
            "query": expr,
            "start": str(round(start.timestamp())),
            "end": str(round(end.timestamp())),
            "step": f"{step_seconds:g}",
        }
        return parse_result(await self._get("query_range", params))

    async def instant_query(self, expr: str, at: datetime | None = None) -> tuple[Series, ...]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        return parse_result(await self._get("query", params))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _api_error(status: int, body: bytes, what: str) -> str:
    """ "HTTP 400 from query: <Prometheus's error>", the error cut short."""
    detail = ""
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        detail = answer["error"][:120]
    return f"HTTP {status} from {what}" + (f": {detail}" if detail else "")
