"""The outbox owns retries: backoff with jitter, success once, dead letters after the last try."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from receiver.config import Route
from receiver.matchers import parse_matcher
from receiver.metrics import Metrics
from receiver.models import parse_webhook
from receiver.pipeline.route import route_urls
from receiver.pipeline.stage import Message
from receiver.service.channels import DeliveryError
from receiver.service.outbox import Outbox, RetryPolicy
from receiver.store.base import NewDelivery
from receiver.store.sqlite import SqliteStore
from tests.conftest import accept, all_deliveries, finish, fixture_json, outcome_of


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FlakyChannel:
    """Fails the first `failures` sends, then accepts; remembers what it accepted."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[tuple[str, Message]] = []

    async def send(self, url: str, message: Message) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryError(f"connection refused to {url}")
        self.sent.append((url, message))


async def _outbox_with_one_delivery(
    tmp_path: Path, channel: FlakyChannel, attempts: int
) -> tuple[Outbox, FakeClock, Metrics, SqliteStore]:
    clock, metrics = FakeClock(), Metrics()
    store = await SqliteStore.open(tmp_path / "kb.db")
    await accept(store, parse_webhook(fixture_json("alertmanager/alertmanager_webhook_sample.json")), clock())
    queued = (await store.claim(1))[0]
    await finish(
        store,
        queued.id,
        outcome_of(queued),
        [NewDelivery("json://user:pw@127.0.0.1:9/h", "title", "body", "failure")],
        clock(),
    )
    outbox = Outbox(
        store,
        channel,
        RetryPolicy(attempts, 2.0, 60.0),
        metrics,
        concurrency=2,
        clock=clock,
        rng=random.Random(7),
    )
    return outbox, clock, metrics, store


async def test_a_failed_delivery_is_retried_after_backoff_and_sent_once(tmp_path: Path) -> None:
    channel = FlakyChannel(failures=2)
    outbox, clock, metrics, store = await _outbox_with_one_delivery(tmp_path, channel, attempts=5)
    sent_per_round = []
    for _ in range(6):
        sent_per_round.append(await outbox.send_due())
        clock.advance(60)
    await store.close()
    assert sent_per_round == [1, 1, 1, 0, 0, 0]
    assert [m.title for _, m in channel.sent] == ["title"]
    assert (
        metrics.registry.get_sample_value("kubebot_notifications_total", {"scheme": "json", "result": "failure"}) == 2
    )


async def test_nothing_is_retried_before_its_time(tmp_path: Path) -> None:
    outbox, clock, _, store = await _outbox_with_one_delivery(tmp_path, FlakyChannel(failures=1), attempts=5)
    first = await outbox.send_due()
    clock.advance(0.5)  # the first retry waits at least initial/2 = 1 s
    second = await outbox.send_due()
    await store.close()
    assert (first, second) == (1, 0)


async def test_after_the_last_attempt_the_delivery_is_a_dead_letter(tmp_path: Path) -> None:
    outbox, clock, metrics, store = await _outbox_with_one_delivery(tmp_path, FlakyChannel(failures=99), attempts=3)
    for _ in range(5):
        await outbox.send_due()
        clock.advance(120)
    history = await all_deliveries(store)
    await store.close()
    assert [(h.state, h.attempts) for h in history] == [("dead", 3)]
    assert metrics.registry.get_sample_value("kubebot_dead_letters_total", {"scheme": "json"}) == 1
    assert "pw@" not in (history[0].last_error or "")


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6, 7])
def test_backoff_doubles_within_jitter_and_is_capped(attempt: int) -> None:
    policy = RetryPolicy(max_attempts=8, initial_seconds=2.0, max_seconds=60.0)
    delay = policy.delay(attempt, random.Random(attempt))
    base = min(60.0, 2.0 * 2 ** (attempt - 1))
    assert delay is not None
    assert base / 2 <= delay <= base


def test_no_delay_once_attempts_are_used_up() -> None:
    assert RetryPolicy(3, 1.0, 10.0).delay(3, random.Random()) is None


ROUTES = (
    Route(matchers=(parse_matcher('severity="critical"'),), urls=("json://a",), continue_=True),
    Route(matchers=(parse_matcher('namespace="shop"'),), urls=("json://b", "json://a")),
    Route(matchers=(parse_matcher('namespace="shop"'),), urls=("json://never",)),
)


@pytest.mark.parametrize(
    ("labels", "urls"),
    [
        ({"severity": "critical", "namespace": "shop"}, ("json://a", "json://b")),
        ({"severity": "critical"}, ("json://a",)),
        ({"namespace": "shop"}, ("json://b", "json://a")),
        ({"namespace": "db"}, ("json://default",)),
    ],
)
def test_routes_pick_urls_like_alertmanager(labels: dict[str, str], urls: tuple[str, ...]) -> None:
    assert route_urls(ROUTES, ("json://default",), labels) == urls


def test_the_delay_after_thousands_of_failures_is_the_cap_not_an_overflow() -> None:
    delay = RetryPolicy(100_000, 2.0, 600.0).delay(5_000, random.Random(1))
    assert delay is not None
    assert 300.0 <= delay <= 600.0
