"""Rank services as root causes: own anomaly, then a walk toward anomalous dependencies.

1. Each series gets a robust score (rca.scoring): the stronger of "against its own
   past" and "against its peers" (its change compared with the same metric's change in
   every other service). A service's anomaly is the sum of its
   four strongest signal families (cpu, memory, latency, ...), each family's strongest series
   on a log scale, weighted: a resource or error anomaly is direct evidence about the
   service itself, latency is often inherited from a dependency, and traffic (network,
   syscalls, workload) mostly follows what callers send.
2. With a call graph, a personalized PageRank seeded by those anomalies walks from
   callers toward anomalous callees (with a weaker way back), and a service keeps
   weight in proportion to how much more anomalous it is than its own dependencies, so
   the walk settles on the deepest anomalous service: the cause rather than its callers.
   The final score blends the walk with the service's own anomaly, because a walk alone
   piles weight on quiet leaves that many anomalous callers happen to call. Services
   without edges keep their plain anomaly rank.
3. Kubernetes facts (OOMKilled, CrashLoopBackOff, a recent rollout) add to the score.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
from scipy import sparse

from rca.graph import CallIndex, index_calls
from rca.model import Edge, RootCause, SignalTable
from rca.scoring import ScoringConfig, SeriesScore, SeriesScores, ratio_to_baseline, score_series

# Weight of each signal family in a service's own anomaly, by what it says about the
# service: resources and errors are its own; latency may be inherited; traffic follows.
DEFAULT_FAMILY_WEIGHTS: Mapping[str, float] = {
    "cpu": 1.0,
    "memory": 1.0,
    "errors": 1.0,
    "restarts": 1.0,
    "latency": 0.5,
    "client_latency": 0.5,
    "network": 0.25,
    "syscall": 0.25,
    "workload": 0.25,
}


NO_FACTS: Mapping[str, Sequence[str]] = MappingProxyType({})


@dataclass(frozen=True)
class RankingConfig:
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    family_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FAMILY_WEIGHTS))
    other_family_weight: float = 0.5
    top_families: int = 4
    # Random walk: probability of following an edge rather than restarting at the seeds,
    # and the weight of walking back from a callee to its caller (MicroRCA's rho).
    walk_alpha: float = 0.85
    walk_iterations: int = 100
    # Share of the final score that is the service's own anomaly rather than the walk's.
    own_share: float = 0.5
    backward_weight: float = 0.2
    # Added to the (0..1) score per Kubernetes fact about a service: a fact such as
    # OOMKilled outweighs any metric anomaly; anomalies order services with facts.
    fact_weight: float = 1.0
    # A series whose score (against peers or its past) reaches this is named in the
    # evidence: 1 is one robust spread.
    evidence_threshold: float = 1.0
    evidence_series: int = 3
    # In evidence, a caller or callee counts as anomalous at this share of the top anomaly.
    anomalous_share: float = 0.5


DEFAULT_CONFIG = RankingConfig()


@dataclass(frozen=True)
class ServiceAnomaly:
    service: str
    score: float
    top_series: tuple[SeriesScore, ...]  # strongest first
    onset: float | None  # earliest onset among its anomalous series


def rank(
    table: SignalTable,
    inject_time: float,
    edges: Sequence[Edge] = (),
    facts: Mapping[str, Sequence[str]] = NO_FACTS,
    config: RankingConfig = DEFAULT_CONFIG,
    among: Collection[str] | None = None,
) -> list[RootCause]:
    """Every service in the table once, most likely root cause first.

    `inject_time` is when the trouble began (the alert time online); rows before it are
    the normal window. `edges` (caller -> callee) may come from several sources; edges
    naming services that are not in the table are left out. `facts` are Kubernetes
    observations per service, in words ("OOMKilled"); each raises the service's score.
    `among` limits the candidates (and the walk) to those services, an incident's
    neighbourhood: every series is still scored, so "unlike other services" keeps
    meaning the whole table.
    """
    series = score_series(table, inject_time, config.scoring)
    anomalies = service_anomalies(series, config)
    if among is not None:
        anomalies = {name: a for name, a in anomalies.items() if name in among}
    calls = index_calls(edges, list(anomalies))
    walk = walk_scores({name: a.score for name, a in anomalies.items()}, calls, config)
    evidence = _evidence(list(anomalies.values()), calls, facts, config)
    order = {name: i for i, name in enumerate(anomalies)}
    # Rounded so that float noise cannot reorder services whose evidence is the same.
    causes = [
        RootCause(name, round(walk[name] + config.fact_weight * len(facts.get(name, ())), 9), evidence[name])
        for name in anomalies
    ]
    # Ties keep the table's column order, so renaming services only renames the result.
    return sorted(causes, key=lambda c: (-c.score, order[c.service]))


def service_anomalies(series: SeriesScores, config: RankingConfig = DEFAULT_CONFIG) -> dict[str, ServiceAnomaly]:
    """Per service, in first-seen order: weighted sum of its strongest signal families.

    Vectorised over series (a few sorts), as tables online can hold 10,000s of them.
    """
    names = list(dict.fromkeys(series.services))
    if not names:
        return {}
    service = _codes(series.services, names)
    families = [family_of(m) for m in series.metrics]
    family_names = list(dict.fromkeys(families))
    family = _codes(families, family_names)
    weight = np.array([config.family_weights.get(f, config.other_family_weight) for f in family_names])
    value = weight[family] * np.log1p(series.strength)
    # The strongest series of each (service, family) pair leads it.
    pair = service * len(family_names) + family
    leaders = _leading(np.arange(len(pair)), pair, value, 1)
    by_family = np.zeros((len(names), len(family_names)))
    by_family[service[leaders], family[leaders]] = value[leaders]
    totals = -np.sort(-by_family, axis=1)[:, : config.top_families].sum(axis=1)
    onsets = np.full(len(names), np.inf)
    np.fmin.at(onsets, service, series.onset)
    top: dict[int, list[SeriesScore]] = {}
    for j in _leading(leaders, service[leaders], value[leaders], config.evidence_series).tolist():
        top.setdefault(int(service[j]), []).append(series[j])
    return {
        name: ServiceAnomaly(
            name,
            float(totals[i]),
            tuple(top.get(i, ())),
            None if math.isinf(onsets[i]) else float(onsets[i]),
        )
        for i, name in enumerate(names)
    }


def _codes(labels: Sequence[str], distinct: Sequence[str]) -> npt.NDArray[np.intp]:
    index = {label: i for i, label in enumerate(distinct)}
    return np.fromiter((index[label] for label in labels), dtype=np.intp, count=len(labels))


def _leading(
    items: npt.NDArray[np.intp], group: npt.NDArray[np.intp], value: npt.NDArray[np.float64], count: int
) -> npt.NDArray[np.intp]:
    """The `count` items of highest value in each group, by group then value (ties: first)."""
    order = np.lexsort((-value, group))
    grouped = group[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    result: npt.NDArray[np.intp] = items[order[position < count]]
    return result


@functools.lru_cache(maxsize=4096)
def family_of(metric: str) -> str:
    """The signal family of a metric name such as `cpu_mcores` or `client_latency_p99`."""
    name = metric.lower()
    if name.startswith("client_latency"):
        return "client_latency"
    for prefix, family in (
        ("cpu", "cpu"),
        ("mem", "memory"),
        ("latency", "latency"),
        ("net", "network"),
        ("syscall", "syscall"),
        ("workload", "workload"),
        ("restart", "restarts"),
    ):
        if name.startswith(prefix):
            return family
    if "error" in name or "fail" in name:
        return "errors"
    return name


def walk_scores(
    anomaly: Mapping[str, float], calls: CallIndex, config: RankingConfig = DEFAULT_CONFIG
) -> dict[str, float]:
    """Scores in 0..1 for the services in `anomaly` (in the order of `calls.services`).

    A personalized PageRank (restart at the seeds with probability 1 - walk_alpha) over
    a walk graph: caller -> callee weighted by the callee's anomaly, callee -> caller by
    backward_weight times the caller's, and a self-loop weighted by how much more
    anomalous a service is than its most anomalous dependency. Power iteration on a
    sparse matrix: linear in services + edges. Without calls: the anomaly, scaled.
    """
    names = calls.services
    top = max(anomaly.values(), default=0.0)
    if top <= 0:
        return dict.fromkeys(names, 0.0)
    seed = np.array([anomaly[name] / top for name in names])
    if not len(calls):
        return dict(zip(names, seed.tolist(), strict=True))
    callers, callees = calls.callers, calls.callees
    explained = np.zeros(len(names))
    np.maximum.at(explained, callers, seed[callees])
    nodes = np.arange(len(names))
    rows = np.concatenate([callers, callees, nodes])
    cols = np.concatenate([callees, callers, nodes])
    weights = np.concatenate(
        [
            seed[callees],
            config.backward_weight * seed[callers],
            np.maximum(0.0, seed - explained),  # stay where nothing below explains it
        ]
    )
    weights += 1e-9  # every edge stays walkable, so the walk never gets stuck
    step = sparse.csr_matrix((weights, (rows, cols)), shape=(len(names), len(names)))
    step = sparse.diags(1.0 / np.asarray(step.sum(axis=1)).ravel()) @ step  # rows sum to 1
    restart = (seed + 1e-9) / (seed + 1e-9).sum()
    visits = restart
    for _ in range(config.walk_iterations):
        following = config.walk_alpha * (step.T @ visits) + (1 - config.walk_alpha) * restart
        converged = np.abs(following - visits).sum() < 1e-10
        visits = following
        if converged:
            break
    # Blend in the service's own anomaly: the walk alone piles weight on quiet leaves
    # that many anomalous callers call.
    score = (1 - config.own_share) * visits / visits.max() + config.own_share * seed
    return dict(zip(names, (score / score.max()).tolist(), strict=True))


def _evidence(
    anomalies: Sequence[ServiceAnomaly],
    calls: CallIndex,
    facts: Mapping[str, Sequence[str]],
    config: RankingConfig,
) -> dict[str, tuple[str, ...]]:
    """Per service: its strongest signals in words, facts, and how its calls behaved."""
    lines: dict[str, list[str]] = {}
    for anomaly in anomalies:
        own = lines[anomaly.service] = [
            f"{anomaly.service}: {_describe(s, config)}"
            for s in anomaly.top_series
            if s.strength >= config.evidence_threshold
        ]
        if not own:
            own.append(f"{anomaly.service}: no signal left its normal range")
        own.extend(f"{anomaly.service}: {fact}" for fact in facts.get(anomaly.service, ()))
    score = np.array([a.score for a in anomalies])
    onset = np.array([np.nan if a.onset is None else a.onset for a in anomalies])
    # "Anomalous" in words: at least this share of the strongest anomaly.
    anomalous = score >= config.anomalous_share * score.max() if len(score) and score.max() > 0 else score > 0
    callers, callees = calls.callers, calls.callees
    degraded_after = anomalous[callers] & anomalous[callees] & (onset[callers] >= onset[callees])
    for callee, group in _group(callees[degraded_after], callers[degraded_after]):
        names = ", ".join(calls.services[c] for c in group)
        lines[calls.services[callee]].append(f"called by {names} which degraded after it")
    for caller, group in _group(callers[anomalous[callees]], callees[anomalous[callees]]):
        names = ", ".join(calls.services[c] for c in group)
        verb = "is" if len(group) == 1 else "are"
        lines[calls.services[caller]].append(f"depends on {names} which {verb} anomalous too")
    return {name: tuple(text) for name, text in lines.items()}


def _group(keys: npt.NDArray[np.intp], values: npt.NDArray[np.intp]) -> list[tuple[int, list[int]]]:
    """(key, its values in their order) per distinct key, keys in first-seen order."""
    grouped: dict[int, list[int]] = {}
    for key, value in zip(keys.tolist(), values.tolist(), strict=True):
        grouped.setdefault(key, []).append(value)
    return list(grouped.items())


def _describe(s: SeriesScore, config: RankingConfig) -> str:
    """e.g. "cpu 1.3x baseline, unlike other services (robust z 6.1) from 14:02 UTC"."""
    ratio = ratio_to_baseline(s)
    if ratio is not None and ratio > 0:
        shown = f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.2f}"
        change = f"{shown}x baseline" if ratio >= 1 else f"down to {shown}x baseline"
    else:
        change = f"{s.after:.3g} against a baseline of {s.baseline:.3g}"
    if not math.isnan(s.peer_score) and s.peer_score >= config.evidence_threshold:
        change += f", unlike other services (robust z {s.peer_score:.1f})"
    if s.score >= config.evidence_threshold:
        change += f", {s.score:.1f} normal spreads away"
    since = f" from {time.strftime('%H:%M', time.gmtime(s.onset))} UTC" if s.onset else ""
    return f"{s.metric} {change}{since}"
