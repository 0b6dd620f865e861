"""Noise insights: which alerts page people for nothing, and the rule that would stop it.

Pure code over the stored history (processed alerts and feedback). Per alert identity
(the labels a silence would use: alertname, namespace, the subject's): how often it
fired and paged, how long it fired, how many firings were over within 5 minutes, what
people said about it, a `noise_score` in 0..1 and, where it helps, a ready
`suppression.rules` entry with the pages it would have saved, found by replaying the
stored history through that rule (rules are the first check suppression makes, so an
alert the rule matches would not have paged). A suggestion never covers an alert that
anyone marked useful.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from receiver.matchers import all_match, parse_matcher
from receiver.service.silences import identifying_matchers
from receiver.store.base import Actions, HistoryAlert, IncidentAction

SHORT_SECONDS = 300.0  # "resolved within 5 minutes"
FREQUENT = 10  # firings in the window that count as frequent
SUGGEST_FROM = 0.5  # noise_score from which a rule is suggested
DROP_FROM = 0.8  # share of short firings from which the rule drops rather than digests

Identity = tuple[tuple[str, str], ...]  # sorted (label, value) pairs


@dataclass
class _Tally:
    alertname: str
    labels: dict[str, str]
    firings: set[tuple[str, str]] = field(default_factory=set)  # (fingerprint, startsAt)
    paged: int = 0
    durations: list[float] = field(default_factory=list)
    useful: int = 0
    noise: int = 0
    examples: list[Mapping[str, str]] = field(default_factory=list)  # full label sets seen


def identity_of(labels: Mapping[str, str]) -> Identity:
    return tuple((m.name, m.value) for m in identifying_matchers(labels))


def _duration(item: HistoryAlert) -> float | None:
    try:
        alert = item.outcome.alert.to_alert()
    except ValueError:
        return None
    if alert.ends_at is None:
        return None
    return max(0.0, (alert.ends_at - alert.starts_at).total_seconds())


def _tally(
    history: Sequence[HistoryAlert], feedback: Sequence[tuple[IncidentAction, tuple[str, ...]]]
) -> dict[Identity, _Tally]:
    tallies: dict[Identity, _Tally] = {}
    by_fingerprint: dict[str, Identity] = {}
    resolved_seen: set[tuple[str, str]] = set()
    for item in history:
        record = item.outcome.alert
        ident = identity_of(record.labels)
        tally = tallies.setdefault(ident, _Tally(item.outcome.alertname, dict(ident)))
        by_fingerprint[record.fingerprint] = ident
        if len(tally.examples) < 50 and dict(record.labels) not in tally.examples:
            tally.examples.append(dict(record.labels))
        state = (record.fingerprint, record.starts_at)
        if record.status == "firing":
            tally.firings.add(state)
        elif state not in resolved_seen:
            resolved_seen.add(state)
            tally.firings.add(state)  # a firing this history did not hold (before the window)
            seconds = _duration(item)
            if seconds is not None:
                tally.durations.append(seconds)
        if item.outcome.paged:
            tally.paged += 1
    for action, fingerprints in feedback:
        verdict = action.details.get("verdict")
        for ident in {by_fingerprint[f] for f in fingerprints if f in by_fingerprint}:
            if verdict == "useful":
                tallies[ident].useful += 1
            elif verdict == "noise":
                tallies[ident].noise += 1
    return tallies


def noise_score(fired: int, short: int, useful: int, noise: int) -> float:
    """Short-lived and frequent is noisy; what people said weighs as much as both."""
    if fired == 0:
        return 0.0
    measured = 0.6 * (short / fired) + 0.4 * min(1.0, fired / FREQUENT)
    if useful + noise:
        measured = 0.5 * measured + 0.5 * (noise / (useful + noise))
    return round(min(1.0, max(0.0, measured)), 3)


def _rule_name(tally: _Tally) -> str:
    raw = "-".join([tally.alertname, *(v for k, v in sorted(tally.labels.items()) if k != "alertname")])
    return "noisy-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", raw)[:100]


def pages_saved(rule_matchers: Sequence[str], history: Sequence[HistoryAlert]) -> int:
    """Pages in the stored history that the rule would have kept quiet."""
    matchers = [parse_matcher(m) for m in rule_matchers]
    return sum(1 for item in history if item.outcome.paged and all_match(matchers, item.outcome.alert.labels))


def _suggestion(
    tally: _Tally, score: float, short: int, history: Sequence[HistoryAlert], useful_examples: list[Mapping[str, str]]
) -> dict[str, Any] | None:
    fired = len(tally.firings)
    if score < SUGGEST_FROM or tally.paged == 0 or tally.useful:
        return None
    matchers = [f"{k}={json.dumps(v)}" for k, v in sorted(tally.labels.items())]
    parsed = [parse_matcher(m) for m in matchers]
    if any(all_match(parsed, labels) for labels in useful_examples):
        return None  # it would hide an alert someone said was worth a page
    action = "drop" if fired and short / fired >= DROP_FROM else "digest"
    rule = {"name": _rule_name(tally), "matchers": matchers, "action": action}
    suggestion: dict[str, Any] = {"rule": rule, "pages_saved": pages_saved(matchers, history)}
    shorts = [d for d in tally.durations if d <= SHORT_SECONDS]
    if action == "digest" and shorts:
        # Waiting out the short ones would have saved those pages without hiding the rest.
        suggestion["resolved_grace_seconds"] = int(min(SHORT_SECONDS, max(60.0, max(shorts))))
    return suggestion


def insights(
    history: Sequence[HistoryAlert], feedback: Sequence[tuple[IncidentAction, tuple[str, ...]]]
) -> list[dict[str, Any]]:
    """Per alert identity, noisiest first."""
    tallies = _tally(history, feedback)
    useful_examples = [labels for t in tallies.values() if t.useful for labels in t.examples]
    rows: list[tuple[tuple[float, int, str, Identity], dict[str, Any]]] = []
    for ident, tally in tallies.items():
        fired = len(tally.firings)
        short = sum(1 for d in tally.durations if d <= SHORT_SECONDS)
        score = noise_score(fired, short, tally.useful, tally.noise)
        rows.append(
            (
                (-score, -fired, tally.alertname, ident),
                {
                    "alertname": tally.alertname,
                    "labels": tally.labels,
                    "fired": fired,
                    "paged": tally.paged,
                    "median_firing_seconds": statistics.median(tally.durations) if tally.durations else None,
                    "resolved_within_5m": short,
                    "feedback": {"useful": tally.useful, "noise": tally.noise},
                    "noise_score": score,
                    "suggestion": _suggestion(tally, score, short, history, useful_examples),
                },
            )
        )
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


async def load_insights(store: Actions, now: datetime, days: int) -> list[dict[str, Any]]:
    """The insights of the last `days` days of the store's history (API and CLI alike)."""
    since = now - timedelta(days=days)
    return insights(await store.history(since), await store.feedback_since(since))
