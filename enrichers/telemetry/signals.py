"""The RCA signal table from Prometheus: the configured `rca.signals` range queries, shaped
into the case format (time x `<service>_<signal>`) so online and offline ranking match.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from enrichers.telemetry.http import gather_available
from enrichers.telemetry.naming import DEPLOYMENT_POD_RE2, SHORT_SUFFIX_POD_RE2, column_service
from enrichers.telemetry.promclient import PromClient, Series
from rca.model import SignalTable

DEFAULT_SERVICE_LABEL = "service"


@dataclass(frozen=True)
class SignalQuery:
    """One signal: a PromQL range query returning one series per service."""

    name: str
    query: str

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a signal needs a name")


def _by_pod_service(inner: str, aggregate: str = "sum") -> str:
    """Group a per-pod query by the workload its pod belongs to, as label `service`.

    Fallback is the pod name, then a StatefulSet/DaemonSet suffix is cut, then a
    Deployment's ReplicaSet hash and suffix (each label_replace overrides when it matches).
    """
    labelled = f'label_replace({inner}, "service", "$1", "pod", "(.+)")'
    labelled = f'label_replace({labelled}, "service", "$1", "pod", "{SHORT_SUFFIX_POD_RE2}")'
    labelled = f'label_replace({labelled}, "service", "$1", "pod", "{DEPLOYMENT_POD_RE2}")'
    return f"{aggregate} by (service) ({labelled})"


def _by_server(inner: str) -> str:
    return f'label_replace({inner}, "service", "$1", "server", "(.+)")'


_CADVISOR = '{container!="", container!="POD"}'

# For kube-prometheus-stack (cAdvisor through the kubelet, kube-state-metrics) and the
# OpenTelemetry servicegraph metrics; every query yields the label `service`.
DEFAULT_SIGNALS: tuple[SignalQuery, ...] = (
    SignalQuery(
        "cpu",
        _by_pod_service(f"sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{_CADVISOR}[2m]))"),
    ),
    SignalQuery(
        "mem",
        _by_pod_service(f"sum by (namespace, pod) (container_memory_working_set_bytes{_CADVISOR})"),
    ),
    SignalQuery(
        "restarts",
        _by_pod_service("sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total[5m]))"),
    ),
    SignalQuery(
        "latency",
        _by_server(
            "histogram_quantile(0.9, sum by (server, le) "
            "(rate(traces_service_graph_request_server_seconds_bucket[2m])))"
        ),
    ),
    SignalQuery(
        "error",
        _by_server("sum by (server) (rate(traces_service_graph_request_failed_total[2m]))"),
    ),
    # Traffic is "workload" in the case format (RCAEval) and in rca.ranking's families.
    SignalQuery(
        "workload",
        _by_server("sum by (server) (rate(traces_service_graph_request_total[2m]))"),
    ),
)


def signal_queries(pairs: Iterable[SignalQuery | tuple[str, str]]) -> tuple[SignalQuery, ...]:
    """Accept `(name, query)` pairs as they come from configuration."""
    return tuple(p if isinstance(p, SignalQuery) else SignalQuery(*p) for p in pairs)


def time_grid(start: datetime, end: datetime, step_seconds: float) -> list[float]:
    """The timestamps a Prometheus range query evaluates at: start, start+step, ... <= end.

    The client sends start and end rounded to whole seconds; so does the grid.
    """
    first, last = float(round(start.timestamp())), float(round(end.timestamp()))
    count = math.floor((last - first) / step_seconds + 1e-9) + 1
    return [first + i * step_seconds for i in range(max(count, 0))]


def signal_table_from_results(
    results: Sequence[tuple[str, Sequence[Series]]],
    service_label: str,
    times: Sequence[float],
    step_seconds: float,
) -> SignalTable:
    """Place every series on the time grid as column `<service>_<signal>`.

    Series without the service label are skipped; when several series name the same
    service for one signal the largest value wins (queries should aggregate by service).
    """
    if not times:
        return SignalTable.from_series([], {})
    origin = times[0]
    columns: dict[str, np.typing.NDArray[np.float64]] = {}
    for signal, series_list in results:
        for series in series_list:
            service = series.labels.get(service_label, "")
            if not service:
                continue
            column = f"{column_service(service)}_{signal}"
            values = columns.setdefault(column, np.full(len(times), np.nan))
            for timestamp, value in series.points:
                index = round((timestamp - origin) / step_seconds)
                if 0 <= index < len(times) and math.isfinite(value):
                    values[index] = np.fmax(values[index], value)
    ordered = sorted(columns)
    return SignalTable.from_series(list(times), {c: list(columns[c]) for c in ordered})


@dataclass(frozen=True)
class SignalFetch:
    table: SignalTable
    problems: tuple[str, ...]  # "<signal>: <reason>" for queries that failed


async def fetch_signal_table(
    client: PromClient,
    signals: Iterable[SignalQuery | tuple[str, str]] = DEFAULT_SIGNALS,
    *,
    start: datetime,
    end: datetime,
    step_seconds: float = 30.0,
    service_label: str = DEFAULT_SERVICE_LABEL,
) -> SignalFetch:
    """Run every signal query concurrently; a failing query leaves its columns out."""
    queries = signal_queries(signals)
    results, problems = await gather_available(
        [(q.name, client.range_query(q.query, start, end, step_seconds)) for q in queries]
    )
    table = signal_table_from_results(results, service_label, time_grid(start, end, step_seconds), step_seconds)
    return SignalFetch(table, tuple(problems))
