"""The `kubebot` command: serve, check-config, replay, insights, rca, rca-eval."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import yaml
from aiohttp import web

from receiver.app import create_app, open_store
from receiver.config import Config, ConfigError, check_environment, load_file
from receiver.insights import load_insights
from receiver.logs import configure_logging
from receiver.metrics import Metrics
from receiver.models import PayloadError, message_from_body
from receiver.pipeline.builder import build_pipeline
from receiver.pipeline.outcome import Outcome
from receiver.pipeline.sources import build_sources
from receiver.pipeline.stage import Work
from receiver.service.heap import collect_young_less_often, settle
from receiver.store.base import StoreUnavailable
from receiver.web import edge
from receiver.web.actions import MAX_DAYS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubebot", description="Alertmanager webhook receiver")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the receiver")
    serve.add_argument("--config", help="YAML config file (default: embedded defaults)")
    serve.add_argument("--log-level", default="info")
    check = commands.add_parser("check-config", help="validate a config file")
    check.add_argument("file")
    check.add_argument(
        "--skip-files",
        action="store_true",
        help="do not check the files and store directory it names (checking for another machine)",
    )
    replay = commands.add_parser("replay", help="run the pipeline on one webhook body, send nothing")
    replay.add_argument("payload")
    replay.add_argument("--config")
    rca = commands.add_parser("rca", help="rank root causes for one case directory")
    rca.add_argument("case_dir")
    rca_eval = commands.add_parser("rca-eval", help="evaluate ranking over labelled cases")
    rca_eval.add_argument("cases_dir")
    insights = commands.add_parser("insights", help="the noisiest alerts, with rules that would have saved pages")
    insights.add_argument("--days", type=_days, default=7, help="how far back to look (1..365, default 7)")
    insights.add_argument("--json", action="store_true", help="print the API's JSON")
    insights.add_argument("--config")
    args = parser.parse_args(argv)

    if args.command == "check-config":
        return _check_config(args.file, check_files=not args.skip_files)
    if args.command in ("rca", "rca-eval"):
        return _rca(args.command, Path(args.case_dir if args.command == "rca" else args.cases_dir))
    config = _load_or_exit(args.config)
    if args.command == "replay":
        configure_logging("warning")  # stdout carries the JSON answer; logs go to stderr
        return asyncio.run(_replay(config, Path(args.payload)))
    if args.command == "insights":
        configure_logging("warning")
        return asyncio.run(_insights(config, args.days, as_json=args.json))
    # The same checks as check-config: refuse to start rather than fail on first use.
    problems = check_environment(config)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"kubebot: not starting: {len(problems)} configuration problem(s)", file=sys.stderr)
        return 1
    configure_logging(args.log_level)
    app = create_app(config, sources_factory=build_sources, settle_heap=True)
    app.on_startup.append(_freeze_start_up_objects)
    # Not web.run_app: the edge's connection cap needs its own site (receiver/web/edge.py).
    edge.run(app, config.server, lambda line: print(line, file=sys.stderr))
    return 0


async def _freeze_start_up_objects(_: web.Application) -> None:
    """Everything built at start-up lives as long as the process: the cyclic GC need not
    walk it again. Without this, each collection walked the libraries' whole heap, and
    collections ran every few requests (9% of intake's CPU in `perf`). Young collections
    run less often too (receiver/service/heap.py says why)."""
    collect_young_less_often()
    settle()


def _rca(command: str, path: Path) -> int:
    from rca.cases import CaseError
    from rca.evaluate import run_eval, run_rca

    try:
        print(json.dumps(run_rca(path), indent=2) if command == "rca" else run_eval(path))
    except (CaseError, OSError) as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    return 0


def _days(text: str) -> int:
    value = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be an integer between 1 and {MAX_DAYS}")
    return value


async def _insights(config: Config, days: int, *, as_json: bool) -> int:
    """The same data as GET /api/v1/insights, read from the store serve would open."""
    try:
        store = await open_store(config.store)
    except (StoreUnavailable, ConfigError) as exc:
        problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
        print("\n".join(f"kubebot insights: {p}" for p in problems), file=sys.stderr)
        return 1
    try:
        rows = await load_insights(store, datetime.now(UTC), days)
    finally:
        await store.close()
    if as_json:
        print(json.dumps({"alerts": rows}, indent=2))
        return 0
    print(f"{'noise':>5}  {'fired':>5}  {'paged':>5}  {'<5m':>4}  alert")
    for row in rows:
        where = ", ".join(f"{k}={v}" for k, v in sorted(row["labels"].items()) if k != "alertname")
        print(
            f"{row['noise_score']:>5.2f}  {row['fired']:>5}  {row['paged']:>5}  {row['resolved_within_5m']:>4}  "
            f"{row['alertname']} {where}"
        )
        if row["suggestion"] is not None:
            rule = yaml.safe_dump({"suppression": {"rules": [row["suggestion"]["rule"]]}}, sort_keys=False)
            print(f"       would save {row['suggestion']['pages_saved']} page(s):")
            print("".join(f"         {line}\n" for line in rule.splitlines()), end="")
    return 0


def _load_or_exit(path: str | None) -> Config:
    try:
        return load_file(path, os.environ)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as exc:
        print(f"cannot read config {path}: {exc.strerror}", file=sys.stderr)
        raise SystemExit(1) from None


def _check_config(path: str, *, check_files: bool = True) -> int:
    try:
        config = load_file(path, os.environ)
        problems = check_environment(config) if check_files else []
    except ConfigError as exc:
        problems = exc.problems
    except OSError as exc:
        problems = [f"{path}: {exc.strerror}"]
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"{path}: ok")
    return 0


async def _replay(config: Config, payload_path: Path) -> int:
    try:
        # The same decoding and checks as intake, so replay refuses what intake would.
        message = message_from_body(await asyncio.to_thread(payload_path.read_bytes))
    except (OSError, PayloadError) as exc:
        field = f" ({exc.field})" if isinstance(exc, PayloadError) else ""
        print(f"cannot replay {payload_path}{field}: {exc}", file=sys.stderr)
        return 1
    sources = await build_sources(config)
    try:
        pipeline = build_pipeline(config, sources, Metrics(), lambda: datetime.now(UTC))
        now = datetime.now(UTC)
        results = await pipeline.run([Work(a, message.group, now) for a in message.alerts])
        # A replay cannot wait out grace periods: decide held alerts as if the hold had passed.
        held = [i for i, w in enumerate(results) if w.decision.action == "hold"]
        again = await pipeline.run([dataclasses.replace(results[i], held=True) for i in held])
        for i, work in zip(held, again, strict=True):
            results[i] = work
    finally:
        await sources.close()
    print(json.dumps([_replayed(w.outcome()) for w in results], indent=2))
    return 0


def _replayed(outcome: Outcome) -> dict[str, Any]:
    """The part of an outcome replay prints (DESIGN.md section 2): what was decided and why."""
    return {
        "fingerprint": outcome.fingerprint,
        "alertname": outcome.alertname,
        "decision": outcome.decision,
        "reason": outcome.reason,
        "rule": outcome.rule,
        "routes": list(outcome.routes),
        "root_causes": msgspec.to_builtins(outcome.root_causes),
        "enrichment": msgspec.to_builtins(outcome.enrichment, enc_hook=str),
    }


if __name__ == "__main__":
    raise SystemExit(main())
