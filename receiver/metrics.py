"""KubeBot's own telemetry. Every name is prefixed `kubebot_`; no label ever holds a secret.

Dashboards and alert rules in manifests/ refer to these names: keep them stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class Metrics:
    """One registry per app, so tests and several apps in a process never collide."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        # `_created` series double the exposition and nothing here reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
        r = self.registry
        self.webhook_requests = Counter(
            "kubebot_webhook_requests", "Webhook requests by HTTP answer code", ["code"], registry=r
        )
        self.webhook_seconds = Histogram(
            "kubebot_webhook_seconds",
            "Time to answer a webhook request (includes the durable write)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.alerts_received = Counter("kubebot_alerts_received", "Alerts received, by status", ["status"], registry=r)
        # Looked up once: intake counts on every request.
        self.received_firing = self.alerts_received.labels("firing")
        self.received_resolved = self.alerts_received.labels("resolved")
        self.alerts_duplicate = Counter(
            "kubebot_alerts_duplicate",
            "Alerts already stored in the same state (retries, HA peers, group re-sends)",
            registry=r,
        )
        self.queue_depth = Gauge("kubebot_queue_depth", "Stored alerts not yet processed", registry=r)
        self.workers_paused = Counter(
            "kubebot_workers_paused_seconds",
            "Time workers rested so that a flood of webhooks was answered first",
            registry=r,
        )
        self.processing_seconds = Histogram(
            "kubebot_processing_seconds",
            "From receipt to a decision (enrich, rank, suppress, route)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.enrichment_seconds = Histogram(
            "kubebot_enrichment_seconds",
            "Time one enrichment source took",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.enrichment_failures = Counter(
            "kubebot_enrichment_failures",
            "Enrichment sources that were unavailable",
            ["source"],
            registry=r,
        )
        self.suppressed = Counter("kubebot_suppressed", "Alerts not paged, by reason", ["reason"], registry=r)
        self.notifications = Counter(
            "kubebot_notifications",
            "Delivery attempts by channel scheme and result (success, failure)",
            ["scheme", "result"],
            registry=r,
        )
        self.dead_letters = Counter(
            "kubebot_dead_letters",
            "Deliveries given up after the last attempt",
            ["scheme"],
            registry=r,
        )
        self.outbox_depth = Gauge("kubebot_outbox_depth", "Deliveries waiting to be sent or retried", registry=r)
        self.quarantined = Counter(
            "kubebot_alerts_quarantined",
            "Alerts set aside, kept with their error, because a stage could not handle them",
            ["stage"],
            registry=r,
        )
        self.leader = Gauge(
            "kubebot_leader",
            "1 while this replica runs the singletons (heartbeat watch, digests, retention), else 0",
            registry=r,
        )
        self.task_restarts = Counter(
            "kubebot_task_restarts",
            "Background tasks restarted by the supervisor after an unexpected error",
            ["task"],
            registry=r,
        )
        self.kubernetes_requests = Counter(
            "kubebot_kubernetes_requests",
            "Kubernetes API requests by verb (get, list, watch), resource and HTTP code",
            ["verb", "resource", "code"],
            registry=r,
        )
        self.kubernetes_cache_objects = Gauge(
            "kubebot_kubernetes_cache_objects", "Objects held in the watch cache", ["resource"], registry=r
        )
        self.kubernetes_watch_restarts = Counter(
            "kubebot_kubernetes_watch_restarts",
            "Watch streams reopened (ended by the server, cut, or 410 Gone)",
            ["resource"],
            registry=r,
        )
        self.kubernetes_watch_up = Gauge(
            "kubebot_kubernetes_watch_up",
            "1 while a resource is served from the watch cache, 0 while it is read directly",
            ["resource"],
            registry=r,
        )


class KubernetesMetrics:
    """The Kubernetes enricher's cache.Observer, writing to the shared registry."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def request(self, verb: str, resource: str, code: str) -> None:
        self._metrics.kubernetes_requests.labels(verb, resource, code).inc()

    def cache_objects(self, resource: str, count: int) -> None:
        self._metrics.kubernetes_cache_objects.labels(resource).set(count)

    def watch_restart(self, resource: str) -> None:
        self._metrics.kubernetes_watch_restarts.labels(resource).inc()

    def watch_up(self, resource: str, up: bool) -> None:
        self._metrics.kubernetes_watch_up.labels(resource).set(1 if up else 0)
