"""Real processes for end-to-end tests: `kubebot serve`, Alertmanager, an SMTP server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import free_port

KUBEBOT = Path(sys.executable).parent / "kubebot"


def wait_http(
    url: str, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None
) -> None:
    """Until `url` answers 200; fails early (with the tail of `log`) if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def terminate(proc: subprocess.Popen[bytes], grace_seconds: float) -> None:
    """SIGTERM, and SIGKILL if the process has not exited within `grace_seconds`."""
    proc.terminate()
    try:
        proc.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class KubebotProcess:
    """`kubebot serve` as a user runs it, in its own working directory."""

    workdir: Path
    config: dict[str, Any]
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, workdir: Path, config: dict[str, Any]) -> KubebotProcess:
        port = free_port()
        config = {
            **config,
            "server": {"host": "127.0.0.1", "port": port, **config.get("server", {})},
        }
        config.setdefault("store", {"path": str(workdir / "kubebot.db")})
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        return cls(workdir=workdir, config=config, port=port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.workdir / "kubebot.log").open("ab")
        self.proc = subprocess.Popen(
            [str(KUBEBOT), "serve", "--config", str(self.workdir / "config.yaml")],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("KUBEBOT_")},
        )
        wait_http(f"{self.url}/readyz", proc=self.proc, log=self.workdir / "kubebot.log")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush; what was acknowledged must already be on disk."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            terminate(self.proc, grace_seconds=15)
        self.proc = None

    def log(self) -> str:
        return (self.workdir / "kubebot.log").read_text(errors="replace")


@dataclass
class AlertmanagerProcess:
    """Debian's prometheus-alertmanager on a free loopback port, clustering off."""

    workdir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary() -> str | None:
        return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

    @classmethod
    def start(cls, workdir: Path, webhook_url: str, bearer_token: str) -> AlertmanagerProcess:
        binary = cls.binary()
        assert binary is not None
        port = free_port()
        config = {
            "route": {
                "receiver": "kubebot",
                "group_by": ["alertname"],
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "kubebot",
                    "webhook_configs": [
                        {
                            "url": webhook_url,
                            "send_resolved": True,
                            "http_config": {"authorization": {"type": "Bearer", "credentials": bearer_token}},
                        }
                    ],
                }
            ],
        }
        (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        log = (workdir / "alertmanager.log").open("ab")
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        am = cls(workdir=workdir, port=port, proc=proc)
        wait_http(f"http://127.0.0.1:{port}/-/ready", proc=proc)
        return am

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        import json

        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, grace_seconds=10)
            self.proc = None


@dataclass
class PrometheusProcess:
    """Debian's Prometheus serving data backfilled from OpenMetrics text with promtool."""

    url: str
    proc: subprocess.Popen[bytes]

    @staticmethod
    def available() -> bool:
        return shutil.which("prometheus") is not None and shutil.which("promtool") is not None

    @classmethod
    def start(cls, workdir: Path, openmetrics: str) -> PrometheusProcess:
        (workdir / "data.om").write_text(openmetrics)
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(workdir / "data.om"), str(workdir / "tsdb")],
            check=True,
            capture_output=True,
            timeout=120,
        )
        (workdir / "prometheus.yml").write_text("global: {}\nscrape_configs: []\n")
        port = free_port()
        with (workdir / "prometheus.log").open("ab") as log:
            proc = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=100y",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/-/ready", timeout=30.0, proc=proc, log=workdir / "prometheus.log")
        except BaseException:
            terminate(proc, grace_seconds=10)
            raise
        return cls(url, proc)

    def stop(self) -> None:
        terminate(self.proc, grace_seconds=10)
