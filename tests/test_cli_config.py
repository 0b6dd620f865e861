"""`kubebot check-config` and `kubebot serve` refuse the same bad configs, with key paths and
without a traceback or a secret on the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

# A guard only: on a refused config serve exits at once; a serve that starts would hang.
NEVER = 120


def kubebot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`kubebot ...` as a user runs it, without KUBEBOT_* overrides from the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith("KUBEBOT_")}
        | {"PYTHONPATH": str(Path(__file__).parent.parent)},
        timeout=NEVER,
        check=False,
    )


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"server: {{port: {free_port()}}}\nstore: {{path: '{tmp_path}/kb.db'}}\n{text}")
    return path


def test_check_config_refuses_an_empty_token_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  \n")
    config = write_config(tmp_path, f"auth: {{bearer_token_file: '{tmp_path}/token'}}\n")
    done = kubebot("check-config", str(config), cwd=tmp_path)
    assert (done.returncode, [line.split(":")[0] for line in done.stdout.splitlines()]) == (
        1,
        ["auth.bearer_token_file"],
    )


def test_serve_refuses_to_start_with_an_empty_token_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("")
    config = write_config(tmp_path, f"auth: {{bearer_token_file: '{tmp_path}/token'}}\n")
    done = kubebot("serve", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 1
    assert f"auth.bearer_token_file: {tmp_path}/token is empty" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["check-config"], ["serve", "--config"]])
def test_a_missing_secret_and_an_unwritable_store_are_refused_with_their_keys(
    tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "plain").write_text("a file where a directory should be")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"server: {{port: {free_port()}}}\n"
        f"store: {{path: '{tmp_path}/plain/kb.db'}}\n"
        f"auth: {{basic: {{username: am, password_file: '{tmp_path}/absent'}}}}\n"
    )
    done = kubebot(*command, str(config), cwd=tmp_path)
    output = done.stdout if command == ["check-config"] else done.stderr
    assert done.returncode == 1
    assert [p for p in ("auth.basic.password_file: ", "store.path: ") if p not in output] == []
    assert "Traceback" not in done.stdout + done.stderr


def test_check_config_refuses_a_regex_re2_cannot_run_naming_the_matcher(tmp_path: Path) -> None:
    config = write_config(tmp_path, "notify: {routes: [{matchers: ['job=~\"(a)\\\\1\"'], urls: []}]}\n")
    done = kubebot("check-config", str(config), cwd=tmp_path)
    assert (done.returncode, done.stdout.split(":")[0]) == (1, "notify.routes[0].matchers[0]")


def test_a_yaml_error_names_its_line_without_echoing_the_secret_on_it(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text('notify:\n  default_urls: ["json://am:hunter2@10.0.0.1/hook"\n  timeout_seconds: 5\n')
    done = kubebot("check-config", str(config), cwd=tmp_path)
    assert (done.returncode, done.stdout) == (
        1,
        "notify: not valid YAML at line 3, column 3 (in what opens at line 2)\n",
    )
    assert "hunter2" not in done.stdout + done.stderr


def test_check_config_can_skip_the_files_of_another_machine(tmp_path: Path) -> None:
    config = write_config(tmp_path, "auth: {bearer_token_file: /var/run/secrets/kubebot/absent-here}\n")
    done = kubebot("check-config", "--skip-files", str(config), cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"{config}: ok\n")
