"""Channels: Apprise (chat, mail, push) and KubeBot's own `jsonl://` file sink.

Apprise's sends block, so they run in a bounded thread pool under a timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Protocol

import apprise
import structlog

from receiver.pipeline.stage import Message
from receiver.redact import register_channel_url, url_scheme

log = structlog.get_logger("kubebot.notify")
JSONL_SCHEME = "jsonl"


class DeliveryError(Exception):
    pass


class Channel(Protocol):
    """Sends one message to one URL, or raises DeliveryError."""

    async def send(self, url: str, message: Message) -> None: ...


class AppriseChannel:
    def __init__(self, pool: ThreadPoolExecutor, timeout_seconds: float) -> None:
        self._pool = pool
        self._timeout = timeout_seconds

    async def send(self, url: str, message: Message) -> None:
        # Apprise's logger echoes a failing URL and its tokens: blank them in every log line.
        register_channel_url(url)
        loop = asyncio.get_running_loop()
        try:
            ok = await asyncio.wait_for(loop.run_in_executor(self._pool, _apprise_send, url, message), self._timeout)
        except TimeoutError:
            # The thread cannot be interrupted; the pool's size bounds how many linger.
            raise DeliveryError(f"timed out after {self._timeout:g}s") from None
        if not ok:
            raise DeliveryError("the channel refused or could not be reached")


def _apprise_send(url: str, message: Message) -> bool:
    sender = apprise.Apprise()
    if not sender.add(url):
        raise DeliveryError("not a valid Apprise URL")
    # TEXT: label values are untrusted; Apprise escapes them for HTML and Markdown targets.
    return bool(
        sender.notify(
            body=message.body,
            title=message.title,
            notify_type=message.notify_type,
            body_format=apprise.NotifyFormat.TEXT,
        )
    )


class JsonLinesChannel:
    """`jsonl://PATH`: appends one JSON object per message; the embedded default sink."""

    def __init__(self, pool: ThreadPoolExecutor, clock: Callable[[], datetime]) -> None:
        self._pool = pool
        self._clock = clock

    async def send(self, url: str, message: Message) -> None:
        path = Path(url[len(JSONL_SCHEME) + 3 :])
        record = {
            "time": self._clock().isoformat(),
            "title": message.title,
            "message": message.body,
            "type": message.notify_type,
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, _append, path, line)
        except OSError as exc:
            raise DeliveryError(f"cannot write {path.name}: {exc.strerror}") from None


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as sink:
        sink.write(line)


class Channels:
    """Picks the channel for a URL by its scheme."""

    def __init__(self, apprise_channel: Channel, jsonl_channel: Channel) -> None:
        self._apprise = apprise_channel
        self._jsonl = jsonl_channel

    async def send(self, url: str, message: Message) -> None:
        channel = self._jsonl if url_scheme(url) == JSONL_SCHEME else self._apprise
        await channel.send(url, message)
