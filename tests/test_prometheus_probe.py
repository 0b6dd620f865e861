"""The start-up check of the configured Prometheus, through prometheus-api-client, against
the real Prometheus the tests start and against a port nothing listens on."""

from __future__ import annotations

from pathlib import Path

from enrichers.telemetry.probe import prometheus_answers
from tests.conftest import free_port
from tests.processes import PrometheusProcess

ONE_SAMPLE = '# TYPE up gauge\nup{job="x"} 1 1795000000\n# EOF\n'


async def test_a_prometheus_that_answers_is_found(tmp_path: Path) -> None:
    prometheus = PrometheusProcess.start(tmp_path, ONE_SAMPLE)
    try:
        assert await prometheus_answers(prometheus.url, 5.0)
    finally:
        prometheus.stop()


async def test_a_url_where_nothing_listens_is_reported_not_raised() -> None:
    assert not await prometheus_answers(f"http://127.0.0.1:{free_port()}", 2.0)
