"""What the dashboard shows, from stored incidents and outcomes (pure view code and templates)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from receiver.incidents import Incident
from receiver.pipeline.outcome import Outcome, decode_outcome
from receiver.store.base import DeliveryRecord, IncidentAction, IncidentDetail, StoredOutcome
from receiver.web.dashboard import ListPage, render, render_list_page
from receiver.web.view import (
    MAX_ALERTS_SHOWN,
    duration,
    flatten,
    incident_rows,
    incident_view,
    paging_note,
    root_causes,
    safe_link,
    timeline,
    timestamp,
)
from tests.test_dashboard_support import Markup

T0 = 1_764_082_800.0  # 2025-11-25 15:00:00 UTC


def _incident(id: int = 1, status: str = "firing", severity: str = "critical", **changes: Any) -> Incident:
    values: dict[str, Any] = {
        "id": id,
        "key": f"k{id}",
        "title": f"Alert{id} in shop",
        "status": status,
        "severity": severity,
        "namespace": "shop",
        "started_at": T0,
        "updated_at": T0,
        "resolved_at": None if status == "firing" else T0 + 600,
        "top_cause": "db",
        "paged": True,
        "firing_count": 1 if status == "firing" else 0,
        "alert_count": 1,
    }
    return Incident(**{**values, **changes})


def _outcome(decision: str = "notify", **changes: Any) -> Outcome:
    """An outcome as the store keeps it (JSON), read back as the store reads it."""
    stored = {
        "fingerprint": "fp",
        "alertname": "HighErrorRate",
        "alert": {
            "fingerprint": "fp",
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "severity": "critical"},
            "annotations": {"summary": "errors"},
            "startsAt": "2025-11-25T15:00:00+00:00",
            "endsAt": None,
            "generatorURL": "http://prometheus/graph",
        },
        "group": {"groupKey": "k1"},
        "decision": decision,
        "reason": None,
        "rule": None,
        "routes": ["json://<redacted:1>"] if decision == "notify" else [],
        **changes,
    }
    return decode_outcome(json.dumps(stored))


def _detail(*outcomes: Outcome, deliveries: tuple[DeliveryRecord, ...] = ()) -> IncidentDetail:
    stored = tuple(StoredOutcome(i + 1, T0 + i, T0 + i + 0.5, o) for i, o in enumerate(outcomes))
    return IncidentDetail(_incident(), stored, deliveries)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (45, "45s"), (200, "3m 20s"), (3600, "1h"), (7500, "2h 5m"), (90000, "1d 1h"), (-5, "0s")],
)
def test_durations_are_short(seconds: float, shown: str) -> None:
    assert shown == duration(seconds)


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("https://grafana/d/x", "https://grafana/d/x"),
        ("http://prometheus:9090/graph?g0.expr=up", "http://prometheus:9090/graph?g0.expr=up"),
        ("javascript:alert(1)", None),
        ("JavaScript:alert(1)", None),
        ("data:text/html,<script>", None),
        ("//evil.example/x", None),
        ("http://[::1", None),
        ("", None),
        (None, None),
    ],
)
def test_only_http_links_become_links(url: object, link: str | None) -> None:
    assert link == safe_link(url)


def test_nested_facts_flatten_to_rows() -> None:
    facts = {"pod": {"name": "api-1", "ready": False, "containers": [{"name": "app", "restarts": 3}]}, "x": None}
    assert flatten(facts) == [
        ("pod.name", "api-1"),
        ("pod.ready", "no"),
        ("pod.containers[0].name", "app"),
        ("pod.containers[0].restarts", "3"),
    ]


@pytest.mark.parametrize(
    ("paged", "outcomes", "note"),
    [
        (True, [], "paged"),
        (
            False,
            [_outcome("suppress", reason="maintenance", rule="db-upgrade")],
            "suppressed: maintenance (db-upgrade)",
        ),
        (False, [_outcome("suppress", reason="flapping")], "suppressed: flapping"),
        (False, [_outcome("notify", routes=[])], "not paged: no channel routes it"),
        (False, [], "not paged"),
    ],
)
def test_the_paging_note_says_why_nobody_was_paged(paged: bool, outcomes: list[Outcome], note: str) -> None:
    assert note == paging_note(_incident(paged=paged), outcomes)


def test_firing_incidents_come_first_then_the_most_severe_then_the_newest() -> None:
    incidents = [
        _incident(1, "resolved", "critical"),
        _incident(2, "firing", "warning"),
        _incident(3, "firing", "critical"),
        _incident(4, "firing", "warning", started_at=T0 + 60),
    ]
    assert [r.id for r in incident_rows(incidents, {}, T0 + 3600)] == [3, 4, 2, 1]


def test_a_resolved_incident_says_how_long_it_lasted() -> None:
    (row,) = incident_rows([_incident(status="resolved")], {}, T0 + 3600)
    assert row.age == "lasted 10m, resolved 50m ago"


def test_the_newest_ranking_is_shown_with_bars_relative_to_the_top_score() -> None:
    older = _outcome(root_causes=[{"service": "cache", "score": 1.0, "evidence": []}])
    newer = _outcome(root_causes=[{"service": "db", "score": 0.8, "evidence": ["OOMKilled"]}, {"service": "api"}])
    causes = root_causes([older, newer, _outcome()])
    assert [(c.rank, c.service, c.score, c.share, c.evidence) for c in causes] == [
        (1, "db", 0.8, 1.0, ("OOMKilled",)),
        (2, "api", 0.0, 0.0, ()),
    ]


def _kubernetes(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kubernetes": {"source": "kubernetes", "status": "ok", "facts": {"events": events}}}


def test_the_timeline_is_in_time_order_and_shows_a_shared_event_once() -> None:
    event = {"reason": "BackOff", "count": 3, "last_seen": "2025-11-25T14:59:00Z", "message": "restarting"}
    dead = DeliveryRecord(7, 1, "json://user:pw@hook/x", "dead", 8, "refused by json://user:pw@hook/x", T0, T0 + 900)
    detail = _detail(
        _outcome(enrichment=_kubernetes([event])), _outcome(enrichment=_kubernetes([event])), deliveries=(dead,)
    )
    entries = timeline(detail)
    texts = [e.text for e in entries]
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert texts[0] == "BackOff x3: restarting"
    assert texts.count("BackOff x3: restarting") == 1
    assert entries[-1].kind == "dead"
    assert "pw" not in " ".join(texts)


def test_suppressed_alerts_are_counted_and_their_reason_shown() -> None:
    view = incident_view(_detail(_outcome(), _outcome("suppress", reason="repeat")), T0 + 60)
    assert view.suppressed == 1
    assert "HighErrorRate: suppressed, repeat" in [e.text for e in view.timeline]


def test_a_notification_channel_and_its_error_are_redacted() -> None:
    dead = DeliveryRecord(7, 1, "tgram://123:SECRET/chat", "dead", 8, "401 for tgram://123:SECRET/chat", T0, T0)
    (row,) = incident_view(_detail(_outcome(), deliveries=(dead,)), T0).notifications
    assert (row.dead_letter, "SECRET" in row.channel + row.last_error) == (True, False)


def test_the_incident_page_draws_the_graph_with_the_top_cause_highlighted() -> None:
    outcome = _outcome(
        root_causes=[{"service": "db", "score": 0.9, "evidence": []}, {"service": "api", "score": 0.3}],
        graph={"nodes": ["web", "api", "db"], "edges": [["web", "api"], ["api", "db"]]},
    )
    page = Markup.of(render("incident.html", view=incident_view(_detail(outcome), T0), now=T0))
    classes = {attrs.get("class") for tag, attrs in page.elements if tag == "g"}
    assert {"node", "node cause-top", "node cause"} <= classes
    assert "db: ranked cause #1" in page.text


def test_trace_links_other_than_http_are_dropped() -> None:
    facts = {"service": "api", "links": ["http://jaeger/t/1", "javascript:x"]}
    traces = {"jaeger": {"source": "jaeger", "status": "ok", "facts": facts}}
    page = Markup.of(render("incident.html", view=incident_view(_detail(_outcome(enrichment=traces)), T0), now=T0))
    hrefs = [attrs["href"] for tag, attrs in page.elements if tag == "a"]
    assert "http://jaeger/t/1" in hrefs
    assert [h for h in hrefs if h and "javascript" in h] == []


def test_an_incident_whose_alerts_were_pruned_still_renders() -> None:
    page = render("incident.html", view=incident_view(_detail(), T0), now=T0)
    assert "past the retention period" in page


def test_an_empty_list_says_nothing_is_firing() -> None:
    page = ListPage([], [], False, True, True, {}, None, None)
    assert "Nothing is firing" in render_list_page(page, T0)


def test_a_storm_incident_shows_the_newest_alerts_and_says_how_many_it_left_off() -> None:
    view = incident_view(_detail(*[_outcome() for _ in range(MAX_ALERTS_SHOWN + 5)]), T0)
    assert (len(view.alerts), view.hidden_alerts, view.alerts[0].alert_id) == (
        MAX_ALERTS_SHOWN,
        5,
        MAX_ALERTS_SHOWN + 5,
    )
    assert len(view.timeline) + view.hidden_entries == 2 * (MAX_ALERTS_SHOWN + 5) + 1


def test_the_incident_page_lists_each_suppression_with_its_reason_and_rule() -> None:
    suppressed = _outcome("suppress", reason="maintenance", rule="db-upgrade")
    page = Markup.of(render("incident.html", view=incident_view(_detail(_outcome(), suppressed), T0), now=T0))
    text = [t.strip() for t in page.text if t.strip()]
    row = text.index("suppress")
    assert text[row : row + 3] == ["suppress", "maintenance", "db-upgrade"]


def test_what_engineers_did_is_on_the_timeline_in_time_order() -> None:
    silence = IncidentAction(
        3, 1, "silence", "cy", T0 + 30, "maintenance", {"silences": [{"id": "s1"}], "ends_at": T0 + 3630}
    )
    ack = IncidentAction(1, 1, "ack", "ana", T0 + 10, "", {})
    feedback = IncidentAction(2, 1, "feedback", "bo", T0 + 20, "", {"verdict": "useful", "cause": None})
    entries = incident_view(_detail(_outcome()), T0 + 60, [ack, feedback, silence]).timeline
    done = [e.text for e in entries if e.kind == "action"]
    assert done == [
        "acknowledged by ana",
        "feedback from bo: useful",
        f"silenced by cy in Alertmanager (1 silence(s) until {timestamp(T0 + 3630)}): maintenance",
    ]
