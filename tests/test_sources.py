"""Sources built from the config: each backend gets its own settings."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

import yaml

from enrichers.base import run_enrichers
from enrichers.kubernetes.enricher import KubernetesSettings
from enrichers.telemetry.jaeger import JaegerSettings
from enrichers.telemetry.loki import LokiSettings
from enrichers.telemetry.tempo import TempoSettings
from receiver.config import KubernetesConfig
from receiver.config import load as load_config
from receiver.pipeline.sources import build_sources, kubernetes_settings, telemetry_settings
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


def test_every_kubernetes_key_the_enricher_reads_reaches_its_settings() -> None:
    # The config section takes its defaults from KubernetesSettings; what can still go
    # wrong is a key that is never handed on, or handed to the wrong setting.
    shared = {f.name for f in fields(KubernetesConfig)} & {f.name for f in fields(KubernetesSettings)}
    defaults = {name: getattr(KubernetesSettings(), name) for name in shared}
    changed = {
        name: (not value) if isinstance(value, bool) else value + index
        for index, (name, value) in enumerate(sorted(defaults.items()), 1)
    }
    config = load_config(yaml.safe_dump({"kubernetes": changed}), {})
    settings = kubernetes_settings(config.kubernetes)
    assert len(shared) == 6
    assert {name: getattr(settings, name) for name in shared} == changed


def test_every_traces_and_logs_key_reaches_its_backends_settings() -> None:
    config = load_config(
        """
traces:
  jaeger: {url: "http://jaeger", ui_url: "https://jaeger.example"}
  tempo: {url: "http://tempo", trace_url_template: "https://grafana/{trace_id}", tenant: traces-team}
logs: {loki: {url: "http://loki", tenant: logs-team}}
prometheus: {url: "http://prometheus", window_seconds: 600}
""",
        {},
    )
    settings = telemetry_settings(config)
    assert settings.jaeger == JaegerSettings("http://jaeger", ui_url="https://jaeger.example")
    assert settings.tempo == TempoSettings(
        "http://tempo", trace_url_template="https://grafana/{trace_id}", tenant="traces-team"
    )
    assert settings.loki == LokiSettings("http://loki", tenant="logs-team")
    assert (settings.prometheus_url, settings.window) == ("http://prometheus", timedelta(minutes=10))
