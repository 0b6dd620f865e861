"""Prometheus queries off the event loop.

prometheus-api-client is blocking (requests), so every call runs in a small, bounded
thread pool and is awaited with a timeout; the HTTP request itself has the same timeout so
a stuck thread frees itself. Results are parsed once, here, into frozen `Series`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

import requests
import urllib3
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from enrichers.telemetry.http import MalformedResponse, SourceUnavailable

T = TypeVar("T")


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
    """Async facade over PrometheusConnect: `range_query` and `instant_query`."""

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
        # No retries inside the library: retrying is the pipeline's decision, and a retry
        # loop here would outlive the enrichment budget. `read=False` so a read timeout
        # surfaces as one (urllib3 would otherwise wrap it in MaxRetryError, which
        # requests reports as a connection error).
        self._connect = PrometheusConnect(
            url=self.url,
            headers=dict(headers or {}),
            retry=Retry(total=0, read=False),
            timeout=timeout_seconds,  # type: ignore[arg-type]  # typed int, any number works
        )
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="prometheus")

    async def _call(self, what: str, call: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._pool, call), self.timeout_seconds
            )
        except TimeoutError:
            raise SourceUnavailable(f"timed out after {self.timeout_seconds:g}s") from None
        except requests.Timeout:
            raise SourceUnavailable(f"timed out after {self.timeout_seconds:g}s") from None
        except requests.ConnectionError:
            raise SourceUnavailable("cannot connect to Prometheus") from None
        except PrometheusApiClientException as exc:
            raise SourceUnavailable(_api_error(str(exc), what)) from None
        except (ValueError, KeyError, TypeError):
            # requests' JSON decoding raises ValueError; a missing data.result KeyError.
            raise MalformedResponse(f"{what} did not return Prometheus JSON") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise SourceUnavailable(f"HTTP error: {type(exc).__name__}") from None

    async def range_query(
        self, expr: str, start: datetime, end: datetime, step_seconds: float
    ) -> tuple[Series, ...]:
        def call() -> Any:
            return self._connect.custom_query_range(
                expr, start_time=start, end_time=end, step=f"{step_seconds:g}"
            )

        return parse_result(await self._call("query_range", call))

    async def instant_query(self, expr: str, at: datetime | None = None) -> tuple[Series, ...]:
        params = {"time": f"{at.timestamp():.3f}"} if at is not None else {}

        def call() -> Any:
            return self._connect.custom_query(expr, params=params)

        return parse_result(await self._call("query", call))

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._connect.close()


def _api_error(message: str, what: str) -> str:
    # The library's message is 'HTTP Status Code 400 (b\'{"status":"error",...}\')'.
    code = message.split("(", 1)[0].removeprefix("HTTP Status Code").strip()
    detail = ""
    marker = '"error":"'
    if marker in message:
        detail = message.split(marker, 1)[1].split('"', 1)[0][:120]
    return f"HTTP {code} from {what}" + (f": {detail}" if detail else "")
