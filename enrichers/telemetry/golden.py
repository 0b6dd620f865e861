"""Golden signals of the alert's workload: which PromQL to ask, and how to say the answer.

Resource signals come from the standard cAdvisor and kube-state-metrics series; request
signals from the OpenTelemetry servicegraph metrics. A signal whose metric does not exist
comes back empty and is left out.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from enrichers.telemetry.naming import promql_regex_literal, promql_string
from enrichers.telemetry.promql import format_number

MIB = 1024 * 1024
SIGNAL_LABEL = "kubebot_signal"


@dataclass(frozen=True)
class Workload:
    """How to select the workload's containers in cAdvisor and kube-state-metrics series."""

    namespace: str | None
    pod: str | None  # exact pod name
    pod_prefix: str | None  # deployment/statefulset/daemonset name: its pods start with it
    container: str | None

    def selector(self, *extra: str) -> str:
        if self.pod:
            pods = f"pod={promql_string(self.pod)}"
        elif self.pod_prefix:
            pods = f"pod=~{promql_string(promql_regex_literal(self.pod_prefix) + '-.+')}"
        else:
            pods = None
        return _selector(extra, self.namespace, pods, self.container)


def _selector(extra: Sequence[str], namespace: str | None, pods: str | None, container: str | None) -> str:
    """A PromQL label selector: `extra` matchers, then namespace, pods and container."""
    matchers = list(extra)
    if namespace:
        matchers.append(f"namespace={promql_string(namespace)}")
    if pods:
        matchers.append(pods)
    if container:
        matchers.append(f"container={promql_string(container)}")
    return "{" + ", ".join(matchers) + "}"


def workload_from_labels(labels: Mapping[str, str]) -> Workload | None:
    """The workload of a kubernetes-mixin style alert, or None when it names no pods."""
    pod = labels.get("pod") or None
    prefix = None
    if pod is None:
        for label in ("deployment", "statefulset", "daemonset"):
            if labels.get(label):
                prefix = labels[label]
                break
    if pod is None and prefix is None:
        return None
    return Workload(
        namespace=labels.get("namespace") or None,
        pod=pod,
        pod_prefix=prefix,
        container=labels.get("container") or None,
    )


@dataclass(frozen=True)
class PodSet:
    """Pods of one namespace (and container) whose resource signals are asked in one query
    per signal: the alerts of a storm's group name a pod each, and asking per pod made six
    Prometheus requests per alert."""

    namespace: str | None
    container: str | None
    pods: tuple[str, ...]

    def selector(self, *extra: str) -> str:
        return _selector(extra, self.namespace, self._pods_matcher, self.container)

    @functools.cached_property
    def _pods_matcher(self) -> str:
        # Built once: each of a query's signals selects the same pods.
        return f"pod=~{promql_string('|'.join(promql_regex_literal(pod) for pod in self.pods))}"


def pod_sets(workloads: Sequence[Workload], most_pods: int = 100) -> list[PodSet]:
    """The named pods of `workloads`, by namespace and container, at most `most_pods` a set
    (a longer regex would make a URL Prometheus refuses)."""
    by_scope: dict[tuple[str | None, str | None], set[str]] = {}
    for workload in workloads:
        if workload.pod:
            by_scope.setdefault((workload.namespace, workload.container), set()).add(workload.pod)
    sets = []
    for (namespace, container), pods in by_scope.items():
        ordered = sorted(pods)
        for start in range(0, len(ordered), most_pods):
            sets.append(PodSet(namespace, container, tuple(ordered[start : start + most_pods])))
    return sets


def resource_queries(workload: Workload, window: str) -> dict[str, str]:
    return _resource_queries(workload.selector, "sum", window)


def pod_set_queries(pods: PodSet, window: str) -> dict[str, str]:
    """The same signals as `resource_queries`, one series per pod of the set."""
    return _resource_queries(pods.selector, "sum by (pod)", window)


def _resource_queries(select: Callable[..., str], total: str, window: str) -> dict[str, str]:
    # cAdvisor repeats the pod's cgroup with container="" and the pause container as POD.
    cadvisor = select('container!=""', 'container!="POD"')
    cpu_limit = select('resource="cpu"')
    memory_limit = select('resource="memory"')
    pods = select()
    return {
        "cpu_cores": f"{total}(rate(container_cpu_usage_seconds_total{cadvisor}[5m]))",
        "cpu_limit_cores": f"{total}(kube_pod_container_resource_limits{cpu_limit})",
        "cpu_throttled_ratio": (
            f"{total}(increase(container_cpu_cfs_throttled_periods_total{cadvisor}[5m]))"
            f" / {total}(increase(container_cpu_cfs_periods_total{cadvisor}[5m]))"
        ),
        "memory_bytes": f"{total}(container_memory_working_set_bytes{cadvisor})",
        "memory_limit_bytes": f"{total}(kube_pod_container_resource_limits{memory_limit})",
        "restarts": f"{total}(increase(kube_pod_container_status_restarts_total{pods}[{window}]))",
    }


def one_query(queries: Mapping[str, str]) -> str:
    """Several signals asked in one request: each answer labelled with its signal's name
    (`SIGNAL_LABEL`) and joined with `or`, which keeps them all, their labels differing."""
    return " or ".join(
        f'label_replace({query}, {promql_string(SIGNAL_LABEL)}, {promql_string(name)}, "", "")'
        for name, query in queries.items()
    )


def request_queries(service: str) -> dict[str, str]:
    server = "{server=" + promql_string(service) + "}"
    return {
        "request_rate": f"sum(rate(traces_service_graph_request_total{server}[5m]))",
        # The failed counter appears only after a first failure: no series means 0.
        "error_ratio": (
            f"(sum(rate(traces_service_graph_request_failed_total{server}[5m])) or vector(0))"
            f" / sum(rate(traces_service_graph_request_total{server}[5m]))"
        ),
        "latency_p90_seconds": (
            "histogram_quantile(0.9, sum by (le) "
            f"(rate(traces_service_graph_request_server_seconds_bucket{server}[5m])))"
        ),
    }


@dataclass(frozen=True)
class GoldenSignals:
    """Instant values; None where the metric does not exist for this workload."""

    values: Mapping[str, float | None]
    window: str

    def get(self, name: str) -> float | None:
        value = self.values.get(name)
        return value if value is not None and math.isfinite(value) else None

    def to_facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {k: self.get(k) for k in sorted(self.values)}
        cpu, cpu_limit = self.get("cpu_cores"), self.get("cpu_limit_cores")
        memory, memory_limit = self.get("memory_bytes"), self.get("memory_limit_bytes")
        facts["cpu_of_limit"] = _ratio(cpu, cpu_limit)
        facts["memory_of_limit"] = _ratio(memory, memory_limit)
        return {k: v for k, v in facts.items() if v is not None}

    def lines(self) -> tuple[str, ...]:
        """Most alarming first: memory at its limit kills pods, throttling only slows them."""
        ranked: list[tuple[float, str]] = []
        memory, memory_limit = self.get("memory_bytes"), self.get("memory_limit_bytes")
        if memory is not None:
            share = _ratio(memory, memory_limit)
            text = f"Memory {memory / MIB:.0f} MiB"
            if memory_limit is not None and share is not None:
                text += f" of {memory_limit / MIB:.0f} MiB limit ({share:.0%})"
            ranked.append((share or 0.0, text))
        cpu, cpu_limit = self.get("cpu_cores"), self.get("cpu_limit_cores")
        throttled = self.get("cpu_throttled_ratio")
        if cpu is not None:
            share = _ratio(cpu, cpu_limit)
            text = f"CPU {cpu:.2f} cores"
            if cpu_limit is not None and share is not None:
                text += f" of {cpu_limit:.2f} limit ({share:.0%})"
            if throttled is not None:
                text += f", throttled {throttled:.0%} of periods"
            ranked.append((max(share or 0.0, throttled or 0.0) * 0.9, text))
        restarts = self.get("restarts")
        if restarts is not None and round(restarts) > 0:
            ranked.append((2.0, f"Restarts: {round(restarts)} in the last {self.window}"))
        requests = self.get("request_rate")
        if requests is not None:
            text = f"Requests {format_number(requests)}/s"
            errors = self.get("error_ratio")
            if errors is not None:
                text += f", errors {errors:.1%}"
            latency = self.get("latency_p90_seconds")
            if latency is not None:
                text += f", p90 {format_number(latency)}s"
            ranked.append(((errors or 0.0) * 2, text))
        return tuple(text for _, text in sorted(ranked, key=lambda item: -item[0]))


def _ratio(part: float | None, whole: float | None) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return part / whole
