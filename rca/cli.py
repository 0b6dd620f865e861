"""Entry points for `kubebot rca` and `kubebot rca-eval` (wired in receiver/cli.py).

Also runnable alone: `python -m rca.cli rca CASE_DIR`, `python -m rca.cli rca-eval DIR`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rca.cases import CaseError
from rca.evaluate import run_eval, run_rca


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rca", description="offline root-cause ranking")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("rca", help="rank one case directory").add_argument("case_dir", type=Path)
    commands.add_parser("rca-eval", help="accuracy over labelled cases").add_argument("cases_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "rca":
            print(json.dumps(run_rca(args.case_dir), indent=2))
        else:
            print(run_eval(args.cases_dir))
    except CaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
