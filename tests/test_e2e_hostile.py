"""Issue 13's "Done when", tried from outside: `kubebot serve` with a bearer token file and a
route whose Apprise URL holds a password gets every kind of hostile input, then a normal
alert. It is paged, /readyz is 200, a restart changes nothing, and neither secret appears
on stdout, stderr or in any HTTP answer."""

from __future__ import annotations

import gzip
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.processes import KubebotProcess

TOKEN = "e2e-Tok3n-5d1a8c"
PASSWORD = "e2e-Passw0rd-77b2"
WAIT = 15.0  # seconds any single condition may take before the test fails


def alert(alertname: str, starts_at: str = "2026-11-27T11:00:00Z", /, **labels: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": alertname, "severity": "critical", **labels},
        "startsAt": starts_at,
    }


def body(*alerts: dict[str, Any], group_key: str = "hostile") -> bytes:
    return json.dumps({"version": "4", "status": "firing", "groupKey": group_key, "alerts": list(alerts)}).encode()


def post(payload: bytes, *headers: bytes, auth: bytes = b"Bearer " + TOKEN.encode()) -> bytes:
    lines = [
        b"POST /api/v1/alerts HTTP/1.1",
        b"Host: kubebot",
        b"Authorization: " + auth,
        b"Content-Type: application/json",
        b"Content-Length: %d" % len(payload),
        b"Connection: close",
        *headers,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload


def get(target: str) -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\nHost: kubebot\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n".encode()
    )


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


class Client:
    """Raw bytes to the server; every answer kept, to search them for secrets at the end."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: list[bytes] = []

    def exchange(self, data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=WAIT) as conn:
            conn.sendall(data)
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        answer = b"".join(chunks)
        self.answers.append(answer)
        return answer

    def abort_upload(self, data: bytes) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=WAIT) as conn:
            conn.sendall(data[:-50])


HOSTILE: list[tuple[str, bytes, int]] = [
    ("poison startsAt", post(body(alert("Poison", "9999-12-31T23:59:59-23:59"))), 400),
    ("poison endsAt", post(body({**alert("Poison"), "endsAt": "9999-12-31T23:00:00-01:00"})), 400),
    ("invalid UTF-8", post(body(alert("Bytes")).replace(b'"Bytes', b'"\xff\xfeBytes')), 400),
    ("broken gzip", post(gzip.compress(body(alert("Gz")))[:-20], b"Content-Encoding: gzip"), 400),
    ("gzip cut after its JSON", post(gzip.compress(body(alert("GzCut")))[:-8], b"Content-Encoding: gzip"), 400),
    ("gzip with a bad CRC", post(gzip.compress(body(alert("GzCrc")))[:-8] + b"\0" * 8, b"Content-Encoding: gzip"), 400),
    ("br", post(body(alert("Br")), b"Content-Encoding: br"), 400),
    ("not JSON", post(b'{"alerts": ['), 400),
    ("non-UTF-8 bearer", post(body(alert("Auth")), auth=b"Bearer \xff" + TOKEN.encode()), 401),
    ("empty bearer", post(body(alert("Auth")), auth=b"Bearer "), 401),
    ("token in a bad header", post(body(alert("H")), b"X-Copy: Bearer " + TOKEN.encode() + b"\x01"), 400),
    ("header without colon", post(body(alert("H")), b"Authorization Bearer " + TOKEN.encode()), 400),
    ("over-long header", post(body(alert("H")), b"X-Long: " + TOKEN.encode() * 1000), 400),
    ("bad request line", b"GET /" + TOKEN.encode() + b"\x01 HTTP/1.1\r\nHost: k\r\n\r\n", 400),
    ("non-ASCII digit id", get("/api/v1/incidents/%D9%A1"), 404),
    ("full-width id", get("/incidents/%EF%BC%91"), 404),
    ("signed id", get("/api/v1/incidents/+1"), 404),
]


@pytest.fixture
def kubebot(tmp_path: Path) -> KubebotProcess:
    (tmp_path / "token").write_text(TOKEN + "\n")
    closed = free_port()  # nothing listens there: every page on that route fails
    config = {
        "auth": {"bearer_token_file": str(tmp_path / "token")},
        "notify": {
            "routes": [
                {
                    "matchers": ['name=~"(a+)+$"'],  # catastrophic with backtracking; linear in RE2
                    "urls": [f"json://kubebot:{PASSWORD}@127.0.0.1:{closed}/hook"],
                    "continue": True,
                }
            ],
            "default_urls": [f"jsonl://{tmp_path}/pages.jsonl"],
            "backoff_initial_seconds": 0.1,
            "backoff_max_seconds": 0.2,
            "max_attempts": 3,
            "timeout_seconds": 2,
        },
    }
    return KubebotProcess.create(tmp_path, config)


def paged(tmp_path: Path, name: str) -> bool:
    deadline = time.monotonic() + WAIT
    sink = tmp_path / "pages.jsonl"
    while time.monotonic() < deadline:
        if sink.exists() and name in sink.read_text():
            return True
        time.sleep(0.05)
    return False


def dead_letters(client: Client) -> bool:
    """Until the route to the closed port has given up (so Apprise has logged every attempt)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        metrics = client.exchange(get("/metrics")).decode()
        if any(line.startswith("kubebot_dead_letters_total{") for line in metrics.splitlines()):
            return True
        time.sleep(0.05)
    return False


def test_after_every_hostile_input_a_normal_alert_is_paged_and_no_secret_is_ever_printed(
    kubebot: KubebotProcess, tmp_path: Path
) -> None:
    kubebot.start()
    try:
        client = Client(kubebot.port)
        answered = {name: status_of(client.exchange(data)) for name, data, _ in HOSTILE}
        client.abort_upload(post(body(alert("Aborted"))))
        # Matches the route (pages to the closed port), and one that makes a backtracking regex explode.
        regex = client.exchange(post(body(alert("Regex", name="a" * 30), alert("Regex", name="a" * 40 + "!"))))
        assert dead_letters(client)
        normal = client.exchange(post(body(alert("NormalAfterHostile"), group_key="normal")))
        assert paged(tmp_path, "NormalAfterHostile")
        ready = status_of(client.exchange(get("/readyz")))
        kubebot.stop()
        kubebot.start()
        again = client.exchange(post(body(alert("NormalAfterRestart"), group_key="again")))
        assert paged(tmp_path, "NormalAfterRestart")
        ready_again = status_of(client.exchange(get("/readyz")))
    finally:
        kubebot.stop()
    assert answered == {name: status for name, _, status in HOSTILE}
    assert [status_of(regex), status_of(normal), ready, status_of(again), ready_again] == [200] * 5
    output = kubebot.log()
    seen = [
        secret for secret in (TOKEN, PASSWORD) if secret in output or any(secret.encode() in a for a in client.answers)
    ]
    assert ([], "Traceback" in output) == (seen, False)
