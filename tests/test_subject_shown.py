"""The subject where people see it: the page headline, the incident title, the API and the
dashboard name the object the alert is about, never the exporter that reported it.
Through the whole app, without a cluster: the subject comes from the labels alone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials, create_app
from receiver.config import Config, NotifyConfig, StoreConfig
from tests.test_suppress_links import KUBELET  # the kubelet's scrape labels on worker-3

# kube-prometheus (jsonnet) serves kube-state-metrics through kube-rbac-proxy on :8443.
KSM = {"job": "kube-state-metrics", "instance": "10.244.1.12:8443", "container": "kube-rbac-proxy-main"}
NODE_EXPORTER = {
    "job": "node-exporter",
    "instance": "worker-2",
    "endpoint": "http-metrics",
    "namespace": "monitoring",
    "pod": "kube-prometheus-stack-prometheus-node-exporter-x7k2p",
    "container": "node-exporter",
}
HPA = {**KSM, "alertname": "KubeHpaMaxedOut", "namespace": "shop", "horizontalpodautoscaler": "frontend"}
PVC = {
    **KUBELET,
    "alertname": "KubePersistentVolumeFillingUp",
    "namespace": "shop",
    "persistentvolumeclaim": "data-db-0",
}
FILESYSTEM = {
    **NODE_EXPORTER,
    "alertname": "NodeFilesystemAlmostOutOfSpace",
    "device": "/dev/sda1",
    "fstype": "ext4",
    "mountpoint": "/var/lib/containerd",
}


def webhook(group_key: str, *alerts: dict[str, str]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": group_key,
        "receiver": "kubebot",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {**labels, "severity": "warning"},
                "startsAt": "2026-11-25T10:00:00Z",
                "fingerprint": f"{group_key}-{i}",
            }
            for i, labels in enumerate(alerts)
        ],
    }


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    config = Config(
        store=StoreConfig(path=str(tmp_path / "kb.db")),
        notify=NotifyConfig(default_urls=(f"jsonl://{tmp_path}/pages.jsonl",)),
    )
    async with TestClient(TestServer(create_app(config, credentials=Credentials()))) as c:
        yield c


async def post_and_wait(client: TestClient[Any, Any], bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Post each body, then wait until all their alerts are folded into incidents."""
    for body in bodies:
        assert (await client.post("/api/v1/alerts", json=body)).status == 200
    expected = sum(len(body["alerts"]) for body in bodies)
    for _ in range(300):
        listed = await (await client.get("/api/v1/incidents")).json()
        if sum(i["alert_count"] for i in listed["incidents"]) >= expected:
            return list(listed["incidents"])
        await asyncio.sleep(0.02)
    raise AssertionError("incidents did not appear")


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def pages(path: Path, count: int) -> list[dict[str, Any]]:
    for _ in range(300):
        lines = await asyncio.to_thread(_lines, path)
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} pages did not arrive")


async def test_headline_title_and_api_name_the_hpa_the_claim_and_the_node(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    incidents = await post_and_wait(client, [webhook("hpa", HPA), webhook("pvc", PVC), webhook("fs", FILESYSTEM)])
    sent = await pages(tmp_path / "pages.jsonl", 3)

    assert sorted(p["title"] for p in sent) == [
        "[FIRING] KubeHpaMaxedOut HorizontalPodAutoscaler shop/frontend (warning)",
        "[FIRING] KubePersistentVolumeFillingUp PersistentVolumeClaim shop/data-db-0 (warning)",
        "[FIRING] NodeFilesystemAlmostOutOfSpace Node worker-2 (warning)",
    ]
    by_title = {i["title"]: i for i in incidents}
    assert sorted(by_title) == [
        "KubeHpaMaxedOut HorizontalPodAutoscaler shop/frontend",
        "KubePersistentVolumeFillingUp PersistentVolumeClaim shop/data-db-0",
        "NodeFilesystemAlmostOutOfSpace Node worker-2",
    ]
    hpa = by_title["KubeHpaMaxedOut HorizontalPodAutoscaler shop/frontend"]
    node = by_title["NodeFilesystemAlmostOutOfSpace Node worker-2"]
    assert hpa["subject"] == {"kind": "HorizontalPodAutoscaler", "namespace": "shop", "name": "frontend"}
    assert (node["subject"], node["namespace"]) == ({"kind": "Node", "namespace": None, "name": "worker-2"}, "")
    detail = await (await client.get(f"/api/v1/incidents/{hpa['id']}")).json()
    assert [a["subject"] for a in detail["alerts"]] == [hpa["subject"]]
    assert "10.244.1.12" not in hpa["title"] + json.dumps(hpa["subject"])


async def test_the_dashboard_shows_the_subject(client: TestClient[Any, Any]) -> None:
    [incident] = await post_and_wait(client, [webhook("pvc", PVC)])
    html = await (await client.get(f"/incidents/{incident['id']}")).text()
    assert '<dd class="subject">PersistentVolumeClaim shop/data-db-0</dd>' in html


async def test_a_filling_volume_folds_nothing_on_its_node(client: TestClient[Any, Any]) -> None:
    """The issue's case through the whole pipeline: nothing is folded under the claim."""
    throttling = {"alertname": "CPUThrottlingHigh", "namespace": "shop", "container": "app", "node": "worker-3"}
    await post_and_wait(
        client,
        [
            webhook(
                "shop",
                PVC,
                {**KSM, "alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "api-7d9f-x2"},
                {**KSM, "alertname": "KubeJobFailed", "namespace": "shop", "job_name": "backup-29012"},
                {**KSM, "alertname": "KubeDeploymentReplicasMismatch", "namespace": "shop", "deployment": "web"},
                {**throttling, "pod": "api-7d9f-x2"},
                {**throttling, "pod": "web-5c4f-abcde"},
            )
        ],
    )
    [incident] = (await (await client.get("/api/v1/incidents")).json())["incidents"]
    detail = await (await client.get(f"/api/v1/incidents/{incident['id']}")).json()
    assert [(d["decision"], d["reason"]) for d in detail["decisions"]] == [("notify", None)] * 6
