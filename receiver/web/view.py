"""What the dashboard shows, as plain data: incidents and stored outcomes in, view rows out.

Pure code, no I/O and no markup: the templates escape every string these return. Stored
outcomes come typed from the store; the enrichment facts inside them are read defensively
(they come from many sources and versions), so an odd shape leaves a part of the page
empty instead of failing it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from enrichers.times import parse_time
from receiver.incidents import Incident, severity_rank
from receiver.pipeline.outcome import EnrichmentRecord, Outcome
from receiver.redact import redact_text, redact_url
from receiver.store.base import IncidentAction, IncidentDetail, StoredOutcome
from receiver.web.svg import GraphLayout, LineChart, layout_graph, line_chart

MAX_FLAT_FACTS = 80
# A storm can fold thousands of alerts into one incident; the page shows the newest.
MAX_ALERTS_SHOWN = 50
MAX_TIMELINE = 300
TRACE_SOURCES = ("jaeger", "tempo")
# The order an on-call engineer reads them in; other sources follow by name.
SOURCE_ORDER = ("kubernetes", "prometheus", "jaeger", "tempo", "loki")


# ---- small formatting helpers -------------------------------------------------------------------


def duration(seconds: float) -> str:
    """Compact, two units at most: 45s, 3m 20s, 2h 5m, 4d 3h."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    first = next((i for i, (value, _) in enumerate(units) if value), None)
    if first is None:
        return "0s"
    return " ".join(f"{value}{unit}" for value, unit in units[first : first + 2] if value)


def timestamp(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def safe_link(url: object) -> str | None:
    """Only http(s) links from alerts and facts become links: no javascript: or data: URLs."""
    if not isinstance(url, str) or not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def seconds_at(value: object) -> float | None:
    """Epoch seconds of an RFC 3339 time (enrichers.times.parse_time's policy), or None."""
    moment = parse_time(value)
    return moment.timestamp() if moment is not None else None


def flatten(value: object, prefix: str = "") -> list[tuple[str, str]]:
    """Nested facts as `key.sub: value` rows; lists of plain values joined, empties skipped."""
    rows: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            rows += flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list | tuple):
        if all(not isinstance(item, Mapping | list | tuple) for item in value):
            if value:
                rows.append((prefix, ", ".join(_text(item) for item in value)))
        else:
            for i, item in enumerate(value):
                rows += flatten(item, f"{prefix}[{i}]")
    elif value is not None and value != "":
        rows.append((prefix, _text(value)))
    return rows[:MAX_FLAT_FACTS]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _str(value: object) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


# ---- the incident list --------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentRow:
    id: int
    title: str
    status: str
    severity: str
    namespace: str
    started: str
    age: str
    top_cause: str
    paged: bool
    paging: str  # "paged", or why not: "suppressed: maintenance (db-upgrade)"
    alert_count: int
    firing_alerts: int
    subject: str  # "HorizontalPodAutoscaler shop/frontend"; empty for incidents stored before subjects


def paging_note(incident: Incident, outcomes: Sequence[Outcome]) -> str:
    """Whether anyone was paged, and if not, the newest recorded reason why not."""
    if incident.paged:
        return "paged"
    for outcome in reversed(outcomes):
        if outcome.decision == "suppress":
            reason = outcome.reason or "suppressed"
            return f"suppressed: {reason}" + (f" ({outcome.rule})" if outcome.rule else "")
    if outcomes:
        return "not paged: no channel routes it"
    return "not paged"


def incident_rows(incidents: Iterable[Incident], notes: Mapping[int, str], now: float) -> list[IncidentRow]:
    """Firing first, then the most severe, then the newest."""
    ordered = sorted(
        incidents,
        key=lambda i: (i.status != "firing", -severity_rank(i.severity), -i.started_at, -(i.id or 0)),
    )
    return [
        IncidentRow(
            id=i.id or 0,
            title=i.title,
            status=i.status,
            severity=i.severity,
            namespace=i.namespace,
            started=timestamp(i.started_at),
            age=duration(now - i.started_at)
            if i.resolved_at is None
            else f"lasted {duration(i.resolved_at - i.started_at)}, resolved {duration(now - i.resolved_at)} ago",
            top_cause=i.top_cause or "",
            paged=i.paged,
            paging=notes.get(i.id or 0, "paged" if i.paged else "not paged"),
            alert_count=i.alert_count,
            firing_alerts=i.firing_count,
            subject=i.subject.ref if i.subject is not None and i.subject.names_an_object else "",
        )
        for i in ordered
    ]


# ---- one incident -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    at: float
    when: str
    kind: str  # a CSS class: alert, decision, notification, dead, kubernetes, incident, action
    text: str


@dataclass(frozen=True)
class CauseRow:
    rank: int
    service: str
    score: float
    share: float  # of the top score, 0..1, for the bar
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class EventRow:
    reason: str
    count: str
    last_seen: str
    message: str
    objects: str


@dataclass(frozen=True)
class LogLine:
    text: str
    error: bool


@dataclass(frozen=True)
class LogView:
    title: str
    lines: tuple[LogLine, ...]
    truncated: bool


@dataclass(frozen=True)
class TraceView:
    service: str
    error_traces: str
    operations: tuple[tuple[str, str], ...]
    deepest_span: tuple[tuple[str, str], ...]
    links: tuple[str, ...]


@dataclass(frozen=True)
class SourceView:
    name: str
    status: str
    reason: str
    elapsed: str
    summary: tuple[str, ...]
    verdict: str
    facts: tuple[tuple[str, str], ...]
    events: tuple[EventRow, ...]
    logs: tuple[LogView, ...]
    expression: str
    chart: LineChart | None
    traces: TraceView | None
    raw: str  # every fact as JSON, for what the sections above do not show


@dataclass(frozen=True)
class AlertView:
    alert_id: int
    name: str
    fingerprint: str
    subject: str  # what the alert is about, "Node worker-3"; empty for the cluster as a whole
    status: str
    starts_at: str
    ends_at: str
    received_at: str
    link: str | None
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]
    decision: str
    reason: str
    rule: str
    routes: tuple[str, ...]
    sources: tuple[SourceView, ...]


@dataclass(frozen=True)
class NotificationRow:
    alert_id: int
    channel: str
    state: str
    dead_letter: bool
    attempts: int
    last_error: str
    created: str
    updated: str


@dataclass(frozen=True)
class IncidentView:
    row: IncidentRow
    resolved: str
    causes: tuple[CauseRow, ...]
    graph: GraphLayout | None
    timeline: tuple[TimelineEntry, ...]
    alerts: tuple[AlertView, ...]
    notifications: tuple[NotificationRow, ...]
    suppressed: int
    hidden_alerts: int  # older alerts left off the page (the JSON API has them all)
    hidden_entries: int  # older timeline entries left off


def incident_view(detail: IncidentDetail, now: float, actions: Sequence[IncidentAction] = ()) -> IncidentView:
    outcomes = [a.outcome for a in detail.alerts]
    incident = detail.incident
    causes = root_causes(outcomes)
    entries = timeline(detail, actions)
    return IncidentView(
        row=incident_rows([incident], {incident.id or 0: paging_note(incident, outcomes)}, now)[0],
        resolved=timestamp(incident.resolved_at),
        causes=causes,
        graph=dependency_graph(outcomes, [c.service for c in causes]),
        timeline=entries[-MAX_TIMELINE:],
        alerts=tuple(alert_view(a) for a in detail.alerts[::-1][:MAX_ALERTS_SHOWN]),
        notifications=tuple(
            NotificationRow(
                alert_id=d.alert_id,
                channel=redact_url(d.url),
                state=d.state,
                dead_letter=d.state == "dead",
                attempts=d.attempts,
                # Apprise errors can quote the URL they failed on, secrets included.
                last_error=redact_text(d.last_error or ""),
                created=timestamp(d.created_at),
                updated=timestamp(d.updated_at),
            )
            for d in detail.deliveries
        ),
        suppressed=sum(1 for o in outcomes if o.decision == "suppress"),
        hidden_alerts=max(0, len(detail.alerts) - MAX_ALERTS_SHOWN),
        hidden_entries=max(0, len(entries) - MAX_TIMELINE),
    )


def root_causes(outcomes: Sequence[Outcome]) -> tuple[CauseRow, ...]:
    """The newest ranking any alert of the incident carries, best first."""
    ranking = next((o.root_causes for o in reversed(outcomes) if o.root_causes), ())
    causes = [c for c in ranking if c.service]
    top = max((c.score for c in causes), default=0.0)
    return tuple(
        CauseRow(
            rank=i + 1,
            service=c.service,
            score=c.score,
            share=c.score / top if top > 0 else 0.0,
            evidence=c.evidence,
        )
        for i, c in enumerate(causes)
    )


def dependency_graph(outcomes: Sequence[Outcome], causes: Sequence[str]) -> GraphLayout | None:
    graph = next((o.graph for o in reversed(outcomes) if o.graph is not None), None)
    if graph is None:
        return None
    return layout_graph(list(graph.nodes), [list(e) for e in graph.edges], causes)


def timeline(detail: IncidentDetail, actions: Sequence[IncidentAction] = ()) -> tuple[TimelineEntry, ...]:
    """Everything with a time, oldest first, what engineers did included; the same
    Kubernetes event seen by several alerts of the incident appears once."""
    incident = detail.incident
    entries: list[tuple[float, str, str]] = [(incident.started_at, "incident", "incident opened")]
    if incident.resolved_at is not None:
        entries.append((incident.resolved_at, "incident", "incident resolved"))
    for stored in detail.alerts:
        entries += _alert_entries(stored)
    for d in detail.deliveries:
        channel = redact_url(d.url)
        alert = f"alert {d.alert_id}"
        entries.append((d.created_at, "notification", f"{alert}: notification queued for {channel}"))
        if d.state == "delivered":
            entries.append((d.updated_at, "notification", f"{alert}: delivered to {channel} (attempt {d.attempts})"))
        elif d.state == "dead":
            error = redact_text(d.last_error or "")
            gave_up = f"{alert}: dead letter, {channel} gave up after {d.attempts} attempt(s): {error}"
            entries.append((d.updated_at, "dead", gave_up))
    entries += [(a.at, "action", action_text(a)) for a in actions]
    unique = dict.fromkeys(entries)
    return tuple(TimelineEntry(at, timestamp(at), kind, text) for at, kind, text in sorted(unique, key=lambda e: e[0]))


def action_text(action: IncidentAction) -> str:
    """One line for the timeline: who did what, and their note."""
    details = action.details
    if action.kind == "ack":
        text = f"acknowledged by {action.by}"
    elif action.kind == "feedback":
        cause = details.get("cause")
        text = f"feedback from {action.by}: {details.get('verdict')}" + (f", cause {cause}" if cause else "")
    else:
        silences = details.get("silences")
        count = len(silences) if isinstance(silences, list) else 0
        ends = details.get("ends_at")
        until = f" until {timestamp(ends)}" if isinstance(ends, int | float) else ""
        text = f"silenced by {action.by} in Alertmanager ({count} silence(s){until})"
    return f"{text}: {action.note}" if action.note else text


def _alert_entries(stored: StoredOutcome) -> list[tuple[float, str, str]]:
    outcome = stored.outcome
    name = outcome.alert.labels.get("alertname") or "alert"
    entries = [(stored.received_at, "alert", f"{name} {outcome.alert.status} received")]
    if outcome.decision == "suppress":
        why = _str(outcome.reason) + (f" ({outcome.rule})" if outcome.rule else "")
        entries.append((stored.processed_at, "decision", f"{name}: suppressed, {why}"))
    else:
        entries.append((stored.processed_at, "decision", f"{name}: notify, {len(outcome.routes)} channel(s)"))
    kubernetes = outcome.facts_of("kubernetes")
    rollout = _dict(kubernetes.get("rollout"))
    started = seconds_at(rollout.get("started_at"))
    if started is not None:
        what = f"rollout of {_str(rollout.get('deployment'))} revision {_str(rollout.get('revision'))}"
        entries.append((started, "kubernetes", what))
    for event in _list(kubernetes.get("events")):
        event = _dict(event)
        seen = seconds_at(event.get("last_seen"))
        if seen is not None:
            text = f"{_str(event.get('reason'))} x{_str(event.get('count'))}: {_str(event.get('message'))}"
            entries.append((seen, "kubernetes", text))
    return entries


def alert_view(stored: StoredOutcome) -> AlertView:
    outcome = stored.outcome
    alert = outcome.alert
    started = seconds_at(alert.starts_at)
    return AlertView(
        alert_id=stored.alert_id,
        name=alert.name,
        fingerprint=alert.fingerprint,
        subject=outcome.about.ref if outcome.about.names_an_object else "",
        status=alert.status,
        starts_at=timestamp(started),
        ends_at=timestamp(seconds_at(alert.ends_at)),
        received_at=timestamp(stored.received_at),
        link=safe_link(alert.generator_url),
        labels=tuple(sorted(alert.labels.items())),
        annotations=tuple(sorted(alert.annotations.items())),
        decision=outcome.decision,
        reason=_str(outcome.reason),
        rule=_str(outcome.rule),
        routes=outcome.routes,
        sources=tuple(
            source_view(name, found, started)
            for name, found in sorted(outcome.enrichment.items(), key=lambda item: _source_rank(item[0]))
        ),
    )


def _source_rank(name: str) -> tuple[int, str]:
    return (SOURCE_ORDER.index(name) if name in SOURCE_ORDER else len(SOURCE_ORDER), name)


def source_view(name: str, found: EnrichmentRecord, alert_started: float | None) -> SourceView:
    """One enrichment source: the parts the dashboard knows how to draw, the rest as JSON."""
    facts = found.facts
    expression = _dict(facts.get("expression"))
    return SourceView(
        name=name,
        status=found.status,
        reason=_str(found.reason),
        elapsed=f"{found.elapsed_seconds:.2f}s",
        summary=found.summary,
        verdict=_str(facts.get("verdict")),
        facts=tuple(_kubernetes_facts(facts) if name == "kubernetes" else _plain_facts(facts)),
        events=tuple(_event_row(_dict(e)) for e in _list(facts.get("events"))),
        logs=tuple(_log_views(facts)),
        expression=_str(expression.get("expr")),
        chart=line_chart(_list(expression.get("points")), marker_time=alert_started) if expression else None,
        traces=_trace_view(facts) if name in TRACE_SOURCES else None,
        raw=json.dumps(facts, indent=2, sort_keys=True, default=str)[:20000],
    )


# The Kubernetes enricher's fact sections, most telling first (events and logs are drawn apart).
KUBERNETES_FACT_KEYS = (
    "subject",
    "pod",
    "image_pull",
    "oom_killed",
    "pvc",
    "pv",
    "hpa",
    "job",
    "cronjob",
    "filesystem",
    "owners",
    "workload",
    "rollout",
    "node",
    "service",
    "pods",
    "failed_lookups",
)


def _kubernetes_facts(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key in KUBERNETES_FACT_KEYS:
        if facts.get(key):
            rows += flatten(facts[key], key)
    return rows[:MAX_FLAT_FACTS]


def _plain_facts(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    # Drawn elsewhere: the chart's points, trace details, log lines.
    skip = {"expression", "newest", "deepest_error_span", "top_failing_operations", "links"}
    rows = flatten({k: v for k, v in facts.items() if k not in skip})
    expression = _dict(facts.get("expression"))
    rows += flatten({k: v for k, v in expression.items() if k not in ("points", "expr")}, "expression")
    return rows[:MAX_FLAT_FACTS]


def _event_row(event: Mapping[str, Any]) -> EventRow:
    return EventRow(
        reason=_str(event.get("reason")),
        count=_str(event.get("count")),
        last_seen=timestamp(seconds_at(event.get("last_seen"))),
        message=_str(event.get("message")),
        objects=", ".join(_str(o) for o in _list(event.get("objects"))),
    )


def _log_views(facts: Mapping[str, Any]) -> list[LogView]:
    views: list[LogView] = []
    for excerpt in _list(facts.get("logs")):  # Kubernetes container logs
        excerpt = _dict(excerpt)
        errors = {i for i in _list(excerpt.get("error_lines")) if isinstance(i, int)}
        which = "previous instance" if excerpt.get("previous") else "current"
        views.append(
            LogView(
                title=f"{_str(excerpt.get('container'))} ({which})",
                lines=tuple(LogLine(_str(line), i in errors) for i, line in enumerate(_list(excerpt.get("lines")))),
                truncated=bool(excerpt.get("truncated")),
            )
        )
    newest = _list(facts.get("newest"))  # Loki error lines
    if newest:
        lines = tuple(LogLine(f"{_str(_dict(n).get('pod'))}: {_str(_dict(n).get('line'))}", True) for n in newest)
        views.append(LogView(title="newest error lines", lines=lines, truncated=bool(facts.get("error_lines_capped"))))
    return views


def _trace_view(facts: Mapping[str, Any]) -> TraceView:
    count = _str(facts.get("error_traces"))
    return TraceView(
        service=_str(facts.get("service")),
        error_traces=count + ("+" if facts.get("error_traces_capped") else ""),
        operations=tuple(
            (_str(_dict(op).get("operation")), _str(_dict(op).get("count")))
            for op in _list(facts.get("top_failing_operations"))
        ),
        deepest_span=tuple(flatten(_dict(facts.get("deepest_error_span")))),
        links=tuple(link for link in (safe_link(u) for u in _list(facts.get("links"))) if link),
    )
