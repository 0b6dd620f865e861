"""kube-prometheus on real parts around `kubebot serve`, for one run over a `Cluster`:

- Debian's Prometheus evaluates the real kube-prometheus rules file (a test copy with
  every `for:` shortened to 0s: the backfilled history already holds the state), over an
  hour of history backfilled with promtool and, for "now", a small exporter that serves
  kube-state-metrics, the kubelets and the node-exporters as Prometheus scrapes them with
  kube-prometheus' jobs and target labels (honor_labels for kube-state-metrics and the
  kubelet, as its ServiceMonitors say); checkout's metrics targets refuse connections.
- Debian's Alertmanager routes with kube-prometheus-stack's default configuration:
  group_by [namespace], Watchdog and InfoInhibitor to the null receiver, its three
  inhibition rules; everything else to kubebot's webhook (times shortened).
- `kubebot serve` reads the fake Kubernetes API through a kubeconfig, and Prometheus.

`run_stack` returns what each part ended with: Prometheus' alerts, Alertmanager's, and
kubebot's incidents (API) and pages (its jsonl sink).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from tests.conftest import FIXTURES, free_port
from tests.fakes.kube_api import RESOURCE_OF_KIND, FakeKubeApi
from tests.fakes.kube_cluster import KSM_INSTANCE, NODE_IPS, READY_NODES, Cluster, Series, const
from tests.fakes.kube_exporters import (
    exposition,
    kube_state_metrics,
    kubelet_volume_stats,
    node_filesystems,
    openmetrics,
)
from tests.processes import AlertmanagerProcess, KubebotProcess, terminate, wait_http

RULES = FIXTURES / "prometheus" / "kube-prometheus" / "rules.yaml"
TOKEN = "kube-prometheus-e2e-token"
HISTORY_STEP = 60.0
EXTERNAL_LABELS = {"prometheus": "monitoring/k8s", "prometheus_replica": "prometheus-k8s-0"}
# Resources the fake API serves beyond those it names itself.
EXTRA_RESOURCES = {
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "PersistentVolume": "persistentvolumes",
    "StorageClass": "storageclasses",
}


CONTROL_PLANE = {
    "apiserver": {"instance": "10.0.0.10:6443", "namespace": "default", "service": "kubernetes", "endpoint": "https"},
    "kube-scheduler": {
        "instance": "10.0.0.10:10259",
        "namespace": "kube-system",
        "service": "kube-scheduler",
        "endpoint": "https-metrics",
    },
    "kube-controller-manager": {
        "instance": "10.0.0.10:10257",
        "namespace": "kube-system",
        "service": "kube-controller-manager",
        "endpoint": "https-metrics",
    },
}


@dataclass(frozen=True)
class Target:
    """A scrape target: what it exposes, and the labels the scrape adds."""

    job: str
    key: str  # which of the exporter's series sets (?target=key)
    labels: dict[str, str]
    series: Callable[[], list[Series]]
    honor_labels: bool = True
    refuses: bool = False  # its port is closed: up == 0

    def stored_labels(self) -> dict[str, str]:
        return {"job": self.job, **self.labels}


def targets(cluster: Cluster) -> list[Target]:
    found = [
        Target(
            "kube-state-metrics",
            "ksm",
            {"instance": KSM_INSTANCE, "container": "kube-rbac-proxy-main"},
            functools.partial(kube_state_metrics, cluster),
        )
    ]
    for i, node in enumerate(READY_NODES):
        found.append(
            Target(
                "kubelet",
                f"kubelet-{node}",
                {
                    "instance": f"{NODE_IPS[node]}:10250",
                    "node": node,
                    "metrics_path": "/metrics",
                    "service": "kubelet",
                    "endpoint": "https-metrics",
                    "namespace": "kube-system",
                },
                functools.partial(kubelet_volume_stats, cluster, node),
            )
        )
        found.append(
            Target(
                "node-exporter",
                f"node-{node}",
                {
                    "instance": node,
                    "namespace": "monitoring",
                    "pod": f"node-exporter-{'7xk2q' if i else 'b9m4t'}",
                    "service": "node-exporter",
                    "container": "kube-rbac-proxy",
                    "endpoint": "https",
                },
                functools.partial(node_filesystems, cluster, node),
                honor_labels=False,
            )
        )
    # The control plane answers (else absent(up{job=...}) pages KubeAPIDown and friends).
    for job, labels in CONTROL_PLANE.items():
        found.append(Target(job, job, labels, list))
    for pod in ("checkout-6f7c9d8b5-2xq7w", "checkout-6f7c9d8b5-9kz4m"):
        ip = cluster.find("Pod", pod)["status"]["podIP"]
        found.append(
            Target(
                "checkout",
                pod,
                {
                    "instance": f"{ip}:9090",
                    "namespace": "shop",
                    "service": "checkout",
                    "pod": pod,
                    "container": "checkout",
                    "endpoint": "metrics",
                },
                list,
                refuses=True,
            )
        )
    return found


def fast_rules(text: str) -> str:
    """The rules file with every `for:` at 0s; everything else as upstream wrote it."""
    return re.sub(r"(?m)^(\s+)for: \S+$", r"\1for: 0s", text)


def kube_api_for(cluster: Cluster) -> FakeKubeApi:
    fake = FakeKubeApi()
    for obj in cluster.objects:
        resource = RESOURCE_OF_KIND.get(obj["kind"]) or EXTRA_RESOURCES[obj["kind"]]
        fake.objects.setdefault(resource, []).append(obj)
    fake.logs.update(cluster.logs)
    return fake


def kubeconfig(server: str, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {"server": server}}],
        "users": [{"name": "kubebot", "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "kubebot"}}],
        "current-context": "e2e",
    }


def prometheus_config(exporter_port: int, alertmanager_port: int, all_targets: list[Target]) -> dict[str, Any]:
    jobs: dict[str, dict[str, Any]] = {}
    for target in all_targets:
        job = jobs.setdefault(
            target.job,
            {
                "job_name": target.job,
                "honor_labels": target.honor_labels,
                "static_configs": [],
            },
        )
        address = f"127.0.0.1:{free_port() if target.refuses else exporter_port}"
        job["static_configs"].append({"targets": [address], "labels": {**target.labels, "__param_target": target.key}})
    return {
        "global": {
            "scrape_interval": "2s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
            "external_labels": EXTERNAL_LABELS,
        },
        "alerting": {
            "alertmanagers": [
                {"api_version": "v2", "static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}
            ]
        },
        "rule_files": ["rules.yaml"],
        "scrape_configs": list(jobs.values()),
    }


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """kube-prometheus-stack's default (values.yaml), kubebot as the default receiver."""
    return {
        "global": {"resolve_timeout": "5m"},
        "inhibit_rules": [
            {
                "target_matchers": ["severity =~ warning|info"],
                "source_matchers": ["severity = critical"],
                "equal": ["namespace", "alertname"],
            },
            {
                "target_matchers": ["severity = info"],
                "source_matchers": ["severity = warning"],
                "equal": ["namespace", "alertname"],
            },
            {
                "target_matchers": ["severity = info"],
                "source_matchers": ["alertname = InfoInhibitor"],
                "equal": ["namespace"],
            },
            {"target_matchers": ["alertname = InfoInhibitor"]},
        ],
        "route": {
            "group_by": ["namespace"],
            # Shortened from 30s/5m to keep the test quick, but not below what inhibition
            # needs: Prometheus sends a warning and its critical in separate POSTs, and a
            # group that flushed before both arrived can page the warning alone. 5 s of
            # group_wait holds a new group's first flush until both are in.
            "group_wait": "5s",
            "group_interval": "3s",
            "repeat_interval": "12h",
            "receiver": "kubebot",
            "routes": [
                {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
                {"receiver": "null", "matchers": ['alertname = "InfoInhibitor"']},
            ],
        },
        "receivers": [
            {"name": "null"},
            {
                "name": "kubebot",
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}},
                    }
                ],
            },
        ],
    }


@dataclass
class StackResult:
    prometheus_alerts: list[dict[str, Any]] = field(default_factory=list)  # /api/v1/alerts
    alertmanager_alerts: list[dict[str, Any]] = field(default_factory=list)  # /api/v2/alerts
    incidents: list[dict[str, Any]] = field(default_factory=list)  # /api/v1/incidents/{id}, each
    pages: list[dict[str, Any]] = field(default_factory=list)  # the jsonl sink
    logs: dict[str, str] = field(default_factory=dict)

    def received(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(incident, alert) for every alert kubebot received."""
        return [(i, a) for i in self.incidents for a in i["alerts"]]


class Exporter:
    """The "now" of every target, at /metrics?target=KEY, in the text format."""

    def __init__(self, all_targets: list[Target]) -> None:
        self._series = {t.key: t.series() for t in all_targets if not t.refuses}
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        async def metrics(request: web.Request) -> web.Response:
            series = self._series.get(request.query.get("target", ""))
            if series is None:
                return web.Response(status=404)
            return web.Response(
                text=exposition(series, time.time()),
                content_type="text/plain",
                charset="utf-8",
            )

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def backfill(cluster: Cluster, all_targets: list[Target], end: float) -> str:
    history: list[tuple[list[Series], Mapping[str, str], bool]] = []
    for target in all_targets:
        series = [] if target.refuses else target.series()
        up = Series("up", {}, const(0.0 if target.refuses else 1.0))
        history.append(([*series, up], target.stored_labels(), target.honor_labels))
    return openmetrics(history, end, HISTORY_STEP)


def _get_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _start(binary: str, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([binary, *args], stdout=out, stderr=subprocess.STDOUT)


async def run_stack(
    workdir: Path, cluster: Cluster, settled: Callable[[StackResult], bool], timeout: float
) -> StackResult:
    """Start everything, wait (polling, bounded by `timeout`) until `settled(result)` holds,
    stop everything, and return the last result seen."""
    all_targets = targets(cluster)
    now = time.time()
    (workdir / "history.om").write_text(backfill(cluster, all_targets, now - 5))
    (workdir / "rules.yaml").write_text(fast_rules(RULES.read_text(encoding="utf-8")))
    await asyncio.to_thread(
        subprocess.run,
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(workdir / "history.om"), str(workdir / "tsdb")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    kube = kube_api_for(cluster)
    exporter = Exporter(all_targets)
    procs: list[subprocess.Popen[bytes]] = []
    kubebot: KubebotProcess | None = None
    result = StackResult()
    try:
        kube_url = await kube.start()
        await exporter.start()
        (workdir / "kubeconfig").write_text(yaml.safe_dump(kubeconfig(kube_url, TOKEN)))
        (workdir / "token").write_text(TOKEN)
        prometheus_port, alertmanager_port = free_port(), free_port()
        prometheus_url = f"http://127.0.0.1:{prometheus_port}"
        kubebot = KubebotProcess.create(
            workdir,
            {
                "auth": {"bearer_token_file": str(workdir / "token")},
                "kubernetes": {
                    "mode": "kubeconfig",
                    "kubeconfig": str(workdir / "kubeconfig"),
                    "events_window_seconds": 7200,
                },
                "prometheus": {"url": prometheus_url},
                "enrichment": {"timeout_seconds": 10},
                "notify": {"default_urls": [f"jsonl://{workdir / 'pages.jsonl'}"]},
            },
        )
        await asyncio.to_thread(kubebot.start)
        (workdir / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(f"{kubebot.url}/api/v1/alerts")))
        am = _start(
            AlertmanagerProcess.binary() or "prometheus-alertmanager",
            [
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                "--cluster.listen-address=",
            ],
            workdir / "alertmanager.log",
        )
        procs.append(am)
        await asyncio.to_thread(
            wait_http, f"http://127.0.0.1:{alertmanager_port}/-/ready", 30.0, am, workdir / "alertmanager.log"
        )
        (workdir / "prometheus.yml").write_text(
            yaml.safe_dump(prometheus_config(exporter.port, alertmanager_port, all_targets))
        )
        prometheus = _start(
            "prometheus",
            [
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--storage.tsdb.retention.time=100y",
                "--rules.alert.resend-delay=1s",
            ],
            workdir / "prometheus.log",
        )
        procs.append(prometheus)
        await asyncio.to_thread(wait_http, f"{prometheus_url}/-/ready", 30.0, prometheus, workdir / "prometheus.log")
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = await asyncio.to_thread(
                _observe, prometheus_url, f"http://127.0.0.1:{alertmanager_port}", kubebot.url, workdir
            )
            if settled(result) or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        for proc in reversed(procs):
            await asyncio.to_thread(terminate, proc, 10)
        if kubebot is not None:
            await asyncio.to_thread(kubebot.stop)
        await exporter.stop()
        await kube.close()
    result.logs = {
        name: (workdir / f"{name}.log").read_text(errors="replace")[-4000:]
        for name in ("kubebot", "prometheus", "alertmanager")
        if (workdir / f"{name}.log").exists()
    }
    return result


def _observe(prometheus_url: str, alertmanager_url: str, kubebot_url: str, workdir: Path) -> StackResult:
    listed = _get_json(f"{kubebot_url}/api/v1/incidents?limit=500")["incidents"]
    pages_file = workdir / "pages.jsonl"
    return StackResult(
        prometheus_alerts=_get_json(f"{prometheus_url}/api/v1/alerts")["data"]["alerts"],
        alertmanager_alerts=_get_json(f"{alertmanager_url}/api/v2/alerts"),
        incidents=[_get_json(f"{kubebot_url}/api/v1/incidents/{i['id']}") for i in listed],
        pages=[json.loads(line) for line in pages_file.read_text().splitlines() if line] if pages_file.exists() else [],
    )
