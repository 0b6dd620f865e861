"""Schemathesis against `kubebot serve`'s own /api/v1/openapi.json: for every operation,
generated requests (valid and not) never get a 5xx, and every answer is one the document
lists, with the content type and body schema it promises."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from receiver.web.openapi import OPENAPI_PATH, document
from tests.processes import KubebotProcess
from tests.test_fuzz_api import _request, kubebot_with_incidents

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def kubebot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubebotProcess]:
    # Incidents 1 and 2, so that generated ids sometimes lead somewhere.
    with kubebot_with_incidents(tmp_path_factory.mktemp("schemathesis"), ("a", "b")) as process:
        yield process


# The document the app serves (checked below to be this one), loaded at collection time
# so that each operation is its own test; requests go to the real server.
schema = schemathesis.openapi.from_dict(document())


def test_the_served_document_is_the_one_tested(kubebot: KubebotProcess) -> None:
    status, body = _request(kubebot.port, "GET", OPENAPI_PATH)
    assert (status, json.loads(body)) == (200, document())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: schemathesis.Case[Any], kubebot: KubebotProcess) -> None:
    case.call_and_validate(base_url=kubebot.url, checks=CHECKS)
