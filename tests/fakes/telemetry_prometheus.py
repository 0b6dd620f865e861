"""A real Prometheus (Debian package) with a backfilled story, for the telemetry tests.

The story, over the last hour (timestamps relative to the moment the fixture starts):
- checkout's error ratio is about 1% until SPIKE_AT, then about 23%; the alert started
  two minutes later (ALERT_STARTS_AT).
- checkout's pod climbs in memory to near its 512 MiB limit, uses 0.8 of 1 CPU with 40% of
  periods throttled, and restarted twice in the last 30 minutes.
- servicegraph edges frontend -> checkout -> payments (and user -> frontend, a virtual
  node), Istio frontend -> cart, Linkerd cart -> redis.

Use it with `from tests.fakes.telemetry_prometheus import prometheus_fixture` (the
fixture's name is `prometheus`; importing it registers it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import PrometheusProcess

HOUR = 3600
STEP = 15
MIB = 1024 * 1024
NAMESPACE = "shop"
CHECKOUT_POD = "checkout-6d9f7c8b4d-x2x7k"
FRONTEND_POD = "frontend-7c9d8f6b5c-k2x9z"
PAYMENTS_POD = "payments-0"
MEMORY_LIMIT = 512 * MIB
ERROR_RATIO_EXPR = (
    'sum by (service) (rate(http_requests_total{service="checkout", code="500"}[5m]))'
    ' / sum by (service) (rate(http_requests_total{service="checkout"}[5m])) > 0.05'
)

Curve = Callable[[float], float]  # seconds since the start of the data -> value


@dataclass(frozen=True)
class Story:
    """Times of the backfilled data, in unix seconds."""

    now: int

    @property
    def start(self) -> int:
        return self.now - HOUR

    @property
    def spike_at(self) -> int:
        return self.now - 600

    @property
    def alert_starts_at(self) -> int:
        return self.now - 480

    def counter(self, before: float, after: float | None = None, at: int | None = None) -> Curve:
        """A counter growing `before` per second, then `after` per second from `at`."""
        switch = (at or self.spike_at) - self.start
        late = before if after is None else after

        def value(elapsed: float) -> float:
            return before * min(elapsed, switch) + late * max(0.0, elapsed - switch)

        return value

    def steps(self, *changes: tuple[int, float]) -> Curve:
        """A gauge that jumps to each value at its unix time."""

        def value(elapsed: float) -> float:
            current = 0.0
            for at, level in changes:
                if self.start + elapsed >= at:
                    current = level
            return current

        return value


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def openmetrics(story: Story) -> str:
    """The whole story as OpenMetrics text (families contiguous, samples in time order)."""
    ns = {"namespace": NAMESPACE}
    checkout = {**ns, "pod": CHECKOUT_POD, "container": "app"}
    frontend = {**ns, "pod": FRONTEND_POD, "container": "app"}
    payments = {**ns, "pod": PAYMENTS_POD, "container": "app"}
    # family name -> (type, [(sample name, labels, curve)])
    families: dict[str, tuple[str, list[tuple[str, dict[str, str], Curve]]]] = {}

    def add(family: str, kind: str, labels: dict[str, str], curve: Curve) -> None:
        sample = f"{family}_total" if kind == "counter" else family
        families.setdefault(family, (kind, []))[1].append((sample, labels, curve))

    def constant(level: float) -> Curve:
        return lambda _: level

    web = {**ns, "service": "checkout"}
    add("http_requests", "counter", {**web, "code": "200"}, story.counter(10.0))
    add("http_requests", "counter", {**web, "code": "500"}, story.counter(0.1, 3.0))

    add("container_cpu_usage_seconds", "counter", checkout, story.counter(0.8))
    add("container_cpu_usage_seconds", "counter", frontend, story.counter(0.2))
    add("container_cpu_usage_seconds", "counter", payments, story.counter(0.1, 0.6))
    add("container_cpu_cfs_periods", "counter", checkout, story.counter(10.0))
    add("container_cpu_cfs_throttled_periods", "counter", checkout, story.counter(4.0))
    climb: Curve = lambda elapsed: 200 * MIB + 300 * MIB * elapsed / HOUR  # noqa: E731
    add("container_memory_working_set_bytes", "gauge", checkout, climb)
    add("container_memory_working_set_bytes", "gauge", frontend, constant(100 * MIB))
    add("container_memory_working_set_bytes", "gauge", payments, constant(300 * MIB))
    # cAdvisor's pod-level cgroup: must not be added to the containers.
    pod_cgroup = {**ns, "pod": CHECKOUT_POD, "container": ""}
    add("container_memory_working_set_bytes", "gauge", pod_cgroup, constant(9000 * MIB))
    ksm = {"job": "kube-state-metrics", "service": "kube-state-metrics"}
    add(
        "kube_pod_container_resource_limits",
        "gauge",
        {**checkout, **ksm, "resource": "cpu", "unit": "core"},
        constant(1.0),
    )
    add(
        "kube_pod_container_resource_limits",
        "gauge",
        {**checkout, **ksm, "resource": "memory", "unit": "byte"},
        constant(float(MEMORY_LIMIT)),
    )
    restarts = story.steps((story.now - 1200, 1.0), (story.now - 300, 2.0))
    add("kube_pod_container_status_restarts", "counter", {**checkout, **ksm}, restarts)
    add("kube_pod_container_status_restarts", "counter", {**frontend, **ksm}, constant(0.0))

    graph = "traces_service_graph_request"
    add(graph, "counter", {"client": "frontend", "server": "checkout"}, story.counter(10.0))
    add(graph, "counter", {"client": "checkout", "server": "payments"}, story.counter(5.0))
    add(graph, "counter", {"client": "user", "server": "frontend"}, story.counter(10.0))
    failed = f"{graph}_failed"
    add(failed, "counter", {"client": "checkout", "server": "payments"}, story.counter(0.05, 2.0))
    buckets = f"{graph}_server_seconds_bucket"
    for server, slow_after in (("checkout", False), ("payments", True)):
        for le, fast, slow in (("0.1", 4.0, 0.5), ("0.5", 4.8, 1.0), ("1", 5.0, 4.0)):
            curve = story.counter(fast, slow if slow_after else fast)
            add(buckets, "unknown", {"server": server, "le": le}, curve)
        add(buckets, "unknown", {"server": server, "le": "+Inf"}, story.counter(5.0))

    istio = {"source_workload_namespace": NAMESPACE, "destination_workload_namespace": NAMESPACE}
    for reporter in ("destination", "source"):
        edge = {**istio, "reporter": reporter}
        edge |= {"source_workload": "frontend", "destination_workload": "cart"}
        add("istio_requests", "counter", {**edge, "response_code": "200"}, story.counter(4.0))
        add("istio_requests", "counter", {**edge, "response_code": "503"}, story.counter(0.5))
    linkerd = {"direction": "outbound", "deployment": "cart", "dst_deployment": "redis"}
    add("response", "counter", {**linkerd, "classification": "success"}, story.counter(6.0))

    out: list[str] = []
    times = range(story.start, story.now + 1, STEP)
    for family, (kind, samples) in families.items():
        out.append(f"# TYPE {family} {kind}")
        for sample, labels, curve in samples:
            rendered = _labels(labels)
            out.extend(f"{sample}{rendered} {curve(t - story.start):.6f} {t}" for t in times)
    out.append("# EOF")
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    story: Story


def start_prometheus(workdir: Path, story: Story) -> tuple[PrometheusServer, PrometheusProcess]:
    if not PrometheusProcess.available():
        pytest.skip("the prometheus Debian package is not installed (make system-deps)")
    process = PrometheusProcess.start(workdir, openmetrics(story))
    return PrometheusServer(process.url, story), process


@pytest.fixture(scope="session", name="prometheus")
def prometheus_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    workdir = tmp_path_factory.mktemp("prometheus")
    server, process = start_prometheus(workdir, Story(now=int(time.time())))
    try:
        yield server
    finally:
        process.stop()
