"""Log excerpts: last lines, ANSI stripped, errors marked, size bounded, secrets redacted."""

from __future__ import annotations

import pytest

from enrichers.kubernetes.logs_redact import REDACTED, clean_text, log_excerpt, redact_secrets, strip_ansi
from tests.fakes.kube_api import FIXTURES

CRASH_LOG = (FIXTURES / "k8s_pod_logs_previous_crashloop_k3s.txt").read_text()


def excerpt_of(text: str, max_lines: int = 50, max_chars: int = 4000) -> tuple[str, ...]:
    return log_excerpt(text, container="c", previous=False, max_lines=max_lines, max_chars=max_chars).lines


def test_error_lines_of_the_real_crash_log_are_marked() -> None:
    excerpt = log_excerpt(CRASH_LOG, container="api-server", previous=True, max_lines=50, max_chars=4000)
    marked = [excerpt.lines[i] for i in excerpt.error_lines]
    assert marked == [
        "ERROR: Failed to connect to database: connection refused",
        "Database connection failed after 3 retries",
    ]
    assert "! ERROR: Failed to connect to database: connection refused" in excerpt.render()


def test_only_the_last_lines_are_kept() -> None:
    text = "\n".join(f"line {i}" for i in range(100))
    excerpt = log_excerpt(text, container="c", previous=False, max_lines=3, max_chars=4000)
    assert (excerpt.lines, excerpt.truncated) == (("line 97", "line 98", "line 99"), True)


def test_the_excerpt_stays_within_its_size_bound_keeping_the_newest_lines() -> None:
    text = "\n".join(f"{i:03d} " + "x" * 95 for i in range(50))
    lines = excerpt_of(text, max_chars=1000)
    assert sum(len(line) + 1 for line in lines) <= 1000
    assert lines[-1].startswith("049 ")


def test_an_overlong_line_is_cut() -> None:
    (line,) = excerpt_of("y" * 10_000)
    assert len(line) <= 300


def test_ansi_colours_are_stripped() -> None:
    assert strip_ansi("\x1b[31;1mERROR\x1b[0m boom\x1b]0;title\x07") == "ERROR boom"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJhbGci"),
        ("connecting with password=hunter2 to db", "hunter2"),
        ('{"user": "app", "db_password": "s3cr3t-v@lue"}', "s3cr3t"),
        ("DATABASE_URL=postgres://app:pa55word@db:5432/shop", "pa55word"),
        ("using key AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("api_key: sk-live-abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnop"),
        ("token=ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abc"),
        ("-----BEGIN RSA PRIVATE KEY-----MIIEpAIBAAKCAQEA", "MIIEpAIB"),
    ],
)
def test_secret_looking_tokens_are_redacted(line: str, secret: str) -> None:
    redacted = redact_secrets(line)
    assert secret not in redacted
    assert REDACTED in redacted


def test_ordinary_log_lines_are_left_alone() -> None:
    assert CRASH_LOG.splitlines() == [redact_secrets(line) for line in CRASH_LOG.splitlines()]


def test_secrets_never_reach_the_excerpt() -> None:
    lines = excerpt_of("\x1b[33mWARN\x1b[0m login failed for admin password: Tr0ub4dor&3\n")
    assert "Tr0ub4dor" not in "\n".join(lines)


def test_clean_text_bounds_free_text() -> None:
    assert len(clean_text("z" * 1000, 50)) == 50


@pytest.mark.parametrize(
    "line",
    [
        "y" * 200_000,
        "a" * 100_000 + "://" + "b" * 100_000,
        "x" * 50_000 + "password" + "x" * 50_000,
        "Bearer " * 20_000,
    ],
)
def test_pathological_lines_are_redacted_without_catastrophic_backtracking(line: str) -> None:
    # No timing assertion: this test would hang (and hit pytest-timeout) if it backtracked.
    assert len(redact_secrets(line)) <= len(line) + len(REDACTED) * 20_000


def test_a_secret_behind_a_long_key_prefix_is_still_redacted() -> None:
    line = "application_primary_database_connection_password=swordfish"
    assert "swordfish" not in redact_secrets(line)
