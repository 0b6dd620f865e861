"""What the Kubernetes enricher found, and how it reads: a verdict line first, then
compact lines (owner, rollout, node, pods, events, log excerpt), plus JSON facts.

Pure: `Findings` in, facts and summary lines out; `read_verdict` reads back, typed, the
part of the facts that suppression and ranking act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from enrichers.kubernetes.facts import (
    EventFacts,
    NodeFacts,
    OwnerRef,
    PodFacts,
    Rollout,
    ServiceFacts,
    WorkloadFacts,
    pod_badness,
    pod_verdict,
)
from enrichers.kubernetes.logs_redact import LogExcerpt
from enrichers.kubernetes.subject import Subject

SUMMARY_EVENTS = 5
SUMMARY_LOG_LINES = 10
FACT_PODS = 20


@dataclass(frozen=True)
class Findings:
    subject: Subject
    alert_time: datetime
    now: datetime
    pod: PodFacts | None = None  # the pod looked at closely (the subject, or the worst one)
    pods: tuple[PodFacts, ...] = ()  # behind a workload, service or node; worst first
    owners: tuple[OwnerRef, ...] = ()
    workload: WorkloadFacts | None = None
    rollout: Rollout | None = None
    node: NodeFacts | None = None
    service: ServiceFacts | None = None
    events: tuple[EventFacts, ...] = ()
    logs: tuple[LogExcerpt, ...] = ()
    failures: tuple[str, ...] = ()  # lookups that failed, "what: reason"


def verdict(findings: Findings) -> str:
    subject, now = findings.subject, findings.now
    if subject.kind == "Pod" and findings.pod is not None:
        return pod_verdict(findings.pod, now, subject.container)
    if subject.kind == "Node" and findings.node is not None:
        return findings.node.verdict() + _pods_health(findings.pods)
    if subject.kind == "Service" and findings.service is not None:
        return findings.service.verdict()
    if findings.workload is not None:
        return findings.workload.verdict()
    return f"{subject.ref}: no details available"


def _pods_health(pods: tuple[PodFacts, ...]) -> str:
    if not pods:
        return ""
    not_ready = [p for p in pods if not p.ready and p.phase != "Succeeded"]
    return f", {len(pods)} pods, {len(not_ready)} not ready"


def _pods_line(pods: tuple[PodFacts, ...]) -> str | None:
    if not pods:
        return None
    ready = sum(1 for p in pods if p.ready)
    troubled = [p for p in pods if pod_badness(p)[0] > 0][:3]
    line = f"pods: {ready}/{len(pods)} ready"
    if troubled:
        line += "; " + "; ".join(_brief(p) for p in troubled)
    return line


def _brief(pod: PodFacts) -> str:
    worst = pod.container(None)
    state = (worst.state_reason if worst else None) or pod.reason or pod.phase or "?"
    restarts = f", {pod.restarts} restarts" if pod.restarts else ""
    return f"{pod.name} {state}{restarts}"


def summary_lines(findings: Findings) -> tuple[str, ...]:
    now = findings.now
    lines = [verdict(findings)]
    closer_look = findings.pod if findings.subject.kind != "Pod" else None
    if closer_look is not None and pod_badness(closer_look)[0] > 0:
        lines.append("worst pod " + pod_verdict(closer_look, now))
    if findings.owners:
        lines.append("owner: " + " -> ".join(o.describe() for o in findings.owners))
    if findings.workload is not None and findings.subject.kind in ("Pod", "Service"):
        lines.append(findings.workload.verdict())
    if findings.rollout is not None:
        lines.append(findings.rollout.describe(findings.alert_time))
    if findings.node is not None and findings.subject.kind != "Node":
        lines.append(findings.node.verdict())
    pods_line = _pods_line(findings.pods)
    if pods_line is not None:
        lines.append(pods_line)
    lines += [f"event {e.describe(now)}" for e in findings.events[:SUMMARY_EVENTS]]
    for excerpt in findings.logs:
        if not excerpt.lines:
            continue
        which = "previous instance" if excerpt.previous else "current"
        shown = excerpt.render()[-SUMMARY_LOG_LINES:]
        lines.append(f"log {excerpt.container} ({which}), last {len(shown)} lines:")
        lines += shown
    if findings.failures:
        lines.append("kubernetes: partial, could not read: " + "; ".join(findings.failures))
    return tuple(lines)


def facts(findings: Findings) -> dict[str, Any]:
    """JSON-serialisable facts; keys for parts that do not apply are left out."""
    result: dict[str, Any] = {
        "subject": findings.subject.to_json(),
        "verdict": verdict(findings),
        "events": [e.to_json() for e in findings.events],
        "logs": [excerpt.to_json() for excerpt in findings.logs],
        "failed_lookups": list(findings.failures),
    }
    if findings.pod is not None:
        result["pod"] = findings.pod.to_json()
    if findings.pods:
        result["pods"] = [p.to_brief_json() for p in findings.pods[:FACT_PODS]]
        result["pods_total"] = len(findings.pods)
    if findings.owners:
        result["owners"] = [o.to_json() for o in findings.owners]
    optional = {
        "workload": findings.workload,
        "rollout": findings.rollout,
        "node": findings.node,
        "service": findings.service,
    }
    result.update({key: value.to_json() for key, value in optional.items() if value is not None})
    return result


class PodState(msgspec.Struct, frozen=True):
    """The pod looked at closely, as far as suppression reads it."""

    name: str | None = None
    exists: bool = True
    phase: str | None = None
    node: str | None = None


class WorkloadState(msgspec.Struct, frozen=True):
    """The workload behind the alert, as far as suppression reads it."""

    kind: str | None = None
    name: str | None = None
    exists: bool = False
    desired: int | None = None
    ready: int | None = None
    problems: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        """Exists, every desired replica ready, no condition in a bad state."""
        return self.exists and self.desired is not None and (self.ready or 0) >= self.desired and not self.problems


class KubernetesVerdict(msgspec.Struct, frozen=True):
    """What suppression and ranking act on: the verdict line, the pod and its workload.
    Read from the JSON facts (fresh ones and stored ones alike): the facts stay the
    record the API and the dashboard show."""

    verdict: str | None = None
    pod: PodState | None = None
    workload: WorkloadState | None = None


def read_verdict(facts: Mapping[str, Any]) -> KubernetesVerdict:
    """The typed verdict in `facts`; an empty one when they hold none, or a shape no
    version of this enricher wrote (facts from a stored outcome of another version)."""
    try:
        return msgspec.convert(dict(facts), KubernetesVerdict)
    except msgspec.ValidationError:
        return KubernetesVerdict()
