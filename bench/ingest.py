"""Ingest throughput: `kubebot serve` with durable storage against a bare aiohttp handler.

wrk (Debian) posts 20-alert Alertmanager groups, every request with new alerts so that
each one is really written; the bare handler parses the same JSON and answers 200. Both
run in the same session on the same machine, in five rounds taken in turn; the figure
that matters is the median ratio. wrk keeps to one CPU of its own; the servers are not
pinned.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import urllib.request
from pathlib import Path

from bench.figures import print_figures
from tests.conftest import free_port
from tests.processes import KubebotProcess, wait_http

DURATION_SECONDS = 4
ROUNDS = 5
CONNECTIONS = 32
THREADS = 2

BARE_SERVER = textwrap.dedent(
    """
    import json, sys
    from aiohttp import web

    async def handle(request):
        json.loads(await request.read())
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=10 * 1024 * 1024)
    app.router.add_post("/api/v1/alerts", handle)
    app.router.add_get("/readyz", lambda r: web.json_response({}))
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
    """
)

# Every request carries 20 alerts with fingerprints no other request has.
WRK_SCRIPT = textwrap.dedent(
    """
    local counter = 0
    local thread_id = 0
    local next_thread = 0
    function setup(thread)
      next_thread = next_thread + 1
      thread:set("thread_id", next_thread)
    end
    local template = %s
    request = function()
      counter = counter + 1
      local body = string.gsub(template, "FPID", thread_id .. "x" .. counter)
      return wrk.format("POST", "/api/v1/alerts", {["Content-Type"] = "application/json"}, body)
    end
    """
)


def group_body() -> str:
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": "KubePodCrashLooping",
                "namespace": "shop",
                "pod": f"checkout-{i}",
                "container": "app",
                "severity": "warning",
            },
            "annotations": {"summary": "Pod is crash looping.", "description": f"Pod shop/checkout-{i} restarts"},
            "startsAt": "2026-11-25T14:57:37.786626674Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph?g0.expr=up",
            "fingerprint": f"FPID-{i}",
        }
        for i in range(20)
    ]
    return json.dumps(
        {
            "version": "4",
            "groupKey": '{}:{alertname="KubePodCrashLooping"}',
            "status": "firing",
            "receiver": "kubebot",
            "groupLabels": {"alertname": "KubePodCrashLooping"},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://am",
            "truncatedAlerts": 0,
            "alerts": alerts,
        }
    )


def wrk_on_its_own_cpu() -> list[str]:
    """On a machine with two CPUs or more, wrk is kept to the last one (taskset) and the
    servers run as they would in production, scheduled by the OS. Unpinned, wrk's threads
    took turns with the server's event loop on every CPU and measured their own noise."""
    cpus = os.cpu_count() or 1
    if shutil.which("taskset") is None or cpus < 2:
        return []
    return ["taskset", "-c", str(cpus - 1)]


def run_wrk(url: str, script: Path) -> tuple[float, float]:
    """Returns (requests per second, p99 latency in ms) from wrk's own report."""
    done = subprocess.run(
        [
            *wrk_on_its_own_cpu(),
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{DURATION_SECONDS}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    p99_value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", done.stdout).groups()  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if non_2xx:
        raise RuntimeError(f"{non_2xx.group(1)} requests failed against {url}")
    return rps, float(p99_value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def median_run(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def processed_alerts(url: str) -> int:
    """How many alerts the workers got through while intake was under load."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:  # loopback
        text = response.read().decode()
    found = re.search(r"^kubebot_processing_seconds_count ([\d.e+]+)$", text, re.MULTILINE)
    return int(float(found.group(1))) if found else 0


def main() -> list[tuple[str, str]]:
    if shutil.which("wrk") is None:
        print("ingest: skipped, wrk not installed (apt-get install wrk)")
        return []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        script = work / "post.lua"
        script.write_text(WRK_SCRIPT % json.dumps(group_body()))
        bare_port = free_port()
        (work / "bare.py").write_text(BARE_SERVER)
        bare = subprocess.Popen([sys.executable, str(work / "bare.py"), str(bare_port)])
        kubebot = KubebotProcess.create(
            work,
            {
                "notify": {"default_urls": [f"jsonl://{work}/notifications.jsonl"]},
                "store": {"path": str(work / "kb.db"), "max_pending": 10_000_000},
            },
        )
        try:
            wait_http(f"http://127.0.0.1:{bare_port}/readyz")
            kubebot.start()
            assert kubebot.proc is not None
            bare_runs, kubebot_runs = [], []
            # Rounds taken in turn, so a change in the machine's load hits both alike. While
            # the bare handler is measured, kubebot is stopped (SIGSTOP): its workers would
            # otherwise spend the CPU on the backlog the previous round left.
            for _ in range(ROUNDS):
                kubebot.proc.send_signal(signal.SIGSTOP)
                bare_runs.append(run_wrk(f"http://127.0.0.1:{bare_port}", script))
                kubebot.proc.send_signal(signal.SIGCONT)
                kubebot_runs.append(run_wrk(kubebot.url, script))
            processed = processed_alerts(kubebot.url)
        finally:
            bare.terminate()
            bare.wait(10)
            kubebot.stop()
    bare_rps, bare_p99 = median_run(bare_runs)
    rps, p99 = median_run(kubebot_runs)
    ratio = statistics.median(k[0] / b[0] for k, b in zip(kubebot_runs, bare_runs, strict=True))
    posted = sum(r[0] for r in kubebot_runs) * DURATION_SECONDS * 20
    rows = [
        ("ingest bare aiohttp handler (req/s, p99)", f"{bare_rps:,.0f} req/s, p99 {bare_p99:.1f} ms"),
        ("ingest kubebot, durable SQLite (req/s, p99)", f"{rps:,.0f} req/s, p99 {p99:.1f} ms"),
        ("ingest ratio kubebot / bare (goal >= 0.5)", f"{ratio:.2f} (median of {ROUNDS} rounds)"),
        ("ingest alerts processed meanwhile (workers)", f"{processed:,} of {posted:,.0f}"),
    ]
    return print_figures(rows, width=50)


if __name__ == "__main__":
    main()
