"""Kubernetes objects as root causes, blended with the services' metric ranking.

A suspect is an object of an incident's neighbourhood (an alert's subject, its owner, its
node, its volume, a recent rollout) with clues: what was found wrong with it, in words,
each with a weight. Clues of one topic (the node's readiness, the image, memory, ...)
count once, so one fact seen twice (a waiting reason and its event) is not two facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from rca.model import RootCause

# As rca.ranking's fact_weight: a fact (NotReady, OOMKilled, a rollout just before)
# outweighs any metric anomaly, whose scores are 0..1; anomalies order what facts tie.
FACT = 1.0
# The topic of "an alert fired about this object": it stands in for a metric anomaly
# (the alert is one), so it counts as much as the best one and not on top of it.
ALERT = "alert"


@dataclass(frozen=True)
class Clue:
    topic: str  # what the clue is about: clues of one topic count once
    text: str  # the evidence, in words
    weight: float = FACT


@dataclass(frozen=True)
class Suspect:
    kind: str
    name: str
    namespace: str | None = None
    service: str | None = None  # the service it runs as, in the signal table's names
    clues: tuple[Clue, ...] = ()

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.kind, self.namespace, self.name)

    def weight(self, topic_filter: str | None = None) -> float:
        """The strongest clue per topic, summed (only `topic_filter`'s when given)."""
        strongest: dict[str, float] = {}
        for clue in self.clues:
            if topic_filter is None or clue.topic == topic_filter:
                strongest[clue.topic] = max(strongest.get(clue.topic, 0.0), clue.weight)
        return sum(strongest.values())


def merge(suspects: Iterable[Suspect]) -> list[Suspect]:
    """One suspect per object, in first-seen order, with every distinct clue."""
    # Gathered first, built once: a storm's batch names one owner or node many times.
    first: dict[tuple[str, str | None, str], Suspect] = {}
    services: dict[tuple[str, str | None, str], str | None] = {}
    clues: dict[tuple[str, str | None, str], dict[str, Clue]] = {}
    for suspect in suspects:
        key = suspect.key
        if key not in first:
            first[key], services[key], clues[key] = suspect, suspect.service, {}
        services[key] = services[key] or suspect.service
        known = clues[key]
        for clue in suspect.clues:
            known.setdefault(clue.text, clue)
    return [
        suspect
        if services[key] == suspect.service and tuple(clues[key].values()) == suspect.clues
        else replace(suspect, service=services[key], clues=tuple(clues[key].values()))
        for key, suspect in first.items()
    ]


def blend(suspects: Iterable[Suspect], ranked: Sequence[RootCause]) -> list[RootCause]:
    """Objects and services in one ranking, most likely first.

    An object scores its clues other than the alert, plus the larger of its alert clue
    and the metric score of the service it runs as; that service is then not listed on
    its own (its evidence joins the object's). Objects with nothing against them are left
    out. Ties keep objects first, then the services' order.
    """
    by_service = {cause.service: cause for cause in ranked}
    claimed: set[str] = set()
    causes: list[RootCause] = []
    for suspect in sorted(merge(suspects), key=lambda s: -s.weight()):
        metric = by_service.get(suspect.service) if suspect.service and suspect.service not in claimed else None
        if metric is not None:
            claimed.add(metric.service)
        alerted = suspect.weight(ALERT)
        score = suspect.weight() - alerted + max(alerted, metric.score if metric else 0.0)
        if score <= 0:
            continue
        evidence = tuple(c.text for c in sorted(suspect.clues, key=lambda c: (c.topic == ALERT, -c.weight)))
        causes.append(
            RootCause(
                suspect.name,
                round(score, 9),
                tuple(dict.fromkeys(evidence + (metric.evidence if metric else ()))),
                kind=suspect.kind,
                namespace=suspect.namespace,
            )
        )
    causes += [cause for cause in ranked if cause.service not in claimed]
    order = {id(cause): i for i, cause in enumerate(causes)}
    return sorted(causes, key=lambda c: (-c.score, order[id(c)]))
