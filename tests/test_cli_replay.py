"""`kubebot replay` runs the pipeline on a body and prints decisions, sending nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES

GROUP_OF_THREE = FIXTURES / "alertmanager" / "alertmanager_webhook_sample_group3.json"


def replay(payload: Path, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`kubebot replay` as a user runs it."""
    command = [sys.executable, "-m", "receiver.cli", "replay", str(payload)]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def replay_group_of_three(tmp_path: Path, config_text: str) -> subprocess.CompletedProcess[str]:
    """The three-alert group replayed under `config_text`, which must succeed."""
    config = tmp_path / "c.yaml"
    config.write_text(config_text)
    done = replay(GROUP_OF_THREE, config)
    assert done.returncode == 0, done.stderr
    return done


def test_replay_prints_one_decision_per_alert_with_redacted_routes(tmp_path: Path) -> None:
    done = replay_group_of_three(
        tmp_path,
        "notify:\n"
        "  routes: [{matchers: ['namespace=\"payments\"'], urls: ['json://user:pw@127.0.0.1:9/x']}]\n"
        f"  default_urls: ['jsonl://{tmp_path}/n.jsonl']\n",
    )
    decisions = json.loads(done.stdout)
    assert [(d["alertname"], d["decision"], d["reason"]) for d in decisions] == [
        ("PodCrashLooping", "notify", None)
    ] * 3
    assert set(decisions[0]) == {
        "fingerprint",
        "alertname",
        "decision",
        "reason",
        "rule",
        "routes",
        "root_causes",
        "enrichment",
    }
    assert decisions[2]["routes"][0].startswith("json://<redacted:")
    assert "pw" not in done.stdout
    assert not (tmp_path / "n.jsonl").exists()


def test_replay_of_a_bad_body_exits_1_naming_the_field(tmp_path: Path) -> None:
    payload = tmp_path / "bad.json"
    payload.write_text('{"alerts": [{"status": "maybe"}]}')
    done = replay(payload)
    assert done.returncode == 1
    assert "alerts[0].status" in done.stderr


def test_replay_decides_held_alerts_as_if_the_grace_period_had_passed(tmp_path: Path) -> None:
    done = replay_group_of_three(
        tmp_path,
        "suppression:\n"
        "  resolved_grace_seconds: 60\n"
        "  rules: [{name: drop-warnings, matchers: ['severity=\"warning\"'], action: drop}]\n"
        f"notify: {{default_urls: ['jsonl://{tmp_path}/n.jsonl']}}\n",
    )
    decisions = [(d["decision"], d["reason"], d["rule"]) for d in json.loads(done.stdout)]
    assert decisions == [("suppress", "rule", "drop-warnings")] * 2 + [("notify", None, None)]
