"""The enrichment runner: concurrent sources, each within the budget, failures recorded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from enrichers.base import AlertInput, EnrichContext, Enrichment, run_enrichers
from receiver.models import parse_webhook
from tests.conftest import fixture_json

MESSAGE = parse_webhook(fixture_json("alertmanager/alertmanager_webhook_sample.json"))


class Answers:
    name = "answers"

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        return Enrichment(self.name, "ok", {"pod": alert.labels["pod"]}, ("all good",))


class Hangs:
    name = "hangs"

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class Breaks:
    name = "breaks"

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        raise ConnectionResetError("peer went away")


async def test_a_hanging_or_broken_source_is_unavailable_and_the_others_still_answer() -> None:
    ctx = EnrichContext(MESSAGE.group, datetime.now(UTC), timeout_seconds=0.05)
    found = await run_enrichers([Answers(), Hangs(), Breaks()], MESSAGE.alerts[0], ctx)
    assert found["answers"].facts == {"pod": "checkout-7d9f"}
    assert (found["hangs"].status, found["hangs"].reason) == (
        "unavailable",
        "timed out after 0.05s",
    )
    assert (found["breaks"].status, found["breaks"].reason) == (
        "unavailable",
        "ConnectionResetError: peer went away",
    )
