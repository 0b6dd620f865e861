"""The online ranking stage: groups of one storm share their Prometheus signal queries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from enrichers.telemetry.factory import TelemetrySettings, build_telemetry
from receiver.models import Group, parse_webhook
from receiver.pipeline.graph import GraphCache
from receiver.pipeline.rank import RankStage
from receiver.pipeline.stage import Work
from tests.fakes.telemetry_http import Reply, serve

NOW = datetime.now(UTC).replace(microsecond=0)
MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": []}}


def _work(group: str, started: datetime) -> Work:
    body = {
        "alerts": [
            {"status": "firing", "labels": {"alertname": "X", "service": group}, "startsAt": started.isoformat()}
        ]
    }
    return Work(parse_webhook(body).alerts[0], Group(group, "kubebot", "firing"), started)


async def test_groups_whose_alerts_began_within_one_step_query_prometheus_once() -> None:
    async with serve({"/api/v1/query_range": Reply.json(MATRIX)}) as prometheus:
        telemetry = build_telemetry(TelemetrySettings(prometheus_url=prometheus.url))
        stage = RankStage(
            telemetry,
            GraphCache(None, None, (), refresh_seconds=60, timeout_seconds=1),
            window_seconds=1800,
            step_seconds=30,
            timeout_seconds=5,
            max_causes=5,
            clock=lambda: NOW,
        )
        try:
            started = NOW - timedelta(minutes=2)
            await asyncio.gather(*(stage.exec([_work(f"g{i}", started)]) for i in range(20)))
            first = len(prometheus.requests_to("/api/v1/query_range"))
            await stage.exec([_work("later", started - timedelta(minutes=10))])
            second = len(prometheus.requests_to("/api/v1/query_range"))
        finally:
            await telemetry.close()
    signals = len(telemetry.settings.signals)
    assert (first, second) == (signals, 2 * signals)
