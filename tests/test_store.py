"""The store's contract, for every backend: dedup, claims, crash recovery, atomic finish,
bounded history, what engineers did about incidents. Only the role Protocols are used
here; what is particular to SQLite's files is in test_store_sqlite.py."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rca.model import RootCause
from receiver.models import Alert, AlertStatus, parse_webhook
from receiver.pipeline.outcome import Outcome
from receiver.pipeline.stage import Work
from receiver.store.base import Finished, IncidentQuery, NewAction, NewDelivery, Store
from receiver.store.postgres import PostgresStore
from receiver.store.sqlite import SqliteStore
from tests.conftest import accept, all_deliveries, finish, fixture_json, outcome_of
from tests.postgres_server import PostgresServer

GROUP = parse_webhook(fixture_json("alertmanager/alertmanager_webhook_sample_group3.json"))
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)

OpenStore = Callable[[], Awaitable[Store]]


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    """Opens the backend under test, on the same database each time: a second call is a restart."""
    if request.param == "sqlite":

        async def sqlite() -> Store:
            return await SqliteStore.open(tmp_path / "kb.db")

        return sqlite
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.new_database()

    async def postgres() -> Store:
        return await PostgresStore.open(url, password=server.password)

    return postgres


@pytest.fixture
async def store(open_store: OpenStore) -> AsyncIterator[Store]:
    opened = await open_store()
    yield opened
    await opened.close()


def _message(i: int) -> object:
    body = fixture_json("alertmanager/alertmanager_webhook_sample.json")
    body["alerts"][0]["fingerprint"] = f"fp{i}"
    return parse_webhook(body)


async def test_a_group_is_queued_once_however_often_it_arrives(store: Store) -> None:
    for _ in range(3):
        await accept(store, GROUP, NOW)
    waiting_before_claim = store.pending_count()
    claimed = await store.claim(100)
    duplicates = store.take_duplicate_count()
    assert waiting_before_claim == 9  # intake only keeps bodies; dedup happens on claim
    assert len(claimed) == 3
    assert (duplicates, store.pending_count(), store.take_duplicate_count()) == (6, 3, 0)


async def test_bodies_not_yet_expanded_count_as_waiting_after_a_restart(open_store: OpenStore) -> None:
    store = await open_store()
    await accept(store, GROUP, NOW)
    await store.close()
    reopened = await open_store()
    waiting = reopened.pending_count()
    claimed = await reopened.claim(100)
    await reopened.close()
    assert waiting == 3
    assert [q.alert.fingerprint for q in claimed] == [a.fingerprint for a in GROUP.alerts]


async def test_concurrent_requests_share_commits_and_all_land(store: Store) -> None:
    messages = [_message(i) for i in range(200)]
    await asyncio.gather(*(accept(store, m, NOW) for m in messages))  # type: ignore[arg-type]
    claimed = await store.claim(1000)
    assert len(claimed) == 200


async def test_claimed_but_unfinished_alerts_are_queued_again_after_a_crash(open_store: OpenStore) -> None:
    store = await open_store()
    await accept(store, GROUP, NOW)
    first = await store.claim(2)
    await store.close()  # as if killed: two alerts were claimed, none finished
    reopened = await open_store()
    again = await reopened.claim(10)
    await reopened.close()
    assert [q.alert.fingerprint for q in first] == [q.alert.fingerprint for q in again[:2]]
    assert len(again) == 3
    assert again[0].alert == GROUP.alerts[0]
    assert again[0].group == GROUP.group


async def test_an_alerts_resolve_is_not_claimed_while_its_firing_state_is_being_processed(store: Store) -> None:
    """Two workers must not process one alert's states at once: a resolve finished before
    its firing would leave the incident firing."""
    body = fixture_json("alertmanager/alertmanager_webhook_sample.json")
    body["alerts"][0]["fingerprint"] = "fp1"
    firing = parse_webhook(body)
    gone = {**body["alerts"][0], "status": "resolved", "endsAt": "2026-11-25T15:00:00Z"}
    resolved = parse_webhook({**body, "status": "resolved", "alerts": [gone]})
    await accept(store, firing, NOW)
    (first,) = await store.claim(1)
    await accept(store, resolved, NOW)
    await accept(store, _message(2), NOW)  # type: ignore[arg-type]
    meanwhile = await store.claim(10)
    assert [q.alert.fingerprint for q in meanwhile] == ["fp2"], "the resolve waits; other alerts do not"
    await finish(store, first.id, outcome_of(first), (), NOW)
    (later,) = await store.claim(10)
    assert (later.alert.fingerprint, later.alert.status) == ("fp1", "resolved")


async def test_finishing_twice_adds_deliveries_once(store: Store) -> None:
    await accept(store, GROUP, NOW)
    queued = (await store.claim(1))[0]
    delivery = NewDelivery("json://127.0.0.1:1/x", "t", "b", "info")
    await finish(store, queued.id, outcome_of(queued), [delivery], NOW)
    await finish(store, queued.id, outcome_of(queued), [delivery], NOW)
    due = await store.due_deliveries(NOW, 10)
    assert [(d.alert_id, d.url, d.attempts) for d in due] == [(queued.id, delivery.url, 0)]
    assert (store.pending_count(), store.outbox_count()) == (2, 1)


async def test_failed_delivery_waits_for_its_retry_time_then_dies_when_told(store: Store) -> None:
    await accept(store, GROUP, NOW)
    queued = (await store.claim(1))[0]
    await finish(store, queued.id, outcome_of(queued), [NewDelivery("json://x", "t", "b", "info")], NOW)
    delivery = (await store.due_deliveries(NOW, 10))[0]
    await store.delivery_failed(delivery.id, "refused", NOW, NOW + timedelta(seconds=30))
    before = await store.due_deliveries(NOW + timedelta(seconds=29), 10)
    after = await store.due_deliveries(NOW + timedelta(seconds=30), 10)
    await store.delivery_failed(delivery.id, "refused", NOW, None)
    gone = await store.due_deliveries(NOW + timedelta(days=1), 10)
    history = await all_deliveries(store)
    assert (before, [d.attempts for d in after], gone) == ([], [1], [])
    assert [(h.alert_id, h.state, h.attempts, h.last_error) for h in history] == [(queued.id, "dead", 2, "refused")]


async def test_history_past_retention_is_pruned_but_pending_work_is_kept(store: Store) -> None:
    for i in range(50):
        await accept(store, _message(i), NOW - timedelta(days=10))  # type: ignore[arg-type]
    for queued in await store.claim(40):
        await finish(store, queued.id, outcome_of(queued), [], NOW - timedelta(days=10))
    removed = await store.prune(NOW - timedelta(days=7))
    left = await store.claim(100)  # 10 bodies were never expanded, none was processed
    assert removed == 40
    assert len(left) == 10


def _alert(alert_index: int, status: AlertStatus = "firing", severity: str = "warning") -> Alert:
    alert = GROUP.alerts[alert_index]
    return dataclasses.replace(alert, status=status, labels={**alert.labels, "severity": severity})


def _outcome(alert_index: int, status: AlertStatus = "firing", severity: str = "warning") -> Outcome:
    cause = RootCause("db", 0.9, ("OOMKilled",))
    alert = _alert(alert_index, status, severity)
    return Work(alert, GROUP.group, NOW, routes=("json://x",), root_causes=(cause,)).outcome()


async def test_alerts_of_one_group_form_one_incident_that_resolves_when_all_have(store: Store) -> None:
    await accept(store, GROUP, NOW)
    claimed = await store.claim(3)
    for i, queued in enumerate(claimed):
        await finish(store, queued.id, _outcome(i, severity="critical" if i == 1 else "warning"), [], NOW)
    opened = await store.incidents(IncidentQuery())
    resolved = [_alert(i, "resolved").to_json() for i in range(3)]
    resolved_message = parse_webhook({**GROUP.group.to_json(), "alerts": resolved})
    await accept(store, resolved_message, NOW)
    for i, queued in enumerate(await store.claim(3)):
        await finish(store, queued.id, _outcome(i, "resolved"), [], NOW)
    closed = await store.incidents(IncidentQuery())
    detail = await store.incident(closed[0].id or 0)
    assert [(i.status, i.severity, i.top_cause, i.firing_count, i.paged) for i in opened] == [
        ("firing", "critical", "db", 3, True)
    ]
    assert [(i.status, i.alert_count) for i in closed] == [("resolved", 6)]
    assert detail is not None
    assert len(detail.alerts) == 6


async def test_incident_queries_filter_and_page_newest_first(store: Store) -> None:
    for i in range(5):
        message = _message(i)
        body = {**GROUP.group.to_json(), "groupKey": f"g{i}", "alerts": [message.alerts[0].to_json()]}  # type: ignore[attr-defined]
        await accept(store, parse_webhook(body), NOW)
    for queued in await store.claim(10):
        await finish(store, queued.id, outcome_of(queued), [], NOW)
    first = await store.incidents(IncidentQuery(limit=2))
    second = await store.incidents(IncidentQuery(limit=2, before_id=first[-1].id))
    none_match = await store.incidents(IncidentQuery(status="resolved"))
    by_text = await store.incidents(IncidentQuery(text="HighErrorRate"))
    wildcards = [await store.incidents(IncidentQuery(text=text)) for text in ("High_rrorRate", "High%Rate", "%")]
    missing = await store.incident(999)
    assert [i.id for i in first + second] == [5, 4, 3, 2]
    assert (none_match, len(by_text), missing) == ([], 5, None)
    assert wildcards == [[], [], []]  # what is searched for is matched as written, not as a LIKE pattern


async def test_a_groups_outcomes_are_finished_in_one_transaction(store: Store) -> None:
    await accept(store, GROUP, NOW)
    claimed = await store.claim(3, NOW)
    page = NewDelivery("json://x", "[FIRING:3] PodCrashLooping", "b", "warning")
    finished = [Finished(q.id, outcome_of(q), (page,) if i == 0 else ()) for i, q in enumerate(claimed)]
    await store.finish_many(finished, NOW)
    await store.finish_many(finished, NOW)  # replayed: nothing is added twice
    due = await store.due_deliveries(NOW, 10)
    assert (store.pending_count(), store.outbox_count(), len(due)) == (0, 1, 1)


async def test_a_storm_incident_counts_its_firing_alerts_and_resolves(store: Store) -> None:
    body = fixture_json("alertmanager/alertmanager_webhook_sample.json")
    template = body["alerts"][0]
    for i in range(300):
        alert = {**template, "fingerprint": f"storm{i}"}
        await accept(store, parse_webhook({**body, "alerts": [alert]}), NOW)
    for queued in await store.claim(1000):
        await finish(store, queued.id, outcome_of(queued), [], NOW)
    resolved = {**template, "fingerprint": "storm7", "status": "resolved"}
    await accept(store, parse_webhook({**body, "alerts": [resolved]}), NOW)
    for queued in await store.claim(10):
        await finish(store, queued.id, outcome_of(queued), [], NOW)
    [incident] = await store.incidents(IncidentQuery())
    assert (incident.firing_count, incident.alert_count, incident.status) == (299, 301, "firing")


async def test_a_stored_body_that_no_longer_parses_is_kept_and_named_not_dropped(store: Store) -> None:
    # As if a newer, stricter version met a body an older one accepted.
    await store.accept(b'{"alerts": [{"labels": {}, "startsAt": "not a time"}]}', 1, NOW)
    await accept(store, GROUP, NOW)
    claimed = await store.claim(100)
    [kept] = await store.quarantined(10)
    assert len(claimed) == 3
    assert (store.pending_count(), store.take_duplicate_count(), store.take_quarantined_count()) == (3, 0, 1)
    assert (kept.stage, kept.alert_id, kept.message_id is not None) == ("expand", None, True)
    assert "startsAt" in kept.error


async def test_recent_outcomes_come_back_oldest_first_and_held_states_with_their_start(store: Store) -> None:
    body = fixture_json("alertmanager/alertmanager_webhook_sample.json")
    colon = {**body["alerts"][0], "fingerprint": "team:a:1"}
    await accept(store, parse_webhook({**body, "alerts": [colon]}), NOW)
    await accept(store, GROUP, NOW)
    claimed = await store.claim(10)
    await store.defer(claimed[0].id, NOW + timedelta(minutes=5))
    for minutes, queued in enumerate(claimed[1:]):
        await finish(store, queued.id, outcome_of(queued), [], NOW + timedelta(minutes=minutes))
    newest_two = await store.outcomes_since(NOW - timedelta(hours=1), limit=2)
    held = await store.held_states()
    assert [(at, o.alert.fingerprint) for at, o in newest_two] == [
        (NOW + timedelta(minutes=1), claimed[2].alert.fingerprint),
        (NOW + timedelta(minutes=2), claimed[3].alert.fingerprint),
    ]
    assert held == [("team:a:1", claimed[0].alert.starts_at.isoformat(), NOW)]


# -- actions: what engineers did about incidents ---------------------------------------------


async def _incident_of_one_alert(
    store: Store, group_key: str, fingerprint: str, at: datetime = NOW, *, alertname: str = "HighErrorRate"
) -> tuple[int, int]:
    """An incident of one processed, firing alert: (alert id, incident id)."""
    return await _one_alert(store, group_key, fingerprint, at, alertname, "firing")


async def _resolve(store: Store, group_key: str, fingerprint: str, at: datetime = NOW) -> None:
    await _one_alert(store, group_key, fingerprint, at, "HighErrorRate", "resolved")


async def _one_alert(
    store: Store, group_key: str, fingerprint: str, at: datetime, alertname: str, status: str
) -> tuple[int, int]:
    body = fixture_json("alertmanager/alertmanager_webhook_sample.json")
    template = body["alerts"][0]
    alert = {
        **template,
        "fingerprint": fingerprint,
        "status": status,
        "labels": {**template["labels"], "alertname": alertname},
    }
    await accept(store, parse_webhook({**body, "groupKey": group_key, "alerts": [alert]}), at)
    [queued] = await store.claim(10)
    await finish(store, queued.id, outcome_of(queued), [], at)
    ref = await store.alert_ref(queued.id)
    assert ref is not None
    assert ref.incident_id is not None
    return queued.id, ref.incident_id


async def test_actions_are_kept_with_their_incident_oldest_first_and_go_when_it_is_pruned(store: Store) -> None:
    old = NOW - timedelta(days=10)
    _, gone = await _incident_of_one_alert(store, "g-old", "f-old", old)
    _, live = await _incident_of_one_alert(store, "g-live", "f-live", old)
    ack = await store.record_action(NewAction(gone, "ack", "ana", "on it"), old)
    verdict = {"verdict": "noise", "cause": None}
    feedback = await store.record_action(NewAction(gone, "feedback", "bo", details=verdict), old + timedelta(minutes=1))
    kept = await store.record_action(NewAction(live, "ack", "cy"), old)
    matchers = {"matchers": [{"name": "alertname", "value": "X", "isEqual": True}]}
    loose = await store.record_action(NewAction(None, "silence", "di", "maintenance", matchers), NOW)
    listed = await store.actions(gone)
    await _resolve(store, "g-old", "f-old", old)
    await store.prune(NOW - timedelta(days=7))
    assert listed == [ack, feedback]
    assert (ack.incident_id, ack.kind, ack.by, ack.note, ack.at) == (gone, "ack", "ana", "on it", old.timestamp())
    assert (feedback.details, feedback.note) == (verdict, "")
    assert (loose.incident_id, loose.kind, loose.details) == (None, "silence", matchers)
    assert (await store.actions(gone), await store.actions(live)) == ([], [kept])


async def test_an_alert_reference_names_its_incident_only_once_the_alert_is_processed(store: Store) -> None:
    await accept(store, GROUP, NOW)
    first, unfinished, _ = await store.claim(3)
    await finish(store, first.id, outcome_of(first), [], NOW)
    ref = await store.alert_ref(first.id)
    [incident] = await store.incidents(IncidentQuery())
    assert ref is not None
    assert (ref.alert_id, ref.incident_id, ref.outcome) == (first.id, incident.id, outcome_of(first))
    assert (await store.alert_ref(unfinished.id), await store.alert_ref(999)) == (None, None)


async def test_acknowledged_names_open_incidents_with_who_acknowledged_them_last(store: Store) -> None:
    _, acked = await _incident_of_one_alert(store, "g-acked", "f-acked")
    _, plain = await _incident_of_one_alert(store, "g-plain", "f-plain")
    await store.record_action(NewAction(acked, "ack", "ana"), NOW)
    await store.record_action(NewAction(acked, "ack", "bo"), NOW)
    await store.record_action(NewAction(plain, "feedback", "cy", details={"verdict": "useful"}), NOW)
    keys = {i.id: i.key for i in await store.incidents(IncidentQuery())}
    while_firing = await store.acknowledged([keys[acked], keys[plain], keys[acked], "no such key"])
    await _resolve(store, "g-acked", "f-acked")
    once_resolved = await store.acknowledged([keys[acked]])
    assert keys[acked] != keys[plain]
    assert while_firing == {keys[acked]: "bo"}
    assert (once_resolved, await store.acknowledged([])) == ({}, {})


async def test_confirmed_causes_come_from_feedback_on_incidents_of_that_alertname_newest_first(store: Store) -> None:
    _, first = await _incident_of_one_alert(store, "g1", "f1")
    _, second = await _incident_of_one_alert(store, "g2", "f2")
    _, other = await _incident_of_one_alert(store, "g3", "f3", alertname="DiskFull")
    later = NOW + timedelta(minutes=1)
    await store.record_action(NewAction(first, "feedback", "ana", details={"verdict": "useful", "cause": "db"}), NOW)
    await store.record_action(NewAction(second, "feedback", "bo", details={"verdict": "noise", "cause": None}), NOW)
    await store.record_action(NewAction(second, "feedback", "cy", details={"verdict": "useful", "cause": "dns"}), later)
    await store.record_action(NewAction(other, "feedback", "di", details={"verdict": "useful", "cause": "disk"}), NOW)
    confirmed = await store.confirmed_causes("HighErrorRate")
    newest = await store.confirmed_causes("HighErrorRate", limit=1)
    assert [(c.cause, c.by, c.at, c.alertname) for c in confirmed] == [
        ("dns", "cy", later.timestamp(), "HighErrorRate"),
        ("db", "ana", NOW.timestamp(), "HighErrorRate"),
    ]
    assert (confirmed[0].labels["service"], confirmed[0].labels["namespace"]) == ("checkout", "default")
    assert [c.cause for c in newest] == ["dns"]
    assert await store.confirmed_causes("NeverFired") == []


async def test_history_is_the_processed_alerts_since_a_time_oldest_first(store: Store) -> None:
    await accept(store, GROUP, NOW)
    claimed = await store.claim(3)
    for minutes, queued in enumerate(claimed[:2]):  # the third is never processed
        await finish(store, queued.id, outcome_of(queued), [], NOW + timedelta(minutes=minutes))
    everything = await store.history(NOW)
    later = await store.history(NOW + timedelta(minutes=1))
    bounded = await store.history(NOW, limit=1)
    [incident] = await store.incidents(IncidentQuery())
    assert [(h.alert_id, h.incident_id, h.processed_at, h.outcome) for h in everything] == [
        (claimed[0].id, incident.id, NOW.timestamp(), outcome_of(claimed[0])),
        (claimed[1].id, incident.id, (NOW + timedelta(minutes=1)).timestamp(), outcome_of(claimed[1])),
    ]
    assert ([h.alert_id for h in later], [h.alert_id for h in bounded]) == ([claimed[1].id], [claimed[0].id])


async def test_feedback_since_a_time_comes_with_the_fingerprints_of_its_incidents_alerts(store: Store) -> None:
    await accept(store, GROUP, NOW)
    for queued in await store.claim(3):
        await finish(store, queued.id, outcome_of(queued), [], NOW)
    [incident] = await store.incidents(IncidentQuery())
    incident_id = incident.id or 0
    await store.record_action(
        NewAction(incident_id, "feedback", "ana", details={"verdict": "noise"}), NOW - timedelta(days=1)
    )
    recent = await store.record_action(NewAction(incident_id, "feedback", "bo", details={"verdict": "useful"}), NOW)
    await store.record_action(NewAction(incident_id, "ack", "cy"), NOW)
    await store.record_action(NewAction(None, "silence", "di", details={"matchers": []}), NOW)
    found = await store.feedback_since(NOW - timedelta(hours=1))
    assert [(action, sorted(fingerprints)) for action, fingerprints in found] == [
        (recent, sorted(a.fingerprint for a in GROUP.alerts))
    ]
