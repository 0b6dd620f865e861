"""KubeBot's own notices: a missing heartbeat pages, and suppressed alerts reach a digest."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials, create_app
from receiver.config import load
from receiver.metrics import Metrics
from receiver.models import parse_webhook
from receiver.pipeline.outcome import Outcome, decode_outcome
from receiver.pipeline.suppress import Heartbeat, Memory
from receiver.service.outbox import Outbox, RetryPolicy
from receiver.service.runtime import RUNTIME
from receiver.service.watchkeeper import Watchkeeper, digest_messages
from receiver.store.sqlite import SqliteStore
from tests.conftest import accept, finish, fixture_json, outcome_of
from tests.test_outbox import FakeClock, FlakyChannel

CONFIG = load(
    """
suppression:
  heartbeat: {matchers: ['alertname="Watchdog"'], missing_after_seconds: 600}
  digest_interval_seconds: 3600
  rules:
    - {name: quiet-info, matchers: ['severity="info"'], action: digest}
    - {name: drop-test, matchers: ['env="test"'], action: drop}
notify:
  routes: [{matchers: ['severity="critical"'], urls: ["json://pager"]}]
  default_urls: ["json://chat"]
""",
    {},
)


async def _keeper(tmp_path: Path) -> tuple[Watchkeeper, SqliteStore, FakeClock, Memory]:
    clock, memory = FakeClock(), Memory()
    store = await SqliteStore.open(tmp_path / "kb.db")
    outbox = Outbox(store, FlakyChannel(0), RetryPolicy(3, 1, 10), Metrics(), concurrency=1, clock=clock)
    return Watchkeeper(CONFIG, store, outbox, memory, clock), store, clock, memory


async def test_a_missing_heartbeat_pages_once_and_its_return_is_announced(tmp_path: Path) -> None:
    keeper, store, clock, memory = await _keeper(tmp_path)
    memory.heartbeat_at = clock()
    clock.advance(300)
    quiet = keeper.heartbeat_notices()
    clock.advance(301)
    alarm = keeper.heartbeat_notices()
    clock.advance(60)
    still_missing = keeper.heartbeat_notices()
    memory.heartbeat_at = clock()
    back = keeper.heartbeat_notices()
    await store.close()
    assert (quiet, still_missing) == ([], [])
    assert [(n.url, n.title.split(":")[0], n.notify_type) for n in alarm] == [
        ("json://pager", "[FIRING] KubeBotHeartbeatMissing", "failure")
    ]
    assert [n.title.split(":")[0] for n in back] == ["[RESOLVED] KubeBotHeartbeatMissing"]


async def test_digest_counts_what_each_route_did_not_get_and_skips_dropped_rules(tmp_path: Path) -> None:
    keeper, store, clock, _ = await _keeper(tmp_path)
    body = fixture_json("alertmanager/alertmanager_webhook_sample_group3.json")
    body["alerts"][0]["labels"]["env"] = "test"
    clock.advance(1)
    await accept(store, parse_webhook(body), clock())
    reasons = [("rule", "drop-test"), ("maintenance", "db-upgrade"), ("rule", "quiet-info")]
    for queued, (reason, rule) in zip(await store.claim(3, clock()), reasons, strict=True):
        await finish(store, queued.id, outcome_of(queued, "suppress", reason=reason, rule=rule), [], clock())
    early = await keeper.digest_notices()
    clock.advance(3601)
    digests = await keeper.digest_notices()
    again = await keeper.digest_notices()
    await store.close()
    assert (early, again) == ([], [])
    by_url = {d.url: d for d in digests}
    assert set(by_url) == {"json://chat", "json://pager"}  # api-2 is a warning, db-0 critical
    assert by_url["json://pager"].title == "[DIGEST] 1 alerts not paged in the last 1h"
    assert "1 suppressed as rule" in by_url["json://pager"].body
    assert "PodCrashLooping (maintenance: db-upgrade)" in by_url["json://chat"].body
    assert "drop-test" not in str(digests)


T0 = "2026-11-25T15:00:00+00:00"


def _suppressed(alertname: str, reason: str, rule: str | None = None) -> Outcome:
    """A stored outcome of a suppressed alert, as small as a stored one can be."""
    alert = {"fingerprint": "fp", "status": "firing", "labels": {"alertname": alertname}, "startsAt": T0}
    stored = {"fingerprint": "fp", "alertname": alertname, "decision": "suppress", "reason": reason, "rule": rule}
    return decode_outcome(json.dumps({**stored, "alert": alert, "group": {"groupKey": "g"}}))


def test_digest_messages_group_by_channel() -> None:
    outcomes = [_suppressed("A", "flapping"), _suppressed("A", "flapping"), _suppressed("B", "repeat")]
    [message] = digest_messages(outcomes, lambda labels: ["json://x"], 1)
    assert message.body.splitlines()[:2] == ["2 suppressed as flapping", "1 suppressed as repeat"]
    assert "  2 x A (flapping)" in message.body


WATCHDOG = {
    "version": "4",
    "groupKey": '{}:{alertname="Watchdog"}',
    "status": "firing",
    "receiver": "kubebot",
    "groupLabels": {"alertname": "Watchdog"},
    "commonLabels": {"alertname": "Watchdog", "severity": "none"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "Watchdog", "severity": "none"},
            "annotations": {},
            "startsAt": "2026-11-25T14:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "e0f4b1c2d3a49586",
        }
    ],
}


async def test_a_watchdog_resent_with_the_same_state_keeps_the_heartbeat_alive(tmp_path: Path) -> None:
    config = load(
        f"""
store: {{path: "{tmp_path / "kb.db"}"}}
suppression:
  heartbeat: {{matchers: ['alertname="Watchdog"'], missing_after_seconds: 8}}
notify: {{default_urls: ["json://chat"]}}
""",
        {},
    )
    clock = FakeClock()
    app = create_app(config, clock=clock, credentials=Credentials(), channel=FlakyChannel(0))
    async with TestClient(TestServer(app)) as client:
        runtime = app[RUNTIME]
        keeper = Watchkeeper(config, runtime.store, runtime.outbox, runtime.heartbeat.memory, clock)
        notices: list[Any] = []
        for _ in range(5):  # Alertmanager's repeat_interval: the same startsAt and fingerprint each time
            assert (await client.post("/api/v1/alerts", json=WATCHDOG)).status == 200
            clock.advance(6)
            notices += keeper.heartbeat_notices()
            clock.advance(6)  # 12 s since the first send: past missing_after_seconds
            assert (await client.post("/api/v1/alerts", json=WATCHDOG)).status == 200
            notices += keeper.heartbeat_notices()
    assert notices == []


def test_a_delivery_without_the_heartbeat_alert_does_not_refresh_it() -> None:
    clock, memory = FakeClock(), Memory()
    heartbeat = Heartbeat(CONFIG.suppression.heartbeat, memory, clock)
    heartbeat.saw([{"alertname": "KubePodCrashLooping"}, {"alertname": "Watchdogs"}])
    assert memory.heartbeat_at is None


def test_a_mention_in_an_alert_name_cannot_ping_from_a_digest() -> None:
    outcome = _suppressed("@everyone <!channel>", "rule", "quiet")
    digests = digest_messages([outcome], lambda _: ("json://chat",), 1.0)
    assert ("@everyone" in digests[0].body, "<!channel>" in digests[0].body) == (False, False)


async def test_an_unreadable_digest_mark_neither_stops_the_heartbeat_check_nor_the_digest(tmp_path: Path) -> None:
    keeper, store, clock, memory = await _keeper(tmp_path)
    await store.set_meta("digest_sent_until", "written by another version")
    memory.heartbeat_at = clock()
    clock.advance(3601)
    await keeper.check()
    queued = await store.due_deliveries(clock(), 10)
    await store.close()
    assert {d.title.split(":")[0] for d in queued} == {"[FIRING] KubeBotHeartbeatMissing"}


async def test_a_woken_watchkeeper_looks_at_once_instead_of_at_its_next_tick(tmp_path: Path) -> None:
    keeper, store, _, _ = await _keeper(tmp_path)
    looks: list[asyncio.Event] = [asyncio.Event(), asyncio.Event()]
    count = 0

    async def leading() -> bool:
        nonlocal count
        count += 1
        if count <= len(looks):
            looks[count - 1].set()
        return False

    task = asyncio.create_task(keeper.run(every_seconds=3600, leading=leading))
    await looks[0].wait()
    keeper.wakeup.set()  # as the leadership task does when this replica takes over
    async with asyncio.timeout(10):  # a deadline, not the hour the next tick is away
        await looks[1].wait()
    task.cancel()
    await store.close()
    assert count == 2
