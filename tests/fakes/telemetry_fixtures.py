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


JAEGER_ERROR_TRACE = "jaeger/jaeger_trace_object_with_error_tag.json"
JAEGER_ENVELOPE = "jaeger/jaeger_api_traces_response_envelope.json"
TEMPO_SEARCH = "tempo/tempo_api_search_response.json"
TEMPO_SEARCH_AMBIENT = "tempo/tempo_api_search_response_ambient.json"
TEMPO_TRACE = "tempo/tempo_api_traces_by_id_response.json"
LOKI_STREAMS = "loki/loki_query_range_streams_response.json"
LOKI_MATRIX = "loki/loki_query_range_matrix_response.json"
PROM_MATRIX = "prometheus/prometheus_query_range_matrix_response.json"


def jaeger_envelope_with_error_trace() -> dict[str, Any]:
    """The real /api/traces envelope carrying the real error-tagged trace object."""
    envelope: dict[str, Any] = fixture(JAEGER_ENVELOPE)
    envelope["data"] = [fixture(JAEGER_ERROR_TRACE)]
    return envelope
