"""Real API responses from ../shared/fixtures (a sibling of the repository checkout)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    raise RuntimeError(f"no repository root above {here}")


FIXTURES = _repo_root().parent / "shared" / "fixtures"


def fixture(relative: str) -> Any:
    """A fixture file, parsed fresh: tests may change their copy."""
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))
