"""`make bench`: every benchmark in one run, each printing its figure beside a reference,
then one table of all the figures."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

from bench import ingest, latency, rca, storm


def _machine() -> str:
    cpus = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        cpus = f"{len(names)} x {names[0]}" if names else cpus
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, Python {platform.python_version()}, {cpus}"


def main() -> None:
    print("KubeBot benchmarks (figures and their references are measured in this same run)")
    print(f"machine: {_machine()}")
    rows: list[tuple[str, str]] = []
    benchmarks: list[tuple[str, Callable[[], list[tuple[str, str]] | None]]] = [
        ("ingest", ingest.main),
        ("rca", rca.main),
        ("storm", storm.main),
        ("latency", latency.main),
    ]
    started = time.perf_counter()
    for name, run in benchmarks:
        print(f"\n== {name}")
        rows += run() or []
    print(f"\n== summary ({time.perf_counter() - started:.0f} s in all)")
    width = max((len(name) for name, _ in rows), default=0)
    print(f"| {'figure':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
