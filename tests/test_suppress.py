"""Suppression decisions, one table row per reason, with an injected clock; and a storm."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import networkx as nx
import pytest

from enrichers.base import Enrichment
from enrichers.kubernetes.report import read_verdict
from receiver.config import SuppressionConfig, load
from receiver.models import Group, parse_webhook
from receiver.pipeline.stage import Work
from receiver.pipeline.suppress import Suppressor, SuppressStage, in_window, not_actionable

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday
GROUP = Group(group_key="g", receiver="kubebot", status="firing")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def suppression(text: str) -> SuppressionConfig:
    return load(f"suppression:\n{text}", {}).suppression


def work(
    labels: dict[str, str],
    status: str = "firing",
    starts: datetime = T0,
    fingerprint: str | None = None,
    k8s: dict[str, Any] | None = None,
    group: Group = GROUP,
) -> Work:
    body = {
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "startsAt": starts.isoformat(),
                "fingerprint": fingerprint or "",
            }
        ]
    }
    alert = parse_webhook(body).alerts[0]
    enrichment = {"kubernetes": Enrichment("kubernetes", "ok", k8s)} if k8s is not None else {}
    return Work(alert=alert, group=group, received_at=T0, enrichment=enrichment)


def decide(suppressor: Suppressor, item: Work) -> tuple[str, str | None, str | None]:
    decided = suppressor.decide(item)
    return decided.decision.action, decided.decision.reason, decided.decision.rule


RULES = """
  rules:
    - {name: drop-info, matchers: ['severity="info"'], action: drop}
    - {name: old-noise, matchers: ['alertname="Old"'], action: drop, expires: 2026-01-01T00:00:00Z}
  maintenance:
    - {name: db-upgrade, matchers: ['namespace="db"'], start: 2026-11-25T09:00:00Z, end: 2026-11-25T11:00:00Z}
    - name: friday-night
      matchers: ['namespace="batch"']
      days: [fri]
      from: "22:00"
      to: "02:00"
      timezone: Europe/Berlin
  heartbeat: {matchers: ['alertname="Watchdog"'], missing_after_seconds: 600}
"""


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"alertname": "X", "severity": "info"}, ("suppress", "rule", "drop-info")),
        ({"alertname": "Old"}, ("notify", None, None)),  # an expired rule no longer hides anything
        ({"alertname": "X", "namespace": "db"}, ("suppress", "maintenance", "db-upgrade")),
        ({"alertname": "Watchdog"}, ("suppress", "rule", "heartbeat")),
        ({"alertname": "X", "namespace": "shop"}, ("notify", None, None)),
    ],
)
def test_rules_maintenance_and_heartbeat(labels: dict[str, str], expected: tuple[str, str | None, str | None]) -> None:
    assert decide(Suppressor(suppression(RULES), Clock()), work(labels)) == expected


@pytest.mark.parametrize(
    ("local", "inside"),
    [
        ("2026-11-27T22:30:00+01:00", True),  # Friday night in Berlin
        ("2026-11-28T01:30:00+01:00", True),  # after midnight, still Friday's window
        ("2026-11-28T02:30:00+01:00", False),
        ("2026-11-26T23:00:00+01:00", False),  # Thursday
    ],
)
def test_weekly_windows_follow_their_time_zone(local: str, inside: bool) -> None:
    window = suppression(RULES).maintenance[1]
    assert in_window(window, datetime.fromisoformat(local)) is inside


def test_a_resolve_within_the_grace_period_pages_neither_state() -> None:
    clock = Clock()
    suppressor = Suppressor(suppression("  resolved_grace_seconds: 60"), clock)
    firing = suppressor.decide(work({"alertname": "Blip"}, fingerprint="f1"))
    clock.tick(20)
    resolved = suppressor.decide(work({"alertname": "Blip"}, "resolved", fingerprint="f1"))
    clock.tick(40)
    firing_again = suppressor.decide(dataclasses.replace(work({"alertname": "Blip"}, fingerprint="f1"), held=True))
    assert firing.decision.action == "hold"
    assert firing.decision.hold_until == T0 + timedelta(seconds=60)
    assert (resolved.decision.action, resolved.decision.reason) == ("suppress", "resolved_in_grace")
    assert (firing_again.decision.action, firing_again.decision.reason) == ("suppress", "resolved_in_grace")


def test_an_alert_still_firing_after_the_grace_period_is_paged_and_later_resolved() -> None:
    clock = Clock()
    suppressor = Suppressor(suppression("  resolved_grace_seconds: 60"), clock)
    suppressor.decide(work({"alertname": "Real"}, fingerprint="f2"))
    clock.tick(60)
    paged = suppressor.decide(dataclasses.replace(work({"alertname": "Real"}, fingerprint="f2"), held=True))
    clock.tick(600)
    resolved = suppressor.decide(work({"alertname": "Real"}, "resolved", fingerprint="f2"))
    assert (paged.decision.action, resolved.decision.action) == ("notify", "notify")


def test_flapping_pages_once_saying_so_then_stays_quiet() -> None:
    clock = Clock()
    suppressor = Suppressor(suppression("  flapping: {max_changes: 3, window_seconds: 600}"), clock)
    decisions = []
    for i in range(8):
        status = "firing" if i % 2 == 0 else "resolved"
        starts = T0 + timedelta(seconds=60 * (i // 2))
        decisions.append(decide(suppressor, work({"alertname": "Flappy"}, status, starts, "f3"))[:2])
        clock.tick(30)
    assert decisions == [
        ("notify", None),
        ("notify", None),
        ("notify", None),
        ("suppress", "flapping"),  # a resolve while flapping: nothing to announce
        ("notify", "flapping"),
        ("suppress", "flapping"),
        ("suppress", "flapping"),
        ("suppress", "flapping"),
    ]


def test_the_same_alert_paged_again_within_the_repeat_interval_is_a_repeat() -> None:
    clock = Clock()
    suppressor = Suppressor(suppression("  repeat_interval_seconds: 3600"), clock)
    first = decide(suppressor, work({"alertname": "R"}, fingerprint="f4"))
    clock.tick(600)
    again = decide(suppressor, work({"alertname": "R"}, starts=T0 + timedelta(seconds=600), fingerprint="f4"))
    assert (first[0], again[:2]) == ("notify", ("suppress", "repeat"))


@pytest.mark.parametrize(
    ("facts", "moot"),
    [
        ({"pod": {"name": "job-x", "phase": "Succeeded", "exists": True}}, True),
        (
            {
                "pod": {"name": "web-1", "exists": False},
                "workload": {"kind": "Deployment", "name": "web", "exists": True, "desired": 3, "ready": 3},
            },
            True,
        ),
        (
            {
                "pod": {"name": "web-1", "exists": False},
                "workload": {"kind": "Deployment", "name": "web", "exists": True, "desired": 3, "ready": 1},
            },
            False,
        ),
        ({"pod": {"name": "web-1", "exists": True, "phase": "Running"}}, False),
        ({}, False),
    ],
)
def test_not_actionable_only_when_kubernetes_says_so(facts: dict[str, Any], moot: bool) -> None:
    suppressor = Suppressor(SuppressionConfig(), Clock())
    decided = decide(suppressor, work({"alertname": "KubePodNotReady", "pod": "web-1"}, k8s=facts))
    assert (decided[1] == "not_actionable") is moot
    assert (not_actionable(read_verdict(facts)) is not None) is moot


def test_an_alert_on_a_caller_of_a_failing_service_is_its_symptom() -> None:
    graph = nx.DiGraph([("frontend", "checkout"), ("checkout", "payments")])
    suppressor = Suppressor(SuppressionConfig(), Clock(), graph=lambda: graph)
    cause = suppressor.decide(work({"alertname": "PaymentsDown", "service": "payments"}, fingerprint="c"))
    symptom = suppressor.decide(
        work({"alertname": "FrontendSlow", "service": "frontend"}, fingerprint="s", group=Group("other", "k", "firing"))
    )
    unrelated = decide(suppressor, work({"alertname": "AdsSlow", "service": "ads"}, fingerprint="u"))
    assert cause.decision.action == "notify"
    assert (symptom.decision.reason, symptom.decision.rule) == ("symptom", "service:payments")
    assert symptom.incident_key == "g"  # folded into the cause's incident
    assert unrelated[0] == "notify"


async def test_a_node_storm_pages_once_for_the_node_and_records_everything_else() -> None:
    """A node goes NotReady, 40 pod alerts on it follow, one alert flaps, one is in maintenance."""
    clock = Clock()
    config = suppression(
        "  resolved_grace_seconds: 60\n"
        "  flapping: {max_changes: 3, window_seconds: 1800}\n"
        "  maintenance:\n"
        "    - {name: db-upgrade, matchers: ['namespace=\"db\"'], start: 2026-11-25T09:00:00Z,"
        " end: 2026-11-25T12:00:00Z}\n"
    )
    stage = SuppressStage(Suppressor(config, clock))
    node_group = Group('{}:{alertname="KubeNodeNotReady"}', "kubebot", "firing")
    pods_group = Group('{}:{alertname="KubePodNotReady"}', "kubebot", "firing")
    node = work({"alertname": "KubeNodeNotReady", "node": "worker-3", "severity": "critical"}, group=node_group)
    pods = [
        work(
            {"alertname": "KubePodNotReady", "namespace": "shop", "pod": f"web-{i}", "severity": "warning"},
            fingerprint=f"pod{i}",
            k8s={"pod": {"name": f"web-{i}", "exists": True, "phase": "Running", "node": "worker-3"}},
            group=pods_group,
        )
        for i in range(40)
    ]
    maintenance = work({"alertname": "PostgresDown", "namespace": "db"}, fingerprint="db")
    recorded: list[Work] = []

    async def run(batch: list[Work]) -> list[Work]:
        """As the worker does: held alerts come back after their hold, marked held."""
        decided = await stage.exec(batch)
        recorded.extend(w for w in decided if w.decision.action != "hold")
        return [dataclasses.replace(w, held=True) for w in decided if w.decision.action == "hold"]

    held = await run([node, *pods, maintenance])
    for i in range(4):  # flapping: fires and resolves every 20 s
        status = "firing" if i % 2 == 0 else "resolved"
        clock.tick(20)
        held += await run([work({"alertname": "DiskIO"}, status, T0 + timedelta(seconds=40 * (i // 2)), "flap")])
    clock.tick(60)
    await run(held)

    pages = [w for w in recorded if w.decision.action == "notify"]
    reasons = sorted({(w.alert.fingerprint[:3], w.decision.reason) for w in recorded if w.decision.action != "notify"})
    assert [w.alert.name for w in pages] == ["KubeNodeNotReady"]
    assert len(recorded) == 1 + 40 + 1 + 4
    pod_outcomes = [w for w in recorded if w.alert.fingerprint.startswith("pod")]
    assert len(pod_outcomes) == 40
    assert all(w.decision.reason == "symptom" and w.incident_key == node_group.group_key for w in pod_outcomes)
    assert reasons == [("db", "maintenance"), ("fla", "flapping"), ("fla", "resolved_in_grace"), ("pod", "symptom")]


def test_a_resolve_for_a_firing_this_process_never_saw_is_announced() -> None:
    """After a restart the memory is empty: the page that went out before it gets its resolve."""
    suppressor = Suppressor(suppression("  resolved_grace_seconds: 60"), Clock())
    assert decide(suppressor, work({"alertname": "Old"}, "resolved", fingerprint="f9")) == ("notify", None, None)


def _restarted(
    before: Suppressor,
    decided: list[tuple[datetime, Work]],
    clock: Clock,
    graph: Callable[[], nx.DiGraph] = nx.DiGraph,
) -> Suppressor:
    """A new process with the same config and graph source: empty memory, rebuilt from
    the outcomes `before` decided."""
    after = Suppressor(before.config, clock, graph=graph)
    for at, item in decided:
        after.recall(item.outcome(), at)
    return after


def test_after_a_restart_a_symptom_of_a_firing_cause_is_still_its_symptom() -> None:
    clock = Clock()
    graph = nx.DiGraph([("frontend", "checkout"), ("checkout", "payments")])
    before = Suppressor(SuppressionConfig(), clock, graph=lambda: graph)
    cause = before.decide(work({"alertname": "PaymentsDown", "service": "payments"}, fingerprint="c"))
    clock.tick(60)
    after = _restarted(before, [(T0, cause)], clock, graph=lambda: graph)
    symptom = after.decide(
        work({"alertname": "FrontendSlow", "service": "frontend"}, fingerprint="s", group=Group("other", "k", "firing"))
    )
    assert (symptom.decision.reason, symptom.decision.rule, symptom.incident_key) == (
        "symptom",
        "service:payments",
        "g",
    )


def test_after_a_restart_repeats_and_flapping_are_remembered_and_resolved_causes_are_not() -> None:
    clock = Clock()
    config = suppression("  repeat_interval_seconds: 3600\n  flapping: {max_changes: 3, window_seconds: 600}")
    graph = nx.DiGraph([("frontend", "payments")])
    before = Suppressor(config, clock, graph=lambda: graph)
    decided: list[tuple[datetime, Work]] = []

    def run(item: Work) -> Work:
        done = before.decide(item)
        decided.append((clock(), done))
        clock.tick(30)
        return done

    run(work({"alertname": "R"}, fingerprint="rep"))
    for i in range(5):  # flapping: the 5th change pages once, saying so
        run(work({"alertname": "Flappy"}, "firing" if i % 2 == 0 else "resolved", T0 + timedelta(minutes=i // 2), "fl"))
    run(work({"alertname": "PaymentsDown", "service": "payments"}, fingerprint="c"))
    run(work({"alertname": "PaymentsDown", "service": "payments"}, "resolved", fingerprint="c"))

    after = _restarted(before, decided, clock, graph=lambda: graph)
    repeat = decide(after, work({"alertname": "R"}, starts=T0 + timedelta(minutes=5), fingerprint="rep"))
    flapping = decide(after, work({"alertname": "Flappy"}, "resolved", T0 + timedelta(minutes=2), "fl"))
    no_cause = decide(after, work({"alertname": "FrontendSlow", "service": "frontend"}, fingerprint="s"))
    assert decided[5][1].decision.reason == "flapping"  # what the first process did
    assert repeat[:2] == ("suppress", "repeat")
    assert flapping[:2] == ("suppress", "flapping")
    assert no_cause == ("notify", None, None)


def test_after_a_restart_a_resolve_of_a_suppressed_firing_stays_quiet() -> None:
    clock = Clock()
    before = Suppressor(suppression(RULES), clock)
    firing = before.decide(work({"alertname": "X", "namespace": "db"}, fingerprint="m"))  # in db-upgrade
    clock.tick(3600)  # the window is over when the resolve comes
    after = _restarted(before, [(T0, firing)], clock)
    after.recall_held("h", T0.isoformat(), T0)
    resolved = decide(after, work({"alertname": "X", "namespace": "db"}, "resolved", fingerprint="m"))
    held_resolved = decide(after, work({"alertname": "Y"}, "resolved", fingerprint="h"))
    forgotten = decide(Suppressor(suppression(RULES), clock), work({"alertname": "X", "namespace": "db"}, "resolved"))
    assert firing.decision.reason == "maintenance"
    assert resolved[:2] == ("suppress", "maintenance")
    assert held_resolved[:2] == ("suppress", "resolved_in_grace")
    assert forgotten[0] == "notify"  # what a restart without recall did
