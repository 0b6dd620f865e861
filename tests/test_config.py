"""Config: embedded defaults, env overrides, secrets from files, every problem with its path."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from receiver.app import Credentials
from receiver.config import (
    BOUNDS,
    DEFAULT_SINK_URL,
    ConfigError,
    check_environment,
    load,
    load_file,
    numeric_keys,
    read_secret,
)

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


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    """What `load` refuses the text for (it must refuse it)."""
    with pytest.raises(ConfigError) as raised:
        load(text, environ or {})
    return raised.value.problems


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
    problems = problems_of(text, {"KUBEBOT_STORE__NOPE": "1"})
    assert [p.split(":")[0] for p in problems] == [
        "server.bogus",
        "notify.routes[0].matchers[0]",
        "suppression.rules[0].action",
        "graph.static_edges[0]",
        "store.nope",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("server: {port: 70000}", "server.port: must be between 0 and 65535"),
        ("server: {port: yes}", "server.port: expected int, got bool"),
        ("store: [1]", "store: expected a mapping"),
        ("- just a list", "$: expected a mapping of sections"),
        ("server: {port: [", "server: not valid YAML at line 1, column 17"),
        ("auth: {basic: {username: am}}", "auth.basic: username and password_file go together"),
        (
            "suppression: {rules: [{name: r, matchers: [], expires: tomorrow}]}",
            "suppression.rules[0].expires: expected an RFC 3339",
        ),
        ("suppression: {rules: [{matchers: []}]}", "suppression.rules[0].name: required"),
        ("store: {url: 'mysql://db/kb'}", "store.url: must be a postgresql:// URL"),
        ("store: {lease_seconds: 15}", "store.lease_seconds: must be more than twice notify.timeout_seconds"),
    ],
)
def test_invalid_values_are_named(text: str, problem: str) -> None:
    problems = problems_of(text)
    assert any(p.startswith(problem) for p in problems), problems


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


# ---- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "   ", "\n", " \t\r\n\n"])
@pytest.mark.parametrize("key", ["bearer_token_file", "basic.password_file"])
def test_an_empty_or_blank_secret_file_is_a_problem_named_by_its_key(tmp_path: Path, key: str, content: str) -> None:
    secret = tmp_path / "secret"
    secret.write_text(content)
    auth = (
        f"{{bearer_token_file: '{secret}'}}"
        if key == "bearer_token_file"
        else (f"{{basic: {{username: am, password_file: '{secret}'}}}}")
    )
    config = load(f"auth: {auth}\nstore: {{path: '{tmp_path}/kb.db'}}", {})
    problems = check_environment(config)
    assert [f"auth.{key}"] == [p.split(":")[0] for p in problems]
    assert "empty" in problems[0]


def test_the_database_url_comes_from_the_environment_and_then_the_store_path_is_not_checked(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a directory")
    (tmp_path / "password").write_text("\n")
    config = load(
        f"store: {{path: '{tmp_path}/plain/sub/kb.db', password_file: '{tmp_path}/password'}}",
        {"KUBEBOT_STORE__URL": "postgresql://kubebot@db.example:5432/kubebot"},
    )
    problems = check_environment(config)
    assert config.store.url == "postgresql://kubebot@db.example:5432/kubebot"
    assert [p.split(":")[0] for p in problems] == ["store.password_file"]
    assert "empty" in problems[0]


def test_reading_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n")
    with pytest.raises(ConfigError):
        read_secret(str(tmp_path / "token"))


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer    ", "bearer \t"])
def test_an_empty_bearer_token_is_never_accepted(header: str) -> None:
    assert Credentials(bearer_token="").accepts(header) is False


@pytest.mark.parametrize(
    ("key", "yaml_key"),
    [
        ("auth.bearer_token_file", "auth: {bearer_token_file: '%s'}"),
        ("auth.basic.password_file", "auth: {basic: {username: am, password_file: '%s'}}"),
        ("kubernetes.kubeconfig", "kubernetes: {kubeconfig: '%s'}"),
        ("kubernetes.token_file", "kubernetes: {token_file: '%s'}"),
    ],
)
def test_a_missing_referenced_file_is_a_problem_named_by_its_key(tmp_path: Path, key: str, yaml_key: str) -> None:
    config = load(yaml_key % (tmp_path / "absent") + f"\nstore: {{path: '{tmp_path}/kb.db'}}", {})
    assert [f"{key}: {tmp_path / 'absent'} does not exist"] == check_environment(config)


def test_a_store_path_below_a_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a directory")
    config = load(f"store: {{path: '{tmp_path}/plain/sub/kb.db'}}", {})
    assert [f"store.path: cannot create {tmp_path}/plain/sub: {tmp_path}/plain is not a directory"] == (
        check_environment(config)
    )


def test_the_defaults_pass_in_a_fresh_directory_whose_data_directory_is_yet_to_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert check_environment(load("", {})) == []
    assert not (tmp_path / "data").exists()  # checking creates nothing


# ---- YAML errors --------------------------------------------------------------------------------


def test_a_yaml_error_names_the_line_and_never_echoes_it() -> None:
    text = 'server: {port: 8080}\nnotify:\n  default_urls: ["json://am:hunter2@10.0.0.1/hook"\n  timeout_seconds: 5\n'
    problems = problems_of(text)
    assert problems == ["notify: not valid YAML at line 4, column 3 (in what opens at line 3)"]


def test_a_yaml_constructor_error_does_not_echo_the_tag() -> None:
    problems = problems_of("store: !!python/object:hunter2 {}\n")
    assert problems == ["store: not valid YAML at line 1, column 8"]


def test_a_config_file_that_is_not_utf8_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"server: {host: \xff}\n")
    with pytest.raises(ConfigError) as raised:
        load_file(path, {})
    assert raised.value.problems == ["$: not UTF-8 text (byte 15)"]


# ---- bounds -------------------------------------------------------------------------------------


def test_every_numeric_field_has_a_documented_range() -> None:
    assert [key for key in numeric_keys() if key not in BOUNDS] == []


def test_every_range_names_a_numeric_field() -> None:
    assert sorted(set(BOUNDS) - set(numeric_keys())) == []


def test_the_embedded_defaults_are_within_every_range() -> None:
    assert load("", {}).notify.backoff_max_seconds == 600.0


WINDOW = "suppression: {maintenance: [{name: w, matchers: [], %s}]}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("notify: {backoff_initial_seconds: 1.0e+15}", "notify.backoff_initial_seconds: must be between 0.01 and 3600"),
        ("notify: {backoff_initial_seconds: -1}", "notify.backoff_initial_seconds: must be between 0.01 and 3600"),
        ("notify: {backoff_max_seconds: .inf}", "notify.backoff_max_seconds: must be between 0.1 and 86400"),
        ("notify: {backoff_max_seconds: .nan}", "notify.backoff_max_seconds: must be between 0.1 and 86400"),
        (
            "notify: {backoff_initial_seconds: 60, backoff_max_seconds: 30}",
            "notify.backoff_initial_seconds: must not exceed notify.backoff_max_seconds",
        ),
        ("notify: {max_attempts: 1000000}", "notify.max_attempts: must be between 1 and 100000"),
        ("server: {port: -1}", "server.port: must be between 0 and 65535"),
        ("server: {body_read_timeout_seconds: 0}", "server.body_read_timeout_seconds: must be between 0.1 and 3600"),
        ("server: {idle_timeout_seconds: .inf}", "server.idle_timeout_seconds: must be between 0.1 and 3600"),
        ("server: {max_connections: 0}", "server.max_connections: must be between 1 and 65535"),
        (
            "server: {max_body_bytes: 2048, max_inflight_body_bytes: 1024}",
            "server.max_inflight_body_bytes: must be at least server.max_body_bytes",
        ),
        ("store: {retention_days: 1.0e+12}", "store.retention_days: must be between 0.01 and 3650"),
        (
            "suppression: {heartbeat: {missing_after_seconds: 1.0e+12}}",
            "suppression.heartbeat.missing_after_seconds: must be between 1 and 604800",
        ),
        ("suppression: {flapping: {window_seconds: .inf}}", "suppression.flapping.window_seconds: must be between"),
        ("suppression: {flapping: {window_seconds: .nan}}", "suppression.flapping.window_seconds: must be between"),
        ("suppression: {flapping: {max_changes: 0}}", "suppression.flapping.max_changes: must be between 1 and 100"),
        ("suppression: {digest_interval_seconds: 0.5}", "suppression.digest_interval_seconds: must be 0 (off)"),
        ("rca: {step_seconds: 1}\nprometheus: {window_seconds: 604800}", "rca.step_seconds: prometheus.window"),
        (WINDOW % "timezone: ../../etc/passwd", "suppression.maintenance[0].timezone: must be an IANA"),
        (WINDOW % "timezone: /etc/localtime", "suppression.maintenance[0].timezone: must be an IANA"),
        (WINDOW % "timezone: Mars/Olympus", "suppression.maintenance[0].timezone: must be an IANA"),
        (WINDOW % "from: '25:99', to: '04:00'", "suppression.maintenance[0].from: must be a time HH:MM"),
        (WINDOW % "from: '02:00', to: '24:60'", "suppression.maintenance[0].to: must be a time HH:MM"),
        (WINDOW % "from: 2:00, to: '04:00'", "suppression.maintenance[0].from: must be a time HH:MM"),
        (WINDOW % "from: '02:00'", "suppression.maintenance[0]: from and to go together"),
        (WINDOW % "from: '02:00', to: '02:00'", "suppression.maintenance[0].to: must differ"),
        (WINDOW % "days: [sat, funday], from: '02:00', to: '04:00'", "suppression.maintenance[0].days[1]: must be"),
        (
            WINDOW % "start: 2026-11-26T00:00:00Z, end: 2026-11-25T00:00:00Z",
            "suppression.maintenance[0].start: must be before end",
        ),
        (WINDOW % "end: 9999-12-31T23:59:59-23:59", "suppression.maintenance[0].end: must be between 1970-01-01"),
        (
            "suppression: {rules: [{name: r, matchers: [], expires: 0001-01-01T00:00:00+01:00}]}",
            "suppression.rules[0].expires: must be between 1970-01-01 and 9000-01-01",
        ),
        ("notify: {routes: [{matchers: ['a=~\"(x)\\\\1\"'], urls: []}]}", "notify.routes[0].matchers[0]: bad regular"),
    ],
)
def test_an_absurd_value_is_refused_with_its_key_path(text: str, problem: str) -> None:
    problems = problems_of(text)
    assert [problem] == [p[: len(problem)] for p in problems]


def test_times_are_kept_in_utc() -> None:
    config = load("suppression: {rules: [{name: r, matchers: [], expires: '2027-01-01T01:00:00+01:00'}]}", {})
    expires = config.suppression.rules[0].expires
    assert (datetime(2027, 1, 1, tzinfo=UTC), UTC) == (expires, expires.tzinfo if expires else None)
