"""What the dashboard tests share (this module holds no tests): hostile webhooks, a fake
enrichment source whose facts carry the same payloads, and a wait for incidents.

Every string an attacker controls (labels, annotations, log lines, event messages) gets a
payload that, if it ever ran, would add an element with id `xss-ran` and retitle the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from aiohttp import web

from enrichers.base import AlertInput, EnrichContext, Enrichment
from receiver.app import Credentials, create_app
from receiver.config import Config, NotifyConfig, StoreConfig
from receiver.pipeline.sources import Sources
from tests.conftest import fixture_json

RAN = "var d=document.createElement('div');d.id='xss-ran';document.body.appendChild(d);document.title='pwned'"
SCRIPT = f"<script>{RAN}</script>"
IMG = f'<img src=x onerror="{RAN}">'
SVG = f'<svg onload="{RAN}"></svg>'
ATTRIBUTE_BREAK = f'"><script>{RAN}</script>'
PAYLOADS = (SCRIPT, IMG, SVG, ATTRIBUTE_BREAK)
DEAD_CHANNEL = "json://user:hunter2@127.0.0.1:9/hook"  # the discard port refuses: a dead letter


@dataclass
class Markup(HTMLParser):
    """What a browser would build from a page: its elements with attributes, and its text."""

    elements: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @classmethod
    def of(cls, html: str) -> Markup:
        parsed = cls()
        parsed.feed(html)
        parsed.close()
        return parsed


def hostile_webhook(group: str = "hostile") -> dict[str, Any]:
    body = fixture_json("alertmanager/alertmanager_webhook_sample.json")
    body["groupKey"] = group
    alert = body["alerts"][0]
    alert["fingerprint"] = f"fp-{group}"
    alert["labels"] = {
        "alertname": f"Pwn{SCRIPT}",
        "namespace": f"ns{IMG}",
        "pod": "checkout-7d9f",
        "service": SVG,
        "severity": "critical",
    }
    alert["annotations"] = {"summary": ATTRIBUTE_BREAK, "description": IMG}
    alert["generatorURL"] = f"javascript:{RAN}"
    return dict(body)


class HostileSource:
    """A fake enrichment source (name kubernetes or prometheus) whose facts carry payloads."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def enrich(self, alert: AlertInput, ctx: EnrichContext) -> Enrichment:
        if self.name == "prometheus":
            start = alert.starts_at.timestamp()
            points = [[start - 600 + 60 * i, float(i * i)] for i in range(16)]
            expression = {"expr": f"rate(x[5m]) > 1 {SCRIPT}", "current": 225.0, "points": points}
            return Enrichment(self.name, "ok", {"expression": expression}, (f"Alert expression: 225 now {IMG}",))
        facts: dict[str, Any] = {
            "subject": {"kind": "pod", "name": "checkout-7d9f", "namespace": "default", "container": None},
            "verdict": f"CrashLoopBackOff {SVG}",
            "events": [
                {
                    "reason": "BackOff",
                    "count": 7,
                    "last_seen": "2026-11-25T14:58:00Z",
                    "message": f"Back-off restarting {IMG}",
                    "objects": ["Pod/checkout-7d9f"],
                }
            ],
            "logs": [
                {
                    "container": "app",
                    "previous": True,
                    "lines": ["starting", f"panic: {SCRIPT}", f"</pre>{IMG}"],
                    "error_lines": [1],
                    "truncated": False,
                }
            ],
            "pod": {"name": "checkout-7d9f", "phase": "Running", "restarts": 7, "message": ATTRIBUTE_BREAK},
        }
        return Enrichment(self.name, "ok", facts, (f"pod restarted 7 times {SCRIPT}",))


async def hostile_sources(_: Config) -> Sources:
    return Sources(enrichers=[HostileSource("kubernetes"), HostileSource("prometheus")])


def dashboard_app(tmp_path: Path, credentials: Credentials) -> web.Application:
    """The app with its store under `tmp_path`, the hostile sources, and one dead channel."""
    config = Config(
        store=StoreConfig(path=str(tmp_path / "kb.db")),
        notify=NotifyConfig(default_urls=(f"jsonl://{tmp_path}/n.jsonl", DEAD_CHANNEL), max_attempts=1),
    )
    return create_app(config, credentials=credentials, sources_factory=hostile_sources)


async def wait_for_incidents(get_json: Callable[[str], Awaitable[Any]], alerts: int) -> list[Any]:
    """Until `alerts` alerts in all are folded into incidents and no delivery is pending."""
    for _ in range(400):
        listed = (await get_json("/api/v1/incidents"))["incidents"]
        if sum(i["alert_count"] for i in listed) >= alerts:
            details = [await get_json(f"/api/v1/incidents/{i['id']}") for i in listed]
            if all(n["state"] != "pending" for d in details for n in d["notifications"]):
                return list(listed)
        await asyncio.sleep(0.025)
    raise AssertionError(f"{alerts} alerts were not folded into incidents")
