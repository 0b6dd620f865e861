"""Sources built from the config: each backend gets its own settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from enrichers.base import run_enrichers
from enrichers.kubernetes.enricher import KubernetesSettings
from receiver.config import KubernetesConfig
from receiver.config import load as load_config
from receiver.pipeline.sources import build_sources, kubernetes_settings
from tests.fakes.telemetry_alerts import alert_with, context
from tests.fakes.telemetry_fixtures import LOKI_STREAMS, TEMPO_SEARCH, fixture
from tests.fakes.telemetry_http import Reply, serve

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
LABELS = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "checkout-1", "service": "checkout"}


async def test_loki_and_tempo_each_send_their_own_tenant() -> None:
    loki_routes = {"/loki/api/v1/query_range": Reply.json(fixture(LOKI_STREAMS))}
    async with serve(loki_routes) as loki, serve({"/api/search": Reply.json(fixture(TEMPO_SEARCH))}) as tempo:
        config = load_config(
            f"""
kubernetes: {{mode: "off"}}
traces: {{tempo: {{url: "{tempo.url}", tenant: traces-team}}}}
logs: {{loki: {{url: "{loki.url}", tenant: logs-team}}}}
""",
            {},
        )
        sources = await build_sources(config)
        try:
            await run_enrichers(sources.enrichers, alert_with(LABELS, NOW - timedelta(minutes=8)), context(NOW))
        finally:
            await sources.close()
        loki_tenant = loki.requests_to("/loki/api/v1/query_range")[0].headers.get("X-Scope-OrgID")
        tempo_tenant = tempo.requests_to("/api/search")[0].headers.get("X-Scope-OrgID")

    assert (loki_tenant, tempo_tenant) == ("logs-team", "traces-team")


def test_the_kubernetes_config_section_reaches_the_enricher_settings() -> None:
    config = load_config("kubernetes: {log_lines: 7, events_window_seconds: 60, call_timeout_seconds: 1.5}", {})
    expected = KubernetesSettings(log_lines=7, events_window_seconds=60.0, call_timeout_seconds=1.5)
    assert kubernetes_settings(config.kubernetes) == expected


def test_the_kubernetes_config_defaults_are_the_enricher_defaults() -> None:
    assert kubernetes_settings(KubernetesConfig()) == KubernetesSettings()
