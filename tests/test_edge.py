"""The HTTP edge, against the real server on 127.0.0.1 with raw sockets: bad bytes are the
sender's fault (4xx), credentials that are not UTF-8 are 401, ids have one spelling, and
slow, aborted, numerous or large uploads cost bounded time and memory."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import urllib.parse
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from receiver.app import BODY_BUDGET, Credentials, create_app
from receiver.config import Config, NotifyConfig, ServerConfig, StoreConfig
from receiver.web import edge
from receiver.web.api import MAX_ID, canonical_int
from tests.conftest import fixture_json, free_port

TOKEN = "edge-token-4f1c"
SAMPLE = json.dumps(fixture_json("alertmanager/alertmanager_webhook_sample.json")).encode()
WAIT = 10.0  # seconds any single answer may take before the test fails


@dataclass
class Server:
    app: web.Application
    port: int

    async def exchange(self, data: bytes) -> bytes:
        """Send raw bytes, return everything the server answers until it closes."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(data)
            await writer.drain()
            return await asyncio.wait_for(reader.read(), WAIT)
        finally:
            writer.close()

    async def answer_head(self, data: bytes) -> bytes:
        """Send raw bytes, return the answer's status line and headers (the server may
        keep reading what the client still sends for a while before it closes)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(data)
            await writer.drain()
            return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        finally:
            writer.close()

    def held(self) -> int:
        return self.app[BODY_BUDGET].held


@asynccontextmanager
async def running(tmp_path: Path, **server: Any) -> AsyncIterator[Server]:
    config = Config(
        server=ServerConfig(port=free_port(), **server),
        store=StoreConfig(path=str(tmp_path / "kb.db")),
        notify=NotifyConfig(default_urls=(f"jsonl://{tmp_path}/n.jsonl",)),
    )
    app = create_app(config, credentials=Credentials(bearer_token=TOKEN))
    runner = await edge.start(app, config.server)
    try:
        yield Server(app, config.server.port)
    finally:
        await runner.cleanup()


def post(body: bytes, *headers: bytes, auth: bytes = b"Bearer " + TOKEN.encode(), length: int | None = None) -> bytes:
    lines = [
        b"POST /api/v1/alerts HTTP/1.1",
        b"Host: kubebot",
        b"Authorization: " + auth,
        b"Content-Type: application/json",
        b"Content-Length: %d" % (len(body) if length is None else length),
        b"Connection: close",
        *headers,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def get(target: str) -> bytes:
    headers = f"Host: kubebot\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close"
    return f"GET {target} HTTP/1.1\r\n{headers}\r\n\r\n".encode()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


def error_of(answer: bytes) -> str:
    return str(json.loads(answer.partition(b"\r\n\r\n")[2])["error"])


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with running(tmp_path) as started:
        yield started


# -- bad bytes: the sender's fault, not "retry" ------------------------------------------------


async def test_invalid_utf8_inside_a_label_value_is_a_400_naming_utf8(server: Server) -> None:
    body = SAMPLE.replace(b'"alertname": "', b'"alertname": "\xff\xfe', 1)
    assert body != SAMPLE
    answer = await server.exchange(post(body))
    assert (status_of(answer), "UTF-8" in error_of(answer)) == (400, True)


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        (b"gzip", b"this is not gzip"),
        (b"deflate", b"nor deflate"),
        (b"gzip", gzip.compress(SAMPLE)[:-20]),  # cut short
        (b"compress", SAMPLE),
        (b"x-unknown", SAMPLE),
        (b"gzip, identity", gzip.compress(SAMPLE)),
    ],
)
async def test_a_body_that_is_not_in_its_content_encoding_is_a_400(
    server: Server, encoding: bytes, body: bytes
) -> None:
    answer = await server.exchange(post(body, b"Content-Encoding: " + encoding))
    assert status_of(answer) == 400


async def test_an_unknown_content_encoding_is_named_in_the_400(server: Server) -> None:
    answer = await server.exchange(post(SAMPLE, b"Content-Encoding: x-unknown"))
    assert error_of(answer) == "unsupported Content-Encoding 'x-unknown': use gzip, deflate or none"


async def test_a_gzip_body_is_accepted(server: Server) -> None:
    answer = await server.exchange(post(gzip.compress(SAMPLE), b"Content-Encoding: gzip"))
    assert status_of(answer) == 200


# -- compressed bodies: decoded strictly, as they arrive -----------------------------------------

GZIPPED = gzip.compress(SAMPLE)
ZLIBBED = zlib.compress(SAMPLE)


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def chunked(body: bytes, piece: int, *headers: bytes, path: bytes = b"/api/v1/alerts") -> bytes:
    """A POST whose body arrives in chunks of `piece` bytes (so it is decoded in pieces)."""
    lines = [
        b"POST " + path + b" HTTP/1.1",
        b"Host: kubebot",
        b"Authorization: Bearer " + TOKEN.encode(),
        b"Content-Type: application/json",
        b"Transfer-Encoding: chunked",
        b"Connection: close",
        *headers,
    ]
    pieces = [body[i : i + piece] for i in range(0, len(body), piece)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    return b"\r\n".join(lines) + b"\r\n\r\n" + framed


@pytest.mark.parametrize(
    ("encoding", "body", "error"),
    [
        (b"gzip", GZIPPED[:-8], "the gzip body is truncated"),  # the JSON whole, the trailer gone
        (b"gzip", GZIPPED[:-3], "the gzip body is truncated"),  # CRC whole, length cut
        (b"gzip", flipped(GZIPPED, len(GZIPPED) - 8), "the gzip body is corrupt (CRC mismatch)"),
        (b"gzip", flipped(GZIPPED, len(GZIPPED) - 1), "the gzip body is corrupt (length mismatch)"),
        (b"gzip", GZIPPED + b"garbage", "the gzip body has bytes after its end"),
        (b"gzip", GZIPPED + GZIPPED, "the gzip body has bytes after its end"),
        (b"GZip", GZIPPED[:-8], "the gzip body is truncated"),
        (b"deflate", ZLIBBED[:-4], "the deflate body is truncated"),  # the JSON whole, the checksum gone
        (b"deflate", flipped(ZLIBBED, len(ZLIBBED) - 1), "the deflate body is corrupt (checksum mismatch)"),
        (b"deflate", raw_deflate(SAMPLE)[:-2], "the deflate body is truncated"),
        (b"deflate", ZLIBBED + b"\n", "the deflate body has bytes after its end"),
    ],
)
async def test_a_compressed_body_that_is_not_whole_is_a_400_naming_the_problem(
    server: Server, encoding: bytes, body: bytes, error: str
) -> None:
    answer = await server.exchange(post(body, b"Content-Encoding: " + encoding))
    assert (status_of(answer), error_of(answer), server.held()) == (400, error, 0)


@pytest.mark.parametrize("piece", [1, 7, 4096])
async def test_a_truncated_gzip_body_is_refused_however_it_is_chunked(server: Server, piece: int) -> None:
    answer = await server.exchange(chunked(GZIPPED[:-8], piece, b"Content-Encoding: gzip"))
    assert (status_of(answer), error_of(answer)) == (400, "the gzip body is truncated")


@pytest.mark.parametrize(
    ("encoding", "body"),
    [(b"gzip", GZIPPED), (b"deflate", ZLIBBED), (b"deflate", raw_deflate(SAMPLE)), (b"identity", SAMPLE)],
)
@pytest.mark.parametrize("piece", [1, 7, 1 << 20])
async def test_a_whole_compressed_body_is_stored_however_it_is_chunked(
    server: Server, encoding: bytes, body: bytes, piece: int
) -> None:
    answer = await server.exchange(chunked(body, piece, b"Content-Encoding: " + encoding))
    assert (status_of(answer), answer.endswith(b'{"status": "stored", "alerts": 1}')) == (200, True)


async def test_an_empty_gzip_body_is_read_as_an_empty_body(server: Server) -> None:
    compressed = await server.exchange(post(b"", b"Content-Encoding: gzip"))
    plain = await server.exchange(post(b""))
    assert (status_of(compressed), error_of(compressed)) == (status_of(plain), error_of(plain))


async def test_a_gzip_bomb_is_a_413_and_its_budget_is_returned(tmp_path: Path) -> None:
    bomb = gzip.compress(b"[" * (64 * 1024 * 1024))  # 64 MiB inflated, about 64 KiB sent
    async with running(tmp_path, max_body_bytes=1024 * 1024, max_inflight_body_bytes=1024 * 1024) as server:
        answer = await server.exchange(post(bomb, b"Content-Encoding: gzip"))
        assert (status_of(answer), server.held()) == (413, 0)


def test_a_decoder_never_gives_more_than_one_byte_past_its_limit() -> None:
    decoder = edge.BodyDecoder("gzip", limit=1000)
    bomb = gzip.compress(b"{" * 10_000_000)
    given = [len(decoder.feed(bomb[i : i + 512])) for i in range(0, len(bomb), 512)]
    assert sum(given) == 1001


def post_to(path: str, body: bytes, *headers: bytes) -> bytes:
    return post(body, *headers).replace(b"POST /api/v1/alerts ", f"POST {path} ".encode(), 1)


@pytest.mark.parametrize("path", ["/api/v1/incidents/1/ack", "/api/v1/incidents/1/feedback", "/api/v1/silences"])
async def test_a_truncated_gzip_body_to_the_json_api_is_a_400_naming_the_problem(
    with_incident_1: Server, path: str
) -> None:
    body = gzip.compress(b'{"incident_id": 1, "by": "ana", "verdict": "useful", "duration_seconds": 60}')[:-8]
    answer = await with_incident_1.exchange(post_to(path, body, b"Content-Encoding: gzip"))
    assert (status_of(answer), error_of(answer)) == (400, "$: the gzip body is truncated")


async def test_an_ack_in_gzip_is_recorded(with_incident_1: Server) -> None:
    body = gzip.compress(b'{"by": "ana", "note": "on it"}')
    answer = await with_incident_1.exchange(post_to("/api/v1/incidents/1/ack", body, b"Content-Encoding: gzip"))
    assert (status_of(answer), b'"note": "on it"' in answer) == (200, True)


def form_post(body: bytes, *headers: bytes) -> bytes:
    return post_to("/incidents/1/ack", body, *headers).replace(
        b"Content-Type: application/json", b"Content-Type: application/x-www-form-urlencoded", 1
    )


async def test_a_form_in_gzip_is_read_and_a_truncated_one_is_a_400(with_incident_1: Server) -> None:
    page = (await with_incident_1.exchange(get("/incidents/1"))).decode()
    token = re.findall(r'name="csrf_token" value="([^"]+)"', page)[0]
    form = gzip.compress(urllib.parse.urlencode({"csrf_token": token, "by": "ana", "note": "on it"}).encode())
    cut = await with_incident_1.exchange(form_post(form[:-8], b"Content-Encoding: gzip"))
    whole = await with_incident_1.exchange(form_post(form, b"Content-Encoding: gzip"))
    assert (status_of(cut), b"the gzip body is truncated" in cut) == (400, True)
    assert (status_of(whole), b"Location: /incidents/1#timeline" in whole) == (303, True)


# -- credentials that are not UTF-8 ------------------------------------------------------------


@pytest.mark.parametrize("auth", [b"Bearer \xff\xfe" + TOKEN.encode(), b"Basic \xc3\x28" + TOKEN.encode()])
async def test_an_authorization_header_that_is_not_utf8_is_a_401_and_never_printed(
    server: Server, auth: bytes, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    answer = await server.exchange(post(SAMPLE, auth=auth))
    printed = capsys.readouterr()
    assert status_of(answer) == 401
    assert TOKEN not in printed.out + printed.err + caplog.text


# -- what aiohttp's parser refuses: a fixed answer, never the bytes sent -----------------------

SECRET = b"Bearer " + TOKEN.encode()


def raw(request_line: bytes, *headers: bytes) -> bytes:
    return b"\r\n".join([request_line, b"Host: kubebot", *headers, b"Content-Length: 2"]) + b"\r\n\r\n{}"


@pytest.mark.parametrize(
    "request_bytes",
    [
        raw(b"POST /api/v1/alerts HTTP/1.1", b"Authorization: " + SECRET + b"\x01"),  # bad header char
        raw(b"POST /api/v1/alerts HTTP/1.1", b"Authorization " + SECRET),  # no colon
        raw(b"POST /api/v1/alerts HTTP/1.1", b"Authorization: " + SECRET + b"A" * 9000),  # over-long
        raw(b"POST /api/v1/alerts HTTP/1.1", b"X-Auth: " + SECRET, b"X-Bad\x7f: 1"),  # bad name
        raw(b"POST /" + TOKEN.encode() + b"\x01 HTTP/1.1"),  # bad request target
        raw(b"P\x01ST /" + TOKEN.encode() + b" HTTP/1.1"),  # bad method
        raw(b"POST /" + TOKEN.encode() + b" HTTP/9"),  # bad version
    ],
)
async def test_a_request_the_parser_refuses_gets_a_fixed_400_without_its_bytes(
    server: Server, request_bytes: bytes, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    answer = await server.exchange(request_bytes)
    printed = capsys.readouterr()
    output = printed.out + printed.err + caplog.text
    assert (status_of(answer), error_of(answer).startswith("malformed request")) == (400, True)
    assert (TOKEN.encode() in answer, TOKEN in output, "Traceback" in output) == (False, False, False)


@pytest.mark.parametrize("encoding", [b"br", b"zstd", b"BR"])
async def test_a_content_encoding_aiohttp_cannot_decode_is_a_clean_400(
    server: Server, encoding: bytes, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    answer = await server.exchange(post(SAMPLE, b"Content-Encoding: " + encoding))
    printed = capsys.readouterr()
    output = printed.out + printed.err + caplog.text
    assert (status_of(answer), error_of(answer)) == (400, UNDECODED)
    assert "Traceback" not in output


UNDECODED = "unsupported Content-Encoding: use gzip, deflate or none"


# -- ids have one spelling ---------------------------------------------------------------------

NOT_CANONICAL = ["01", "+1", " 1", "1 ", "1_0", "١", "١٢", "²", "１", "-1", "0", "1.0", "0x1", str(MAX_ID + 1)]


@pytest.fixture
async def with_incident_1(server: Server) -> Server:
    assert status_of(await server.exchange(post(SAMPLE))) == 200
    for _ in range(500):
        if status_of(await server.exchange(get("/api/v1/incidents/1"))) == 200:
            return server
        await asyncio.sleep(0.02)
    raise AssertionError("incident 1 did not appear")


@pytest.mark.parametrize("prefix", ["/api/v1/incidents/", "/incidents/"])
@pytest.mark.parametrize("spelling", NOT_CANONICAL)
async def test_an_incident_id_not_in_plain_digits_is_not_found(
    with_incident_1: Server, prefix: str, spelling: str
) -> None:
    answer = await with_incident_1.exchange(get(prefix + urllib.parse.quote(spelling)))
    assert status_of(answer) == 404


@pytest.mark.parametrize("target", ["/api/v1/incidents?cursor=", "/api/v1/incidents?limit=", "/?cursor="])
@pytest.mark.parametrize("spelling", ["01", "+5", "١", "５", "1_0", " 5"])
async def test_a_cursor_or_limit_not_in_plain_digits_is_a_400(server: Server, target: str, spelling: str) -> None:
    answer = await server.exchange(get(target + urllib.parse.quote(spelling)))
    assert status_of(answer) == 400


@given(st.integers(min_value=0, max_value=MAX_ID))
def test_every_int64_in_plain_digits_reads_back(value: int) -> None:
    assert value == canonical_int(str(value))


@given(st.text(max_size=25))
def test_any_other_text_names_no_integer(text: str) -> None:
    value = canonical_int(text)
    assert value is None or str(value) == text


# -- slow, aborted, numerous and large uploads -------------------------------------------------


async def test_a_body_that_stalls_is_answered_408_and_releases_its_budget(tmp_path: Path) -> None:
    async with running(tmp_path, body_read_timeout_seconds=0.2) as server:
        answer = await server.answer_head(post(SAMPLE[:100], length=len(SAMPLE)))
        assert (status_of(answer), server.held()) == (408, 0)


async def test_an_idle_connection_is_closed(tmp_path: Path) -> None:
    async with running(tmp_path, idle_timeout_seconds=0.2) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
        finally:
            writer.close()


async def test_connections_beyond_the_cap_are_closed_and_the_others_still_answer(tmp_path: Path) -> None:
    async with running(tmp_path, max_connections=2) as server:
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        try:
            first = [await _healthz_kept_alive(reader, writer) for reader, writer in held]
            refused = await _read_or_reset(server.port)
            again = await _healthz_kept_alive(*held[0])
        finally:
            for _, writer in held:
                writer.close()
        assert (first, refused, again) == ([True, True], b"", True)


async def _healthz_kept_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: kubebot\r\n\r\n")
    answer = await asyncio.wait_for(reader.readuntil(b'"ok"}'), WAIT)
    return answer.startswith(b"HTTP/1.1 200")


async def _read_or_reset(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(get("/healthz"))
        return await asyncio.wait_for(reader.read(), WAIT)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def test_a_body_beyond_the_inflight_budget_is_503_with_retry_after_and_the_budget_returns_to_zero(
    tmp_path: Path,
) -> None:
    budget = 20 * len(SAMPLE)
    async with running(tmp_path, max_inflight_body_bytes=budget) as server:
        # 20 uploads that fill the budget and stall half-way ...
        stalled = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(20)]
        for _, writer in stalled:
            writer.write(post(SAMPLE)[: -len(SAMPLE) // 2])
        while server.held() < budget:
            await asyncio.sleep(0.01)
        # ... so the 21st is told to come back later.
        refused = await server.exchange(post(SAMPLE))
        for _, writer in stalled:
            writer.write(post(SAMPLE)[-len(SAMPLE) // 2 :])
        finished = [status_of(await asyncio.wait_for(reader.read(), WAIT)) for reader, _ in stalled]
        for _, writer in stalled:
            writer.close()
        assert (status_of(refused), b"\r\nRetry-After: " in refused) == (503, True)
        assert (finished, server.held()) == ([200] * 20, 0)


async def test_an_aborted_upload_counts_as_499_not_5xx_and_logs_one_line_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path) as server:
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(post(SAMPLE)[:-100])
        await writer.drain()
        while server.held() == 0:
            await asyncio.sleep(0.01)
        writer.transport.abort()
        while server.held() != 0:
            await asyncio.sleep(0.01)
        metrics = (await server.exchange(get("/metrics"))).decode()
    printed = capsys.readouterr()
    output = printed.out + printed.err + caplog.text
    assert 'kubebot_webhook_requests_total{code="499"} 1.0' in metrics
    assert 'code="5' not in metrics
    assert (output.count("upload_aborted"), "Traceback" in output) == (1, False)
