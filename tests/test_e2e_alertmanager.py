"""A real Alertmanager delivers to a running `kubebot serve`, which pages through Apprise."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import HttpSink, free_port
from tests.processes import AlertmanagerProcess, KubebotProcess

pytestmark = pytest.mark.skipif(
    AlertmanagerProcess.binary() is None, reason="Debian prometheus-alertmanager not installed"
)
TOKEN = "e2e-secret-token-0123456789"


class MailBox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[MailBox, int]]:
    box = MailBox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def _alert(name: str, ends_at: datetime | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": {
            "alertname": name,
            "severity": "critical",
            "namespace": "shop",
            "pod": "checkout-1",
        },
        "annotations": {"summary": "checkout returns 5xx <b>now</b>"},
        "startsAt": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "generatorURL": "http://prometheus.local/graph?g0.expr=up",
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at.isoformat()
    return alert


async def _wait_mail(box: MailBox, count: int, timeout: float = 20.0) -> None:
    async def poll() -> None:
        while len(box.messages) < count:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_alert_posted_to_alertmanager_arrives_by_json_and_mail_then_resolves(
    tmp_path: Path, http_sink: HttpSink, smtp: tuple[MailBox, int]
) -> None:
    box, smtp_port = smtp
    (tmp_path / "token").write_text(TOKEN + "\n")
    mail_url = f"mailto://127.0.0.1:{smtp_port}?from=kubebot@example.com&to=oncall@example.com"
    kubebot = KubebotProcess.create(
        tmp_path,
        {
            "auth": {"bearer_token_file": str(tmp_path / "token")},
            "notify": {
                "routes": [{"matchers": ['severity="critical"'], "urls": [http_sink.url(), mail_url]}],
                "default_urls": [http_sink.url("/default")],
                "backoff_initial_seconds": 0.2,
            },
        },
    )
    await asyncio.to_thread(kubebot.start)
    am = await asyncio.to_thread(AlertmanagerProcess.start, tmp_path, f"{kubebot.url}/api/v1/alerts", TOKEN)
    try:
        await asyncio.to_thread(am.post_alerts, [_alert("E2ECheckoutErrors")])
        firing = (await http_sink.wait_for(1))[0]
        await _wait_mail(box, 1)

        await asyncio.to_thread(am.post_alerts, [_alert("E2ECheckoutErrors", datetime.now(UTC))])
        resolved = (await http_sink.wait_for(2))[1]
        await _wait_mail(box, 2)
    finally:
        await asyncio.to_thread(am.stop)
        await asyncio.to_thread(kubebot.stop)

    assert firing["title"] == "[FIRING] E2ECheckoutErrors Pod shop/checkout-1 (critical)"
    assert "checkout returns 5xx <b>now</b>" in firing["message"]
    assert http_sink.headers[0]["User-Agent"] == "Apprise"
    assert resolved["title"].startswith("[RESOLVED] E2ECheckoutErrors")
    assert [m["Subject"] for m in box.messages] == [firing["title"], resolved["title"]]
    assert TOKEN not in kubebot.log()
    assert f"127.0.0.1:{smtp_port}" not in kubebot.log()


async def test_wrong_token_from_alertmanager_is_refused_and_nothing_is_sent(
    tmp_path: Path, http_sink: HttpSink
) -> None:
    (tmp_path / "token").write_text(TOKEN)
    kubebot = KubebotProcess.create(
        tmp_path,
        {
            "auth": {"bearer_token_file": str(tmp_path / "token")},
            "notify": {"default_urls": [http_sink.url()]},
        },
    )
    await asyncio.to_thread(kubebot.start)
    am = await asyncio.to_thread(AlertmanagerProcess.start, tmp_path, f"{kubebot.url}/api/v1/alerts", "not-the-token")
    try:
        await asyncio.to_thread(am.post_alerts, [_alert("E2EWrongToken")])
        for _ in range(100):
            if 'code="401"' in await asyncio.to_thread(_metrics, kubebot.url):
                break
            await asyncio.sleep(0.05)
        metrics = await asyncio.to_thread(_metrics, kubebot.url)
    finally:
        await asyncio.to_thread(am.stop)
        await asyncio.to_thread(kubebot.stop)
    assert 'kubebot_webhook_requests_total{code="401"}' in metrics
    assert http_sink.received == []


def _metrics(base: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text
