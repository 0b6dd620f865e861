"""Property: no GET of any path in the OpenAPI document, with any path parameter and any
query string, makes `kubebot serve` answer 500; and the answer is one the document lists."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.web.openapi import document
from tests.fakes.chaos_tools import storm_body
from tests.processes import KubebotProcess

DOCUMENT = document()
GET_PATHS = sorted(path for path, operations in DOCUMENT["paths"].items() if "get" in operations)
QUERY_NAMES = sorted(
    {
        parameter["name"]
        for operations in DOCUMENT["paths"].values()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query"
    }
)

texts = st.text(max_size=40) | st.sampled_from(["", "0", "-1", "1e3", "9" * 40, "null", "%", "\x00", "🔥", "../.."])
numbers = st.integers(min_value=-(2**70), max_value=2**70).map(str)
values = texts | numbers
query_names = st.sampled_from(QUERY_NAMES) | st.text(max_size=10)
queries = st.lists(st.tuples(query_names, values), max_size=6).map(
    lambda pairs: urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
)


raw_queries = st.text(alphabet=st.characters(codec="ascii", exclude_characters="# "), max_size=60)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str]:
    """(path template, request target with path parameters and query filled in)."""
    template = draw(st.sampled_from(GET_PATHS))
    path = template
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        value = draw(values | st.integers(1, 3).map(str))  # 1..3 name incidents that exist
        path = path[:start] + urllib.parse.quote(value, safe="") + path[end + 1 :]
    query = draw(queries | raw_queries.map(lambda q: urllib.parse.quote(q, safe="=&;%")))
    return template, f"{path}?{query}" if query else path


@contextmanager
def kubebot_with_incidents(tmp: Path, groups: tuple[str, ...]) -> Iterator[KubebotProcess]:
    """`kubebot serve` with one incident per group (ids 1, 2, ...), stopped afterwards."""
    process = KubebotProcess.create(tmp, {"notify": {"default_urls": [f"jsonl://{tmp}/pages.jsonl"]}})
    process.start()
    try:
        for group in groups:
            status, _ = _request(process.port, "POST", "/api/v1/alerts", json.dumps(storm_body(group, [group])))
            assert status == 200
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def kubebot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubebotProcess]:
    # A few incidents, so that ids and cursors lead somewhere.
    with kubebot_with_incidents(tmp_path_factory.mktemp("fuzz-api"), ("a", "b", "c")) as process:
        yield process


def _request(port: int, method: str, target: str, body: str | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, target, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _documented(template: str) -> set[int]:
    return {int(code) for code in DOCUMENT["paths"][template]["get"]["responses"] if code.isdigit()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests())
def test_no_get_with_any_query_string_answers_500(kubebot: KubebotProcess, request: tuple[str, str]) -> None:
    template, target = request
    status, _ = _request(kubebot.port, "GET", target)
    assert status != 500
    assert status in _documented(template) | {404}, f"{status} for GET {target} is not in the document"


@pytest.mark.parametrize("incident_id", [str(2**63), str(-(2**63) - 1), "9" * 40])
def test_an_incident_id_too_large_for_the_store_is_not_found(kubebot: KubebotProcess, incident_id: str) -> None:
    status, _ = _request(kubebot.port, "GET", f"/api/v1/incidents/{incident_id}")
    assert status == 404


def test_every_get_path_is_fuzzed() -> None:
    expected: set[Any] = {"/api/v1/incidents", "/api/v1/incidents/{id}", "/healthz", "/readyz", "/metrics"}
    assert expected <= set(GET_PATHS)
