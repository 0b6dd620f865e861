"""The spine end to end with every source configured: a real Alertmanager delivers to
`kubebot serve`, which asks the (fake) Kubernetes API, a real backfilled Prometheus and a
(fake) Jaeger, and the page at the sink carries what an on-call engineer would look up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.conftest import HttpSink
from tests.fakes.kube_api import K3S_CRASHLOOP_POD, k3s_cluster
from tests.fakes.telemetry_fixtures import jaeger_envelope_with_error_trace
from tests.fakes.telemetry_http import Reply, serve
from tests.fakes.telemetry_prometheus import ERROR_RATIO_EXPR, Story, start_prometheus
from tests.processes import AlertmanagerProcess, KubebotProcess, PrometheusProcess

pytestmark = pytest.mark.skipif(
    AlertmanagerProcess.binary() is None or not PrometheusProcess.available(),
    reason="Debian prometheus and prometheus-alertmanager not installed",
)
TOKEN = "enriched-e2e-token"


async def test_the_page_carries_kubernetes_facts_the_metric_and_the_failing_operation(
    tmp_path: Path, http_sink: HttpSink
) -> None:
    story = Story(now=int(datetime.now(UTC).timestamp()))
    prometheus, prometheus_proc = await asyncio.to_thread(start_prometheus, tmp_path, story)
    kube = k3s_cluster()
    kube_url = await kube.start()
    (tmp_path / "token").write_text(TOKEN)
    routes = {
        "/api/services": Reply.json({"data": ["backend-api"]}),
        "/api/traces": Reply.json(jaeger_envelope_with_error_trace()),
    }
    try:
        async with serve(routes) as jaeger:
            kubebot = KubebotProcess.create(
                tmp_path,
                {
                    "auth": {"bearer_token_file": str(tmp_path / "token")},
                    # The k3s snapshot is from 2025: look far enough back for its events.
                    "kubernetes": {"mode": "auto", "host": kube_url, "events_window_seconds": 400_000_000},
                    "prometheus": {"url": prometheus.url},
                    "traces": {"jaeger": {"url": jaeger.url}},
                    "enrichment": {"timeout_seconds": 8},
                    "notify": {"default_urls": [http_sink.url()]},
                },
            )
            await asyncio.to_thread(kubebot.start)
            am = await asyncio.to_thread(AlertmanagerProcess.start, tmp_path, f"{kubebot.url}/api/v1/alerts", TOKEN)
            try:
                starts_at = datetime.fromtimestamp(story.alert_starts_at, UTC)
                alert = {
                    "labels": {
                        "alertname": "KubePodCrashLooping",
                        "namespace": "default",
                        "pod": K3S_CRASHLOOP_POD,
                        "container": "api-server",
                        "severity": "critical",
                    },
                    "annotations": {"summary": "backend-api is crash looping and failing requests"},
                    "startsAt": starts_at.isoformat(),
                    "generatorURL": "http://prometheus/graph?" + urlencode({"g0.expr": ERROR_RATIO_EXPR}),
                }
                await asyncio.to_thread(am.post_alerts, [alert])
                page = (await http_sink.wait_for(1, timeout=40))[0]
            finally:
                await asyncio.to_thread(am.stop)
                await asyncio.to_thread(kubebot.stop)
    finally:
        await kube.close()
        await asyncio.to_thread(prometheus_proc.stop)
    message = page["message"]
    assert f"kubernetes: {K3S_CRASHLOOP_POD}: CrashLoopBackOff" in message  # the verdict first
    assert "last Error (exit 1)" in message  # the last termination
    assert "event BackOff x25" in message
    assert "Failed to connect to database" in message  # the previous container's log
    assert "prometheus: Alert expression:" in message
    assert "jaeger:" in message
    assert "some-operation" in message  # the failing operation
