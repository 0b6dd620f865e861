"""No secret reaches a log line: KubeBot's own events and every library logger pass one redaction."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import Credentials, create_app
from receiver.config import Config, StoreConfig
from receiver.logs import QUIET_LOGGERS, configure_logging
from receiver.pipeline.stage import Message
from receiver.redact import register_secret
from receiver.service.channels import AppriseChannel, DeliveryError
from tests.conftest import free_port

TOKEN = "s3cr3tTOKEN42"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The handler configure_logging installs, pointed at a buffer; logging restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in QUIET_LOGGERS})
    saved_structlog = structlog.get_config()
    buffer = io.StringIO()
    configure_logging("info", stream=buffer)
    yield buffer
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)
    structlog.configure(**saved_structlog)


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("json://user:hunter2@127.0.0.1:{port}/x", "hunter2"),  # refused connection
        ("json:/user:hunter2@127.0.0.1:{port}/x", "hunter2"),  # one slash short: "Unsupported URL"
        ("jsno://user:hunter2@127.0.0.1:{port}/x", "hunter2"),  # typo'd scheme
        ("slack://hunter2sLackToken", "hunter2sLackToken"),  # Slack token Apprise cannot load
        ("mailto://user:hunter2@127.0.0.1:{port}", "hunter2"),
    ],
)
async def test_a_failing_apprise_send_never_logs_the_channel_secret(
    captured: io.StringIO, url: str, secret: str
) -> None:
    channel = AppriseChannel(ThreadPoolExecutor(max_workers=1), timeout_seconds=30)
    with pytest.raises(DeliveryError):
        await channel.send(url.format(port=free_port()), Message("t", "b", "failure"))
    assert "apprise" in captured.getvalue()  # Apprise did log about it
    assert secret not in captured.getvalue()


async def _raw_request(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


@pytest.mark.parametrize(
    "header",
    [
        b"Authorization: Bearer " + TOKEN.encode() + b"\x01",  # bad character in the value
        b"Authorization Bearer " + TOKEN.encode(),  # no colon
        b"Authorization: Bearer " + TOKEN.encode() + b"A" * 9000,  # longer than aiohttp's limit
        b"X-Forward-Auth: Basic " + TOKEN.encode() + b"\x7f",
    ],
)
async def test_a_malformed_header_line_never_logs_its_token(
    captured: io.StringIO, tmp_path: Path, header: bytes
) -> None:
    config = Config(store=StoreConfig(path=str(tmp_path / "kb.db")))
    app = create_app(config, credentials=Credentials(bearer_token="other-token"))
    async with TestClient(TestServer(app)) as client:
        request = b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nContent-Length: 0\r\n\r\n"
        answer = await _raw_request(client.port or 0, request)
    assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400")
    assert "malformed request" in captured.getvalue()
    assert TOKEN not in captured.getvalue()


def test_a_structlog_event_with_a_channel_url_in_free_text_loses_the_password(captured: io.StringIO) -> None:
    structlog.get_logger("test").warning("send_failed", error="POST to json://am:hunter2@hooks.local/x refused")
    assert "json://<redacted:" in captured.getvalue()
    assert "hunter2" not in captured.getvalue()


def test_a_registered_secret_is_blanked_even_nested_in_a_structlog_value(captured: io.StringIO) -> None:
    register_secret("nested-Secret-9")
    structlog.get_logger("test").info("odd", detail={"why": ["value nested-Secret-9 here"]})
    assert "<redacted>" in captured.getvalue()
    assert "nested-Secret-9" not in captured.getvalue()


def test_a_library_exception_carrying_a_registered_secret_is_blanked(captured: io.StringIO) -> None:
    register_secret("lib-Secret-7")
    try:
        raise ValueError({"header": "lib-Secret-7"})
    except ValueError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    assert "ValueError" in captured.getvalue()
    assert "lib-Secret-7" not in captured.getvalue()


def test_library_lines_are_json_like_kubebots_own(captured: io.StringIO) -> None:
    logging.getLogger("aiohttp.web").warning("odd %s", "thing")
    line: dict[str, Any] = json.loads(captured.getvalue().splitlines()[-1])
    assert (line["event"], line["logger"], line["level"]) == ("odd thing", "aiohttp.web", "warning")
