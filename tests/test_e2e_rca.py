"""Online root-cause ranking end to end: a real fault-injection case in a real Prometheus,
a webhook for a symptom alert, and the incident's first cause is the injected service."""

from __future__ import annotations

import asyncio
import csv
import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials, create_app
from receiver.config import load
from receiver.pipeline.sources import build_sources
from tests.conftest import SHARED
from tests.processes import PrometheusProcess

CASE = SHARED / "rca-data" / "cases" / "online-boutique-2022-08-22-17-productcatalogservice-cpu_consumed"
pytestmark = [
    pytest.mark.skipif(not PrometheusProcess.available(), reason="Debian prometheus not installed"),
    pytest.mark.skipif(not CASE.is_dir(), reason="shared/rca-data not present"),
]
STEP = 60


def case_as_openmetrics(case: Path, shift: int) -> tuple[str, list[str]]:
    """Each `<service>_<metric>` column becomes `case_<metric>{service="<service>"}`."""
    with (case / "data.csv").open() as f:
        rows = list(csv.DictReader(f))
    series: dict[tuple[str, str], list[str]] = {}
    for column in rows[0]:
        if column == "time":
            continue
        service, metric = column.split("_", 1)
        lines = series.setdefault((metric, service), [])
        for row in rows:
            value = row[column]
            if value and math.isfinite(float(value)):
                lines.append(f'case_{metric}{{service="{service}"}} {value} {int(float(row["time"])) + shift}')
    metrics = sorted({metric for metric, _ in series})
    text = []
    for metric in metrics:
        text.append(f"# TYPE case_{metric} gauge")
        for (m, _), lines in sorted(series.items()):
            if m == metric:
                text.extend(lines)
    return "\n".join(text) + "\n# EOF\n", metrics


async def test_symptom_alert_incident_names_the_injected_service_first(tmp_path: Path) -> None:
    label = json.loads((CASE / "label.json").read_text())
    inject = int((CASE / "inject_time.txt").read_text().strip())
    with (CASE / "data.csv").open() as f:
        last = max(int(float(r["time"])) for r in csv.DictReader(f))
    now = int(time.time()) // STEP * STEP
    shift = now - last  # the case's last row is "now"
    text, metrics = case_as_openmetrics(CASE, shift)
    prometheus = await asyncio.to_thread(PrometheusProcess.start, tmp_path, text)
    edges = [line.split(",") for line in (CASE / "graph.csv").read_text().splitlines()[1:] if line]
    config = load(
        json.dumps(
            {
                "store": {"path": str(tmp_path / "kb.db")},
                "kubernetes": {"mode": "off"},
                "prometheus": {"url": prometheus.url, "window_seconds": 1800},
                "enrichment": {"timeout_seconds": 20},
                "graph": {"static_edges": edges},
                "rca": {"step_seconds": STEP, "signals": [{"name": m, "query": f"case_{m}"} for m in metrics]},
                "notify": {"default_urls": [f"jsonl://{tmp_path}/n.jsonl"]},
            }
        ),
        {},
    )
    starts_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(inject + shift))
    webhook: dict[str, Any] = {
        "version": "4",
        "groupKey": '{}:{alertname="FrontendLatencyHigh"}',
        "status": "firing",
        "receiver": "kubebot",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "FrontendLatencyHigh", "service": "frontend", "severity": "critical"},
                "annotations": {"summary": "frontend p99 latency is high"},
                "startsAt": starts_at,
                "fingerprint": "e2e-rca",
            }
        ],
    }
    app = create_app(config, credentials=Credentials(), sources_factory=build_sources)
    try:
        async with TestClient(TestServer(app)) as client:
            assert (await client.post("/api/v1/alerts", json=webhook)).status == 200
            detail: dict[str, Any] = {}
            for _ in range(300):
                listed = await (await client.get("/api/v1/incidents")).json()
                if listed["incidents"]:
                    detail = await (await client.get(f"/api/v1/incidents/{listed['incidents'][0]['id']}")).json()
                    if any(n["state"] == "delivered" for n in detail["notifications"]):
                        break
                await asyncio.sleep(0.1)
    finally:
        await asyncio.to_thread(prometheus.stop)
    causes = detail["root_causes"]
    assert causes, detail
    assert causes[0]["service"] == label["service"]
    assert causes[0]["evidence"]
    notification = json.loads((tmp_path / "n.jsonl").read_text().splitlines()[0])
    assert f"1. {label['service']}" in notification["message"]
