"""Config: embedded defaults, env overrides, secrets from files, every problem with its path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from receiver.config import DEFAULT_SINK_URL, ConfigError, load, load_file, read_secret

FULL_EXAMPLE = """
server:   {host: 127.0.0.1, port: 8080, max_body_bytes: 10485760}
auth:     {bearer_token_file: null, basic: {username: null, password_file: null}}
store:    {path: ./data/kubebot.db}
kubernetes: {mode: auto, kubeconfig: null, host: null}
prometheus: {url: null}
traces:   {jaeger: {url: null}, tempo: {url: null}}
logs:     {loki: {url: null}}
enrichment: {timeout_seconds: 5}
graph:    {static_edges: [[frontend, checkout]]}
rca:
  service_label: service
  signals:
    - {name: cpu, query: 'sum by (service) (rate(cpu[1m]))'}
suppression:
  rules:
    - {name: drop-info, matchers: ['severity="info"'], action: drop, expires: 2027-01-01T00:00:00Z}
  maintenance:
    - {name: db-upgrade, matchers: ['namespace="db"'], start: 2026-11-25T00:00:00Z, end: 2026-11-26T00:00:00Z}
    - name: weekly
      matchers: ['namespace=~"db|cache"']
      days: [sat, sun]
      from: "02:00"
      to: "04:00"
      timezone: Europe/Berlin
  flapping: {max_changes: 4, window_seconds: 1800}
  resolved_grace_seconds: 60
  symptom_hold_seconds: 30
  heartbeat: {matchers: ['alertname="Watchdog"'], missing_after_seconds: 600}
notify:
  routes: [{matchers: ['severity="critical"'], urls: ["json://127.0.0.1:9000/hook"]}]
  default_urls: []
"""


def test_empty_document_gives_the_embedded_defaults() -> None:
    config = load("", {})
    assert (config.server.host, config.server.port, config.store.path) == (
        "127.0.0.1",
        8080,
        "./data/kubebot.db",
    )
    assert config.notify.default_urls == (DEFAULT_SINK_URL,)
    assert config.server.max_body_bytes == 10 * 1024 * 1024


def test_the_design_documents_example_is_valid() -> None:
    config = load(FULL_EXAMPLE, {})
    assert config.graph.static_edges == (("frontend", "checkout"),)
    assert config.suppression.maintenance[1].from_ == "02:00"
    assert str(config.notify.routes[0].matchers[0]) == 'severity="critical"'
    assert config.notify.default_urls == ()


def test_environment_overrides_any_key_with_yaml_typed_values() -> None:
    config = load(
        "server: {port: 8080}",
        {
            "KUBEBOT_SERVER__PORT": "9090",
            "KUBEBOT_AUTH__BASIC__USERNAME": "am",
            "KUBEBOT_AUTH__BASIC__PASSWORD_FILE": "/run/pw",
            "HOME": "/root",
        },
    )
    assert (config.server.port, config.auth.basic.username) == (9090, "am")


def test_every_problem_is_reported_with_its_key_path() -> None:
    text = """
server: {bogus: 1}
notify:
  routes: [{matchers: ['severity=~"("'], urls: [x]}]
suppression:
  rules: [{name: r, matchers: [], action: nuke}]
graph: {static_edges: [[a]]}
"""
    with pytest.raises(ConfigError) as raised:
        load(text, {"KUBEBOT_STORE__NOPE": "1"})
    assert [p.split(":")[0] for p in raised.value.problems] == [
        "server.bogus",
        "notify.routes[0].matchers[0]",
        "suppression.rules[0].action",
        "graph.static_edges[0]",
        "store.nope",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("server: {port: 70000}", "server.port: must be 0..65535"),
        ("server: {port: yes}", "server.port: expected int, got bool"),
        ("store: [1]", "store: expected a mapping"),
        ("- just a list", "$: expected a mapping of sections"),
        ("server: {port: [", "$: not valid YAML"),
        ("auth: {basic: {username: am}}", "auth.basic: username and password_file go together"),
        (
            "suppression: {rules: [{name: r, matchers: [], expires: tomorrow}]}",
            "suppression.rules[0].expires: expected an RFC 3339",
        ),
        ("suppression: {rules: [{matchers: []}]}", "suppression.rules[0].name: required"),
    ],
)
def test_invalid_values_are_named(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(text, {})
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems


def test_secrets_are_read_from_files_without_the_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("abc123\n")
    assert read_secret(str(tmp_path / "token")) == "abc123"
    assert read_secret(None) is None


def test_check_config_exits_0_for_a_valid_file_and_1_listing_problems(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(FULL_EXAMPLE)
    bad.write_text("server: {port: -1, colour: blue}\n")
    ok = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "check-config", str(good)],
        capture_output=True,
        text=True,
    )
    not_ok = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "check-config", str(bad)],
        capture_output=True,
        text=True,
    )
    assert (ok.returncode, not_ok.returncode) == (0, 1)
    assert not_ok.stdout.splitlines() == ["server.colour: unknown key"]


def test_load_file_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("server: {port: 1234}")
    assert load_file(path, {}).server.port == 1234
