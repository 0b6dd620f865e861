"""gather_available: concurrent queries where an unavailable one is a problem, not a failure."""

from __future__ import annotations

import pytest

from enrichers.telemetry.http import SourceUnavailable, gather_available


async def answer(value: int) -> int:
    return value


async def unavailable(reason: str) -> int:
    raise SourceUnavailable(reason)


async def broken() -> int:
    raise KeyError("bug")


async def test_an_unavailable_query_becomes_a_problem_and_the_others_still_answer() -> None:
    found, problems = await gather_available(
        [("cpu", answer(1)), ("memory", unavailable("HTTP 503 from /api")), ("errors", answer(3))]
    )
    assert (found, problems) == ([("cpu", 1), ("errors", 3)], ["memory: HTTP 503 from /api"])


async def test_any_other_exception_is_raised() -> None:
    with pytest.raises(KeyError):
        await gather_available([("cpu", answer(1)), ("memory", broken())])
