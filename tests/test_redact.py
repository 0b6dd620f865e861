"""Secrets never reach logs: Apprise URLs, bearer tokens, password pairs."""

from __future__ import annotations

import pytest

from receiver.redact import redact_event, redact_text, redact_url, register_channel_url, register_secret


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("send to mailto://user:hunter2@mail.example:25?to=a@b failed", "hunter2"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9"),
        ("db password=hunter2 rejected", "hunter2"),
        ("tgram://123456:ABCtoken/987 down", "ABCtoken"),
        ("Authorization: Bearer abc123", "abc123"),  # short tokens too
        ("b'Authorization: Basic dXNlcjpwYXNz\\x01'", "dXNlcjpwYXNz"),
        ("Unsupported URL: json:/user:hunter2@127.0.0.1/x", "hunter2"),  # mistyped, no `://`
        ("Could not load Slack URL: slack://TokenA1/TokenB2/TokenC3", "TokenB2"),
        ("posting to discord://12345/webhookTOKEN failed", "webhookTOKEN"),
        ("POST https://hooks.slack.com/services/T0/B0/XYZ failed", "XYZ"),
    ],
)
def test_free_text_loses_its_secrets(text: str, secret: str) -> None:
    assert secret not in redact_text(text)


def test_a_bare_http_host_stays_readable() -> None:
    assert redact_text("see http://prometheus:9090/") == "see http://prometheus:9090/"


def test_an_http_link_keeps_its_host_but_digests_its_path_where_webhook_tokens_live() -> None:
    redacted = redact_text("see https://hooks.slack.com/services/T0/B0/XYZsecret")
    assert redacted.startswith("see https://hooks.slack.com/<redacted:")
    assert "XYZsecret" not in redacted


def test_a_url_is_shown_as_scheme_and_a_stable_digest() -> None:
    assert redact_url("json://127.0.0.1:9000/hook") == redact_url("json://127.0.0.1:9000/hook")
    assert redact_url("json://127.0.0.1:9000/hook").startswith("json://<redacted:")
    assert redact_url("json://a") != redact_url("json://b")


def test_log_events_redact_secret_keys_and_urls() -> None:
    event = {
        "event": "x",
        "token": "abc",
        "urls": ["json://h/p"],
        "channel_url": "mmost://h/tok",
        "n": 3,
    }
    redacted = dict(redact_event(None, "info", event))
    assert redacted["token"] == "<redacted>"
    assert redacted["urls"][0].startswith("json://<redacted:")
    assert redacted["channel_url"].startswith("mmost://<redacted:")
    assert redacted["n"] == 3


def test_a_registered_secret_is_blanked_wherever_it_appears() -> None:
    register_secret("reg1stered-pw")
    assert redact_text("got 'xreg1stered-pwx'") == "got 'x<redacted>x'"


def test_a_registered_secret_is_blanked_in_its_url_encoded_form_too() -> None:
    register_secret("reg pw/9x")
    assert redact_text("tried reg%20pw%2F9x") == "tried <redacted>"


def test_a_channel_urls_long_parts_are_blanked_one_by_one() -> None:
    register_channel_url("slack://T0AAAAAAA/B0BBBBBBB/partTOKEN123")
    assert redact_text("invalid token (partTOKEN123)") == "invalid token (<redacted>)"


def test_a_short_registered_secret_is_blanked_only_where_it_stands_alone() -> None:
    register_secret("q7")
    assert redact_text("Bearer=q7; q7x; xq7") == "Bearer=<redacted>; q7x; xq7"
