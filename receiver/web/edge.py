"""The HTTP edge: what bounds a request's cost before any handler trusts it.

- a webhook body is read within `server.body_read_timeout_seconds` (408 past it),
  into one bytes object, counted against `server.max_inflight_body_bytes` as it
  arrives (503 with Retry-After past it, so Alertmanager tries again later);
- a gzip or deflate body is decoded here, as it arrives, never past
  `server.max_body_bytes`, and only a complete one is accepted: aiohttp's own decoder
  never checks that a gzip body reached its end (its CRC and length), so a body cut
  short after its JSON would pass; `start` turns that decoder off;
- a connection idle for `server.idle_timeout_seconds` is closed (aiohttp's keep-alive
  timer, which also runs before a first request and while its headers trickle in);
- at most `server.max_connections` connections are open: one more is closed as soon as
  it is accepted, before a protocol, a parser or a buffer exists for it;
- a request aiohttp's parser refuses gets a fixed 400 and one log line, never the bytes
  it sent (aiohttp's own answer quotes the offending line, `Authorization` included).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import signal
import sys
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    ContentEncodingError,
    HttpProcessingError,
    InvalidURLError,
    LineTooLong,
    PayloadEncodingError,
)

from receiver.config import ServerConfig

log = structlog.get_logger("kubebot.edge")

# Alertmanager ignores it (it backs off by itself), other senders may not.
RETRY_AFTER_SECONDS = 5
# Content-Encoding values a body may have; anything else would reach the JSON decoder as is.
DECODED_ENCODINGS = frozenset({"", "identity", "gzip", "deflate"})
COMPRESSED = frozenset({"gzip", "deflate"})
# aiohttp knows these, KubeBot has no decoder for them: the answer they had when aiohttp's
# parser refused them (it decoded bodies itself then), see PARSE_REFUSALS.
NO_DECODER = frozenset({"br", "zstd"})
UNDECODED = "unsupported Content-Encoding: use gzip, deflate or none"
# After a burst of bodies at least this large, free heap pages go back to the system.
TRIM_AFTER_BYTES = 8 * 1024 * 1024


class BodyRefused(Exception):
    """The body was not read, or not all of it: the answer says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ClientGone(Exception):
    """The client went away before it sent the whole body (counted as 499, not 5xx)."""


class BodyBudget:
    """Bytes of request bodies held in memory at once, across all requests.

    A body larger than the whole budget still gets in when nothing else is held, so
    a budget set below `server.max_body_bytes` slows large groups but never refuses
    them for good.
    """

    def __init__(self, limit: int, trim: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self.held = 0
        self._peak = 0
        self._trim = trim if trim is not None else release_free_memory

    def try_reserve(self, size: int) -> bool:
        if self.held and self.held + size > self.limit:
            return False
        self.held += size
        self._peak = max(self._peak, self.held)
        return True

    def release(self, size: int) -> None:
        self.held -= size
        if self.held == 0 and self._peak >= TRIM_AFTER_BYTES:
            self._peak = 0
            self._trim()


@asynccontextmanager
async def read_body(request: web.Request, budget: BodyBudget, config: ServerConfig) -> AsyncIterator[bytes]:
    """The whole body, decoded, held against `budget` until the block ends, whatever the outcome."""
    encoding = accepted_encoding(request)
    limit = config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise BodyRefused(413, f"body larger than server.max_body_bytes ({limit} bytes)")
    held = _Held(budget)
    try:
        # What Content-Length announces is reserved before a byte is read; what arrives
        # beyond it (chunked, or decompressed) is reserved as it arrives.
        held.grow(request.content_length or 0)
        try:
            async with asyncio.timeout(config.body_read_timeout_seconds):
                body = await _read_all(request, held, limit, _decoder(request, encoding, limit))
        except TimeoutError:
            raise BodyRefused(408, f"body not received within {config.body_read_timeout_seconds:g} s") from None
        yield body
    finally:
        held.release()


async def read_decoded(request: web.Request, limit: int) -> bytes:
    """The whole body, decoded: for the small JSON and form bodies of the API and the
    dashboard (aiohttp's `client_max_size` bounds what is read before decoding)."""
    encoding = accepted_encoding(request)
    raw = await request.read()
    decoder = _decoder(request, encoding, limit)
    if decoder is None:
        return raw
    body = decoder.feed(raw)
    if len(body) > limit:
        raise BodyRefused(413, f"body larger than server.max_body_bytes ({limit} bytes)")
    decoder.finish()
    return body


def accepted_encoding(request: web.Request) -> str:
    """The body's Content-Encoding, lower case, if KubeBot decodes it; else BodyRefused (400)."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in DECODED_ENCODINGS:
        return encoding
    if encoding in NO_DECODER:
        raise BodyRefused(400, UNDECODED)
    raise BodyRefused(400, f"unsupported Content-Encoding {encoding[:40]!r}: use gzip, deflate or none")


def _decoder(request: web.Request, encoding: str, limit: int) -> BodyDecoder | None:
    if encoding not in COMPRESSED or not request.body_exists:
        return None
    # Served with aiohttp's defaults (not by `start`, say a test server), the parser has
    # decoded the body already: it counts the bytes it decoded from here.
    if request.content.total_compressed_bytes is not None:
        return None
    return BodyDecoder(encoding, limit)


class BodyDecoder:
    """Decodes a gzip or deflate body chunk by chunk, and refuses one that is corrupt,
    cut short, or followed by more bytes (400, naming the problem).

    Never more than `limit` + 1 decoded bytes come out in all (a zip bomb stops there):
    more than `limit` is for the caller to refuse (413).
    """

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self._room = limit + 1
        self._zlib: zlib._Decompress | None = None

    def feed(self, chunk: bytes) -> bytes:
        if not chunk or self._room <= 0:  # past the limit the caller refuses; 0 would mean no limit to zlib
            return b""
        decompressor = self._zlib or self._start(chunk)
        if decompressor.eof:
            raise self._refused("has bytes after its end")
        try:
            out = decompressor.decompress(chunk, self._room)
        except zlib.error as exc:
            raise self._refused(f"is corrupt ({self._problem(exc)})") from None
        self._room -= len(out)
        if decompressor.eof and decompressor.unused_data:
            raise self._refused("has bytes after its end")
        return out

    def finish(self) -> None:
        """After the last chunk: the body must have reached its end (an empty body is empty
        whatever its encoding, as aiohttp has it)."""
        if self._zlib is not None and not self._zlib.eof:
            raise self._refused("is truncated")

    def _start(self, first: bytes) -> zlib._Decompress:
        # "deflate" is meant as zlib (RFC 1950), but some senders send raw deflate: told
        # apart by the first byte's compression method, as aiohttp does.
        if self.encoding == "gzip":
            wbits = 16 + zlib.MAX_WBITS
        else:
            wbits = zlib.MAX_WBITS if first[0] & 0x0F == 8 else -zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(wbits)
        return self._zlib

    def _problem(self, exc: zlib.error) -> str:
        reason = str(exc).rpartition(": ")[2]
        if reason == "incorrect data check":
            return "CRC mismatch" if self.encoding == "gzip" else "checksum mismatch"
        if reason == "incorrect length check":
            return "length mismatch"
        return reason[:80]

    def _refused(self, problem: str) -> BodyRefused:
        return BodyRefused(400, f"the {self.encoding} body {problem}")


@dataclass
class _Held:
    budget: BodyBudget
    size: int = 0

    def grow(self, to: int) -> None:
        if to <= self.size:
            return
        if not self.budget.try_reserve(to - self.size):
            raise BodyRefused(503, "too many request bodies in flight (server.max_inflight_body_bytes), retry later")
        self.size = to

    def release(self) -> None:
        self.budget.release(self.size)
        self.size = 0


async def _read_all(request: web.Request, held: _Held, limit: int, decoder: BodyDecoder | None) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := await request.content.readany():
            if decoder is not None:
                chunk = decoder.feed(chunk)
            size += len(chunk)
            if size > limit:
                raise BodyRefused(413, f"body larger than server.max_body_bytes ({limit} bytes)")
            held.grow(size)
            chunks.append(chunk)
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        raise ClientGone(str(exc) or type(exc).__name__) from None
    except web.RequestPayloadError as exc:
        if request.transport is None or request.transport.is_closing():
            raise ClientGone(str(exc)) from None
        # The parser has given up on this body; marked ended, aiohttp does not read on
        # after the answer (which would raise the same error again, with a traceback).
        request.content.feed_eof()
        if isinstance(exc.__cause__, ContentEncodingError):
            raise BodyRefused(400, f"body does not match its Content-Encoding ({encoding_of(request)})") from None
        raise BodyRefused(400, f"malformed body framing: {str(exc).strip()[:200]}") from None
    if decoder is not None:
        decoder.finish()
    # One copy, into the bytes object that is kept; the chunks go as soon as this returns.
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def encoding_of(request: web.Request) -> str:
    return request.headers.get("Content-Encoding", "identity").strip().lower()[:40]


def retry_later(response: web.Response) -> web.Response:
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def release_free_memory() -> None:
    """Give freed heap pages back to the system (glibc only; elsewhere nothing to do).

    A burst of large bodies leaves glibc's heaps holding the pages even once every
    object is freed; without this, RSS stays at the burst's peak.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    return trim


_MALLOC_TRIM = _malloc_trim()


# The answer to a request the parser refused, by the parser's exception (first match).
PARSE_REFUSALS: tuple[tuple[type[HttpProcessingError], str], ...] = (
    # Only under aiohttp's own decoding (not `start`'s): br and zstd (aiohttp knows them,
    # but their decoders are not installed).
    (ContentEncodingError, UNDECODED),
    (PayloadEncodingError, "malformed request: bad body framing headers"),
    (LineTooLong, "malformed request: request line or header too long"),
    (InvalidURLError, "malformed request: bad request target"),
    (BadStatusLine, "malformed request: bad request line"),
)
MALFORMED = "malformed request: bad header or request line"


def parse_refusal(exc: HttpProcessingError) -> str:
    return next((text for kind, text in PARSE_REFUSALS if isinstance(exc, kind)), MALFORMED)


class EdgeProtocol(web.RequestHandler):
    """aiohttp's connection protocol, but what it answers a request its parser refused is
    fixed text: aiohttp's own answer quotes the offending bytes (a bearer token, say) back
    to the client, and logs a traceback for what is the sender's fault."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status != 400 or not isinstance(exc, HttpProcessingError) or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        reason = parse_refusal(exc)
        # Scanners send non-HTTP bytes all day: not worth a warning (as aiohttp judges it too).
        report = log.debug if isinstance(exc, BadHttpMethod) else log.warning
        report("request_refused_by_parser", reason=reason, kind=type(exc).__name__, remote=request.remote)
        response = web.json_response({"error": reason}, status=400)
        response.force_close()
        return response


class LimitedSite(web.TCPSite):
    """A TCP site that keeps at most `max_connections` connections open.

    Why here and not in a middleware: by the time a request reaches the app its
    connection already holds a parser and buffers. The protocol factory is asked for
    each accepted socket; past the cap it hands out a protocol that closes the socket at
    once, so a flood costs a file descriptor for a moment and no memory. (A listen
    backlog alone bounds only connections not yet accepted, not the ones open.)
    """

    def __init__(self, runner: web.AppRunner, host: str, port: int, max_connections: int) -> None:
        super().__init__(runner, host, port)
        self._max_connections = max_connections
        self._full = False

    async def start(self) -> None:
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.Protocol:
            if len(server.connections) >= self._max_connections:
                if not self._full:  # one line per episode, not one per refused connection
                    log.warning("connections_at_limit", max_connections=self._max_connections)
                self._full = True
                return _Refused()
            self._full = False
            # What server() builds, as our subclass (the runner's handler arguments as is).
            return EdgeProtocol(server, loop=loop, **server._kwargs)

        # TCPSite.start with our factory in place of the runner's server.
        await web.BaseSite.start(self)
        self._server = await loop.create_server(
            protocol, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog
        )
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


async def start(app: web.Application, config: ServerConfig) -> web.AppRunner:
    """`app` started and listening with the edge's limits; `runner.cleanup()` stops it."""
    runner = web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=config.idle_timeout_seconds,
        shutdown_timeout=config.shutdown_grace_seconds,
        auto_decompress=False,  # bodies are decoded by read_body and read_decoded, strictly
    )
    await runner.setup()
    try:
        await LimitedSite(runner, config.host, config.port, config.max_connections).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def serve(app: web.Application, config: ServerConfig, announce: Callable[[str], None]) -> None:
    """Run `app` until SIGTERM or SIGINT, then shut it down gracefully.

    The signals end this coroutine rather than raise out of the loop (as aiohttp's own
    handlers do): so the app's cleanup runs, with its grace period, before anything
    else is cancelled, and a page in flight is finished rather than cut off.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = await start(app, config)
    try:
        announce(f"kubebot listening on http://{config.host}:{config.port}")
        await stop.wait()
    finally:
        await runner.cleanup()


def run(app: web.Application, config: ServerConfig, announce: Callable[[str], None]) -> None:
    """Like web.run_app, with the edge's limits in place."""
    asyncio.run(serve(app, config, announce))
