"""What a page says: one alert in full; a group's alerts in one message, the worst first."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

import pytest

from enrichers.base import Enrichment
from receiver.models import parse_webhook
from receiver.pipeline import render
from receiver.pipeline.advice import advice as real_advice
from receiver.pipeline.render import MAX_BUNDLED_ADVICE, PageLinks, RenderStage, page_link, render_message
from receiver.pipeline.stage import Work
from tests.conftest import alerts_paged, fixture_json

GROUP3 = parse_webhook(fixture_json("alertmanager/alertmanager_webhook_sample_group3.json"))
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _works(routes: tuple[str, ...] = ("json://a",)) -> list[Work]:
    return [Work(alert, GROUP3.group, NOW, routes=routes) for alert in GROUP3.alerts]


async def test_a_groups_alerts_go_out_as_one_message_carried_by_the_most_severe() -> None:
    rendered = await RenderStage().exec(_works())
    carriers = [w for w in rendered if w.message is not None]
    assert len(carriers) == 1
    message = carriers[0].message
    assert message is not None
    assert carriers[0].alert.labels["pod"] == "db-0"  # the critical one
    assert message.title == "[FIRING:3] PodCrashLooping payments (critical)"
    assert [w.sent_with for w in rendered] == [carriers[0].alert.fingerprint] * 2 + [None]
    page = {"title": message.title, "message": message.body}
    assert sorted(alerts_paged([page])) == [
        ("PodCrashLooping", "default/api-1"),
        ("PodCrashLooping", "default/api-2"),
        ("PodCrashLooping", "payments/db-0"),
    ]


async def test_a_single_alert_gets_its_own_title() -> None:
    rendered = await RenderStage().exec(_works()[:1])
    assert rendered[0].message is not None
    assert rendered[0].message.title == "[FIRING] PodCrashLooping Pod default/api-1 (warning)"


async def test_alerts_for_different_channels_are_not_bundled() -> None:
    works = _works()
    works[0] = Work(works[0].alert, GROUP3.group, NOW, routes=("json://b",))
    rendered = await RenderStage().exec(works)
    assert sum(w.message is not None for w in rendered) == 2


def _page(*, label: str = "api-1", summary: str = "", generator_url: str = "http://prom/graph?g0.expr=x") -> str:
    """Title and body of the page for one alert whose pod label, summary and source are given."""
    body = fixture_json("alertmanager/alertmanager_webhook_sample_group3.json")
    alert = body["alerts"][0]
    alert["labels"]["pod"] = label
    alert["annotations"] = {"summary": summary} if summary else {}
    alert["generatorURL"] = generator_url
    webhook = parse_webhook({**body, "alerts": [alert]})
    message = render_message(Work(webhook.alerts[0], webhook.group, NOW, routes=("json://a",)).outcome())
    return f"{message.title}\n{message.body}"


MENTIONS = [
    "@everyone",
    "@here",
    "@channel",
    "@all",
    "@Everyone",
    "@alice",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S123>",
    "<@U123ABC>",
    "<@&987654321>",
    "<@!1234>",
    "<#C123>",
]


@pytest.mark.parametrize("mention", MENTIONS)
def test_a_mention_in_a_label_is_shown_but_cannot_ping(mention: str) -> None:
    page = _page(label=f"api {mention} 1")
    assert mention not in page
    assert mention == page.split("api ", 1)[1].split(" 1", 1)[0].replace("\u200b", "")


@pytest.mark.parametrize("mention", MENTIONS)
def test_a_mention_in_an_annotation_cannot_ping(mention: str) -> None:
    assert mention not in _page(summary=f"wake up {mention}, now")


@pytest.mark.parametrize("word", ["@everyone", "@here", "@channel", "@all"])
def test_a_broadcast_mention_glued_to_a_word_cannot_ping(word: str) -> None:
    assert word not in _page(summary=f"hi{word}!")


def test_a_mention_in_a_bundled_alert_cannot_ping() -> None:
    body = fixture_json("alertmanager/alertmanager_webhook_sample_group3.json")
    body["alerts"][0]["annotations"] = {"summary": "ping @here and <!channel>"}
    webhook = parse_webhook(body)
    outcomes = [Work(a, webhook.group, NOW, routes=("json://a",)).outcome() for a in webhook.alerts]
    message = render_message(outcomes[1], *outcomes[:1])
    assert [m for m in ("@here", "<!channel>") if m in message.body] == []


def test_an_email_address_is_left_as_it_is() -> None:
    assert "mail oncall@example.com" in _page(summary="mail oncall@example.com")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "/graph?g0.expr=up",
        "//evil.example/x",
        "http:evil",
        "http://prom/graph\nRunbook: http://evil.example",
        "ftp://prom/graph",
    ],
)
def test_a_source_that_is_not_an_http_link_is_left_out(url: str) -> None:
    page = _page(generator_url=url)
    assert "Source:" not in page
    assert url not in page


def test_an_http_source_is_printed_as_a_link() -> None:
    assert "Source: https://prom.example/graph?g0.expr=up" in _page(
        generator_url="https://prom.example/graph?g0.expr=up"
    )


RUNBOOK = "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping"


def _crash_looping(
    *, status: str = "firing", runbook: str = RUNBOOK, pod: str = "checkout-7d9f-x2", group: int = 1
) -> list[Work]:
    """A group whose critical alert is a pod crash looping, with what the Kubernetes
    enricher found: its container's waiting reason, its Deployment and a rollout minutes before."""
    body = fixture_json("alertmanager/alertmanager_webhook_sample_group3.json")
    alert = body["alerts"][2]
    alert["status"] = status
    alert["labels"] |= {"namespace": "shop", "pod": pod, "container": "app"}
    alert["annotations"] = {"summary": "Pod is crash looping.", "runbook_url": runbook}
    webhook = parse_webhook({**body, "alerts": [*body["alerts"][: group - 1], alert]})
    container = {"name": "app", "waiting_reason": "CrashLoopBackOff", "last_termination": {"reason": "Error"}}
    facts = {
        "pod": {"name": pod, "namespace": "shop", "exists": True, "containers": [container]},
        "workload": {"kind": "Deployment", "name": "checkout", "namespace": "shop", "exists": True},
        "rollout": {
            "deployment": "checkout",
            "revision": 4,
            "previous_revision": 3,
            "started_at": "2026-11-25T14:50:00Z",
        },
    }
    kubernetes = Enrichment.found("kubernetes", facts, ("checkout-7d9f-x2: CrashLoopBackOff",))
    return [
        Work(a, webhook.group, NOW, routes=("json://a",), enrichment={"kubernetes": kubernetes}) for a in webhook.alerts
    ]


def _body(works: list[Work]) -> str:
    messages = [w.message for w in works if w.message is not None]
    assert len(messages) == 1
    assert messages[0] is not None
    return messages[0].body


async def test_a_page_ends_with_what_to_do_and_the_runbook() -> None:
    body = _body(await RenderStage().exec(_crash_looping()))
    assert body.splitlines()[-4:] == [
        "What to do:",
        "  * Revision 4 rolled out just before: roll back to revision 3, the last good one:"
        " kubectl -n shop rollout undo deployment/checkout --to-revision=3",
        "  * Read why the last instance exited: kubectl -n shop logs checkout-7d9f-x2 -c app --previous",
        f"Runbook: {RUNBOOK}",
    ]


async def test_a_group_page_ends_with_what_to_do_about_the_alert_it_leads_with() -> None:
    body = _body(await RenderStage().exec(_crash_looping(group=3)))
    assert body.index("Also in this group:") < body.index("What to do:")
    assert body.splitlines()[-1] == f"Runbook: {RUNBOOK}"
    assert "--to-revision=3" in body.splitlines()[-3]


async def test_a_group_page_also_says_what_to_do_about_its_other_alerts_once_each() -> None:
    """kube-prometheus groups a namespace's alerts: an OOMKilled pod rides on the crash
    loop's page, and its advice is there too, named by its subject."""
    works = _crash_looping(group=3)
    oom = {"name": "app", "last_termination": {"reason": "OOMKilled", "exit_code": 137}, "limits": {"memory": "256Mi"}}
    facts = {
        "pod": {"name": "api-1", "namespace": "default", "exists": True, "containers": [oom]},
        "workload": {"kind": "Deployment", "name": "api", "namespace": "default", "exists": True},
    }
    works[0] = dataclasses.replace(works[0], enrichment={"kubernetes": Enrichment.found("kubernetes", facts, ())})
    body = _body(await RenderStage().exec(works))
    advice = body[body.index("What to do:") :].splitlines()

    assert "--to-revision=3" in advice[1]
    assert any(
        line.startswith("  * Pod default/api-1: Container app was OOMKilled at its memory limit 256Mi")
        and line.endswith("kubectl -n default set resources deployment/api -c app --limits=memory=384Mi")
        for line in advice
    ), advice
    assert len([line for line in advice if "Read why the last instance exited" in line]) == 1


async def test_a_large_group_page_bundles_a_bounded_amount_of_advice_and_works_out_no_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    leading, *_ = _crash_looping()
    others = []
    for i in range(30):  # each at its own limit: thirty different things to say
        oom = {"name": "app", "last_termination": {"reason": "OOMKilled"}, "limits": {"memory": f"{256 + i}Mi"}}
        facts = {"pod": {"name": f"api-{i}", "namespace": "default", "exists": True, "containers": [oom]}}
        labels = {**leading.alert.labels, "pod": f"api-{i}", "namespace": "default"}
        alert = dataclasses.replace(leading.alert, labels=labels, fingerprint=f"oom-{i}")
        kubernetes = Enrichment.found("kubernetes", facts, ())
        others.append(dataclasses.replace(leading, alert=alert, enrichment={"kubernetes": kubernetes}))
    worked_out: list[str] = []

    def advice(*args: Any, **kwargs: Any) -> tuple[str, ...]:
        worked_out.append(args[0].name)
        return real_advice(*args, **kwargs)

    monkeypatch.setattr(render, "advice", advice)
    body = _body(await RenderStage().exec([leading, *others]))
    bundled = [line for line in body.splitlines() if line.startswith("  * Pod default/api-")]
    assert len(bundled) == MAX_BUNDLED_ADVICE
    assert len(worked_out) <= 1 + MAX_BUNDLED_ADVICE  # the leading alert's, then until the list is full


async def test_a_group_page_links_each_rule_s_runbook_once_the_leading_one_first() -> None:
    works = _crash_looping(group=3)
    target_down = "https://runbooks.prometheus-operator.dev/runbooks/general/targetdown"
    for i in (0, 1):
        alert = dataclasses.replace(works[i].alert, annotations={"runbook_url": target_down})
        works[i] = dataclasses.replace(works[i], alert=alert)
    body = _body(await RenderStage().exec(works))

    assert body.splitlines()[-2:] == [f"Runbook: {RUNBOOK}", f"Runbook for PodCrashLooping: {target_down}"]


async def test_a_resolved_page_has_nothing_to_do_but_keeps_its_runbook() -> None:
    body = _body(await RenderStage().exec(_crash_looping(status="resolved")))
    assert "What to do:" not in body
    assert body.splitlines()[-1] == f"Runbook: {RUNBOOK}"


async def test_a_runbook_that_is_not_an_http_link_is_left_out() -> None:
    body = _body(await RenderStage().exec(_crash_looping(runbook="javascript:alert(1)")))
    assert "Runbook" not in body
    assert "javascript" not in body
    assert body.splitlines()[-1].startswith("  * ")


async def test_a_hostile_pod_name_gets_words_but_no_command_and_cannot_ping() -> None:
    body = _body(await RenderStage().exec(_crash_looping(pod="x @here; rm -rf /")))
    advice = body[body.index("What to do:") :].splitlines()[1:3]
    assert advice[1] == "  * Read why the last instance exited"
    assert "@here" not in body
    assert "rm -rf" not in "".join(advice)


def test_a_kubernetes_object_cause_is_named_with_its_kind() -> None:
    from receiver.pipeline.outcome import CauseRecord
    from receiver.pipeline.render import cause_name

    node = CauseRecord(service="worker-3", score=2.0, evidence=("NotReady",), kind="Node")
    claim = CauseRecord(service="data", score=1.5, kind="PersistentVolumeClaim", namespace="shop")
    service = CauseRecord(service="checkout", score=0.8)
    assert [cause_name(c) for c in (node, claim, service)] == [
        "Node worker-3",
        "PersistentVolumeClaim shop/data",
        "checkout",
    ]


LINKS = PageLinks(dashboard="https://kubebot.example.com/", alertmanager="https://am.example.com")
POD_LABELS = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "api-1", "container": "app"}


async def _linked_page(labels: dict[str, str], status: str = "firing", links: PageLinks = LINKS) -> list[str]:
    """The body's lines of the page for one alert with these labels, rendered with these links."""
    body = fixture_json("alertmanager/alertmanager_webhook_sample_group3.json")
    alert = {**body["alerts"][0], "labels": labels, "status": status, "fingerprint": "3f2a9c0d1e4b5a67"}
    webhook = parse_webhook({**body, "status": status, "alerts": [alert]})
    rendered = await RenderStage(links).exec([Work(webhook.alerts[0], webhook.group, NOW, routes=("json://a",))])
    assert rendered[0].message is not None
    return rendered[0].message.body.splitlines()


async def test_a_firing_page_ends_with_links_to_the_dashboard_and_a_prefilled_silence() -> None:
    labels = {**POD_LABELS, "instance": "10.0.0.1:8443", "severity": "warning"}
    lines = await _linked_page(labels)
    assert lines[-2:] == [
        "Dashboard: https://kubebot.example.com/alerts/3f2a9c0d1e4b5a67",
        "Silence: https://am.example.com/#/silences/new?filter="
        + quote('{alertname="KubePodCrashLooping",container="app",namespace="shop",pod="api-1"}', safe=""),
    ]


async def test_without_external_urls_a_page_has_no_such_links() -> None:
    lines = await _linked_page(POD_LABELS, links=PageLinks())
    assert not [line for line in lines if line.startswith(("Dashboard:", "Silence:"))]
    assert (
        len(await _linked_page(POD_LABELS, links=PageLinks(dashboard="https://kubebot.example.com"))) == len(lines) + 1
    )


async def test_a_resolved_page_has_no_silence_or_dashboard_link() -> None:
    lines = await _linked_page(POD_LABELS, status="resolved")
    assert not [line for line in lines if line.startswith(("Dashboard:", "Silence:"))]


async def test_hostile_label_values_are_encoded_in_the_silence_link() -> None:
    hostile = 'x" }\n@everyone <script>&pod=y'
    lines = await _linked_page({**POD_LABELS, "pod": hostile})
    link = next(line for line in lines if line.startswith("Silence: ")).removeprefix("Silence: ")
    assert page_link(link) == link  # one plain http(s) URL on its own line
    query = link.partition("?filter=")[2]
    assert all(c.isalnum() or c in "%-._~" for c in query)
    assert unquote(query) == (
        '{alertname="KubePodCrashLooping",container="app",namespace="shop",pod=' + json.dumps(hostile) + "}"
    )
