"""The enrichment runner: concurrent sources, each within the budget, failures recorded;
a batch of alerts in one Task per source."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import UTC, datetime
from typing import Any

from enrichers.base import AlertInput, EnrichContext, Enrichment, enrich_batch, run_enrichers
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


def alerts_for(*pods: str) -> tuple[AlertInput, ...]:
    first = MESSAGE.alerts[0]
    return tuple(
        dataclasses.replace(first, fingerprint=f"fp-{pod}", labels={**first.labels, "pod": pod}) for pod in pods
    )


def batch_context(alerts: tuple[AlertInput, ...], timeout_seconds: float = 5.0) -> EnrichContext:
    return EnrichContext(MESSAGE.group, datetime.now(UTC), timeout_seconds=timeout_seconds, alerts=alerts)


class AtOnce(Answers):
    """Answers without waiting: the runner steps it eagerly."""

    name = "at-once"
    steps_eagerly = True


class HangsForOnePod:
    name = "hangs-for-one"
    steps_eagerly = True

    def __init__(self, pod: str) -> None:
        self.pod = pod
        self.waiting = asyncio.Event()
        self.cut_off = asyncio.Event()

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        if alert.labels["pod"] == self.pod:
            self.waiting.set()
            try:
                await asyncio.Event().wait()
            finally:
                self.cut_off.set()
        return Enrichment(self.name, "ok", {}, ("answered",))


class TimesItself:
    """Enters asyncio.timeout before its first wait: it must get a Task of its own."""

    name = "times-itself"

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        async with asyncio.timeout(0.01):
            await asyncio.Event().wait()
        raise AssertionError("unreachable")


class Prepares:
    """Asks once per batch; each alert then reads what the batch asked."""

    name = "prepares"
    steps_eagerly = True

    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.prepared = 0

    async def prepare(self, ctx: EnrichContext) -> None:
        self.prepared += 1
        await asyncio.sleep(0)
        if self.fails:
            raise ConnectionResetError("peer went away")
        ctx.cache["pods"] = {alert.labels["pod"] for alert in ctx.alerts}

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        if "pods" not in ctx.cache:
            return Enrichment.unavailable(self.name, "nothing prepared")
        return Enrichment(self.name, "ok", {"in_batch": alert.labels["pod"] in ctx.cache["pods"]})


async def test_one_alert_s_hanging_lookup_times_out_alone_and_the_batch_keeps_the_rest() -> None:
    alerts = alerts_for("a", "b", "c")
    source = HangsForOnePod("b")
    found = await enrich_batch([source, AtOnce()], alerts, batch_context(alerts, timeout_seconds=0.05))
    assert [f["hangs-for-one"].status for f in found] == ["ok", "unavailable", "ok"]
    assert found[1]["hangs-for-one"].reason == "timed out after 0.05s"
    assert [f["at-once"].facts for f in found] == [{"pod": "a"}, {"pod": "b"}, {"pod": "c"}]
    assert source.cut_off.is_set()  # the waiting step was cancelled, not left behind


async def test_tasks_per_batch_do_not_grow_with_its_alerts_for_sources_that_answer_at_once() -> None:
    loop = asyncio.get_running_loop()
    created = 0

    def counting(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[Any]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop)

    loop.set_task_factory(counting)
    try:
        counts = []
        for size in (1, 10, 200):
            alerts = alerts_for(*(f"pod-{i}" for i in range(size)))
            created = 0
            found = await enrich_batch([AtOnce(), Prepares()], alerts, batch_context(alerts))
            assert all(f["at-once"].status == "ok" and f["prepares"].facts == {"in_batch": True} for f in found)
            counts.append(created)
    finally:
        loop.set_task_factory(None)
    assert counts[0] == counts[1] == counts[2] <= 2  # one per source


async def test_a_source_using_timeouts_before_its_first_wait_runs_in_tasks_of_its_own() -> None:
    alerts = alerts_for("a", "b")
    found = await enrich_batch([TimesItself(), AtOnce()], alerts, batch_context(alerts))
    assert [f["times-itself"].reason for f in found] == ["TimeoutError: ", "TimeoutError: "]
    assert [f["at-once"].status for f in found] == ["ok", "ok"]


async def test_prepare_runs_once_per_batch_and_its_failure_leaves_each_alert_to_report() -> None:
    alerts = alerts_for("a", "b", "c")
    good, failing = Prepares(), Prepares(fails=True)
    found = await enrich_batch([good], alerts, batch_context(alerts))
    assert good.prepared == 1
    assert {f["prepares"].status for f in found} == {"ok"}
    found = await enrich_batch([failing], alerts, batch_context(alerts))
    assert failing.prepared == 1
    assert [f["prepares"].reason for f in found] == ["nothing prepared"] * 3


async def test_stopping_the_batch_cancels_the_steps_still_waiting() -> None:
    alerts = alerts_for("a", "b")
    source = HangsForOnePod("a")
    batch = asyncio.ensure_future(enrich_batch([source], alerts, batch_context(alerts)))
    await asyncio.wait_for(source.waiting.wait(), timeout=5)
    batch.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await batch
    await asyncio.wait_for(source.cut_off.wait(), timeout=5)
