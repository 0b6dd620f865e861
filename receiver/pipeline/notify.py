"""Routing, message text, channels and the outbox that owns delivery retries.

Apprise does the talking to chat, mail and push services. Its sends block, so they run in
a bounded thread pool under a timeout. Retries live in one place, the `Outbox`: every
delivery is a stored row, so a restart resumes retries, and the last failure becomes a
dead letter that stays visible.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import apprise
import structlog

from receiver.config import NotifyConfig, Route
from receiver.matchers import all_match
from receiver.metrics import Metrics
from receiver.redact import redact_text, redact_url, register_channel_url, url_scheme
from receiver.service.waiting import keep_working
from receiver.store.sqlite import Delivery, Store

log = structlog.get_logger("kubebot.notify")
JSONL_SCHEME = "jsonl"
MAX_BUNDLED_LINES = 30  # other alerts listed in a group's message
MAX_LINES_PER_SOURCE = 20  # enough for a verdict, events and a short log excerpt


class DeliveryError(Exception):
    pass


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    notify_type: str  # apprise NotifyType value: info, success, warning, failure


def route_urls(routes: Sequence[Route], default_urls: Sequence[str], labels: Mapping[str, str]) -> tuple[str, ...]:
    """The first matching route wins unless it says `continue`; no match -> default_urls."""
    urls: list[str] = []
    matched = False
    for route in routes:
        if all_match(route.matchers, labels):
            matched = True
            urls.extend(u for u in route.urls if u not in urls)
            if not route.continue_:
                break
    return tuple(urls) if matched else tuple(default_urls)


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


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    initial_seconds: float
    max_seconds: float

    def delay(self, attempt: int, rng: random.Random) -> float | None:
        """Seconds before the next try after `attempt` failures, or None when out of tries."""
        if attempt >= self.max_attempts:
            return None
        # The exponent is capped: 2.0 ** 1100 overflows, and past 64 doublings the cap rules anyway.
        base = min(self.max_seconds, self.initial_seconds * 2.0 ** min(attempt - 1, 64))
        return float(base * rng.uniform(0.5, 1.0))  # jitter spreads retries after an outage

    @classmethod
    def from_config(cls, config: NotifyConfig) -> RetryPolicy:
        return cls(config.max_attempts, config.backoff_initial_seconds, config.backoff_max_seconds)


class Outbox:
    """Sends due deliveries from the store, with backoff, until each succeeds or is dead."""

    def __init__(
        self,
        store: Store,
        channel: Channel,
        policy: RetryPolicy,
        metrics: Metrics,
        *,
        concurrency: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._channel = channel
        self._policy = policy
        self._metrics = metrics
        self._concurrency = concurrency
        self._clock = clock
        self._rng = rng or random.Random()
        self.wakeup = asyncio.Event()

    async def run(self, poll_seconds: float = 1.0, stopping: asyncio.Event | None = None) -> None:
        await keep_working(self.send_due, self.wakeup, poll_seconds, "outbox", stopping)

    async def send_due(self) -> int:
        due = await self._store.due_deliveries(self._clock(), self._concurrency * 4)
        semaphore = asyncio.Semaphore(self._concurrency)

        async def bounded(delivery: Delivery) -> None:
            async with semaphore:
                await self._attempt(delivery)

        await asyncio.gather(*(bounded(d) for d in due))
        self._metrics.outbox_depth.set(self._store.outbox_count())
        return len(due)

    async def _attempt(self, delivery: Delivery) -> None:
        scheme = url_scheme(delivery.url)
        bound = log.bind(delivery=delivery.id, alert_id=delivery.alert_id, channel=redact_url(delivery.url))
        message = Message(delivery.title, delivery.body, delivery.notify_type)
        try:
            await self._channel.send(delivery.url, message)
        except Exception as exc:  # a channel's failure is data for the retry policy
            error = redact_text(str(exc) or type(exc).__name__)
            self._metrics.notifications.labels(scheme, "failure").inc()
            now = self._clock()
            delay = self._policy.delay(delivery.attempts + 1, self._rng)
            retry_at = now + timedelta(seconds=delay) if delay is not None else None
            await self._store.delivery_failed(delivery.id, error, now, retry_at)
            if retry_at is None:
                self._metrics.dead_letters.labels(scheme).inc()
                bound.error("dead_letter", attempts=delivery.attempts + 1, error=error)
            else:
                bound.warning("delivery_failed", attempts=delivery.attempts + 1, retry_in=delay, error=error)
            return
        self._metrics.notifications.labels(scheme, "success").inc()
        await self._store.delivery_succeeded(delivery.id, self._clock())
        bound.info("delivered", attempts=delivery.attempts + 1)


# `@everyone`, `@here`, `@channel`, `@all`, `@someone` ping people in Discord, Slack and
# Mattermost; `<!channel>`, `<@U123>`, `<@&role>`, `<#C123>` are Slack/Discord mention markup.
_AT_MENTION = re.compile(r"(?<![\w.+-])@(?=\w)|@(?=(?i:everyone|here|channel|all)\b)")
_MARKUP_MENTION = re.compile(r"<([!@#])")
_ZERO_WIDTH_SPACE = "\u200b"


def neutralise_mentions(text: str) -> str:
    """Mentions stay readable but no longer ping: a zero-width space breaks the markup.
    An e-mail address (`a@b`) is left alone: its `@` follows a word character."""
    text = _AT_MENTION.sub("@" + _ZERO_WIDTH_SPACE, text)
    return _MARKUP_MENTION.sub("<" + _ZERO_WIDTH_SPACE + r"\1", text)


def page_link(url: object) -> str | None:
    """Only a plain http(s) URL becomes a link in a page: no javascript:, data: or relative
    ones, and nothing that could start a line of its own."""
    if not isinstance(url, str) or not url or any(c.isspace() or not c.isprintable() for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def render_message(outcome: Mapping[str, Any], *others: Mapping[str, Any]) -> Message:
    """Title and plain-text body an on-call engineer reads first on a phone: the alert in
    full, and after it one line for each other alert of its group sent in the same message.
    Labels, annotations and enrichment are untrusted: no mention in them pings anyone."""
    message = _render_group(outcome, *others)
    return Message(neutralise_mentions(message.title), neutralise_mentions(message.body), message.notify_type)


def _render_group(outcome: Mapping[str, Any], *others: Mapping[str, Any]) -> Message:
    message = _render_one(outcome)
    if not others:
        return message
    status = outcome["alert"]["status"]
    names = {o["alert"]["labels"].get("alertname", "unnamed") for o in (outcome, *others)}
    first = outcome["alert"]["labels"]
    where = first.get("namespace") or first.get("node") or ""
    title = f"[{status.upper()}:{len(others) + 1}] " + (
        first.get("alertname", "unnamed") if len(names) == 1 else f"{len(names)} kinds of alerts"
    )
    title += f" {where}" if where else ""
    title += f" ({first.get('severity', 'none')})" if status == "firing" else ""
    lines = [f"{len(others) + 1} alerts {status} in this group; first in full, then the others:", ""]
    lines.append(message.title)
    lines.append(message.body)
    lines.append("")
    lines.append("Also in this group:")
    for other in others[:MAX_BUNDLED_LINES]:
        labels, annotations = other["alert"]["labels"], other["alert"]["annotations"]
        summary = annotations.get("summary") or annotations.get("message") or ""
        verdict = ((other.get("enrichment") or {}).get("kubernetes") or {}).get("summary") or []
        detail = verdict[0] if verdict else summary
        lines.append(f"  - {labels.get('alertname', 'unnamed')} {_subject(labels)}" + (f": {detail}" if detail else ""))
    if len(others) > MAX_BUNDLED_LINES:
        lines.append(f"  ... and {len(others) - MAX_BUNDLED_LINES} more (see the dashboard)")
    return Message(title=title, body="\n".join(lines), notify_type=message.notify_type)


def _render_one(outcome: Mapping[str, Any]) -> Message:
    alert = outcome["alert"]
    labels: Mapping[str, str] = alert["labels"]
    annotations: Mapping[str, str] = alert["annotations"]
    group: Mapping[str, Any] = outcome["group"]
    status = alert["status"]
    subject = _subject(labels)
    severity = labels.get("severity", "none")
    flapping = outcome.get("reason") == "flapping"
    title = f"[{'FLAPPING' if flapping else status.upper()}] {labels.get('alertname', 'unnamed')}"
    title += f" {subject}" if subject else ""
    title += f" ({severity})" if status == "firing" else ""
    lines: list[str] = (
        [f"Flapping: {outcome.get('rule')}; further changes are recorded, not paged."] if flapping else []
    )
    summary = annotations.get("summary") or annotations.get("message")
    if summary:
        lines.append(summary)
    if annotations.get("description") and annotations.get("description") != summary:
        lines.append(annotations["description"])
    where = ", ".join(f"{k}={labels[k]}" for k in _PLACE_LABELS if labels.get(k))
    lines.append(f"Severity: {severity}. Started {alert['startsAt']}" + (f". {where}" if where else ""))
    if status == "resolved" and alert.get("endsAt"):
        lines.append(f"Resolved at {alert['endsAt']}")
    causes = outcome.get("root_causes") or []
    if causes:
        lines.append("Likely root causes:")
        lines.extend(
            f"  {i}. {c['service']} (score {c['score']:.2f})"
            + (f": {'; '.join(c['evidence'][:2])}" if c["evidence"] else "")
            for i, c in enumerate(causes[:3], 1)
        )
    for source, enrichment in sorted((outcome.get("enrichment") or {}).items()):
        if enrichment["status"] == "unavailable":
            lines.append(f"{source}: unavailable ({enrichment['reason']})")
        else:
            lines.extend(f"{source}: {line}" for line in enrichment["summary"][:MAX_LINES_PER_SOURCE])
    links = [("Source", alert.get("generatorURL")), ("Runbook", annotations.get("runbook_url"))]
    links.append(("Alertmanager", group.get("externalURL")))
    lines.extend(f"{name}: {url}" for name, url in ((n, page_link(u)) for n, u in links) if url)
    if group.get("truncatedAlerts"):
        lines.append(f"Alertmanager left out {group['truncatedAlerts']} more alerts of this group.")
    notify_type = "success" if status == "resolved" else _TYPE_BY_SEVERITY.get(severity, "warning")
    return Message(title=title, body="\n".join(lines), notify_type=notify_type)


_PLACE_LABELS = (
    "namespace",
    "pod",
    "container",
    "deployment",
    "statefulset",
    "daemonset",
    "job",
    "node",
    "service",
    "instance",
)
_TYPE_BY_SEVERITY = {
    "critical": "failure",
    "error": "failure",
    "warning": "warning",
    "info": "info",
}


def _subject(labels: Mapping[str, str]) -> str:
    for key in (
        "pod",
        "deployment",
        "statefulset",
        "daemonset",
        "job_name",
        "node",
        "service",
        "instance",
    ):
        if labels.get(key):
            namespace = labels.get("namespace")
            return f"{namespace}/{labels[key]}" if namespace and key != "node" else labels[key]
    return labels.get("namespace", "")
