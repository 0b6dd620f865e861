"""The rest of each kube-prometheus end-to-end row, on issue 15's merged parts (P1 subject
in the headline/API and causal links for suppression, P2 Kubernetes facts per kind, P3
incident-scoped causes, P4 advice). It shares the one run of the stack with
tests/test_e2e_kube_prometheus.py.

Where the parts put things is read in one place each (`headline_lines`, `api_subject`,
`alert_text`, `top_causes`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.kube_prometheus_faults import (
    FAULTS,
    NOT_READY_NODE,
    Fault,
    diagnose,
    per_alert,
    received,
    the_run,
)
from tests.fakes.kube_prometheus_stack import StackResult
from tests.processes import AlertmanagerProcess, PrometheusProcess

pytestmark = pytest.mark.skipif(
    AlertmanagerProcess.binary() is None or not PrometheusProcess.available(),
    reason="Debian prometheus, promtool and prometheus-alertmanager not installed",
)
TOP = 3


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> StackResult:
    return the_run(tmp_path_factory.mktemp("kube-prometheus"))


def ids(fault: Fault) -> str:
    return fault.fault


def headline_lines(run: StackResult, fault: Fault) -> list[str]:
    """Page lines that head an alert of this row: a page's title, the full alert's title
    inside a group's page, a group page's "  - <alertname> ..." line."""
    lines = []
    for page in run.pages:
        for line in [page["title"], *page["message"].splitlines()]:
            if fault.alertname in line.split() or f"- {fault.alertname} " in line:
                lines.append(line)
    return lines


def api_subject(incident: dict[str, Any], alert: dict[str, Any]) -> dict[str, Any] | None:
    """`subject: {kind, namespace, name}` as the API shows it: on the alert, else the incident."""
    found = alert.get("subject") or incident.get("subject")
    return found if isinstance(found, dict) else None


def alert_text(run: StackResult, incident: dict[str, Any], alert: dict[str, Any]) -> str:
    """Everything said about one alert: its enrichment JSON in the API and the page that
    carried it in full (a page whose title names its alertname and subject)."""
    enrichment = json.dumps(per_alert(incident, alert, "enrichments"))
    pages = [f"{p['title']}\n{p['message']}" for p in run.pages]
    carried = [page for page in pages if alert["labels"]["alertname"] in page and _names(page, alert)]
    return "\n".join([enrichment, *carried])


def _names(message: str, alert: dict[str, Any]) -> bool:
    labels = alert["labels"]
    return any(
        labels.get(k) and labels[k] in message
        for k in (
            "pod",
            "deployment",
            "node",
            "persistentvolumeclaim",
            "job_name",
            "horizontalpodautoscaler",
            "statefulset",
            "daemonset",
            "mountpoint",
            "service",
        )
    )


def top_causes(alert: dict[str, Any]) -> list[str]:
    """The causes ranked for this alert (its own neighbourhood's first): a namespace's group,
    one incident, holds several unrelated faults here, more than three top causes can name."""
    return [f"{c['service']} {' '.join(c.get('evidence', []))}" for c in alert["root_causes"][:TOP]]


@pytest.mark.parametrize("fault", FAULTS, ids=ids)
def test_the_headline_names_the_broken_object(run: StackResult, fault: Fault) -> None:
    lines = headline_lines(run, fault)
    assert any(fault.ref in line and fault.kind in line for line in lines), f"{fault.kind} {fault.ref} not in {lines}"


@pytest.mark.parametrize("fault", FAULTS, ids=ids)
def test_the_api_names_the_broken_object(run: StackResult, fault: Fault) -> None:
    for incident, alert in received(run, fault):
        subject = api_subject(incident, alert)
        assert subject is not None, alert["labels"]
        assert (subject["kind"], subject.get("namespace"), subject["name"]) == (fault.kind, fault.namespace, fault.name)


@pytest.mark.parametrize("fault", FAULTS, ids=ids)
def test_every_fault_is_paged(run: StackResult, fault: Fault) -> None:
    for incident, alert in received(run, fault):
        assert per_alert(incident, alert, "decisions")["decision"] == "notify", diagnose(run)


@pytest.mark.parametrize("fault", FAULTS, ids=ids)
def test_the_page_carries_the_fact_an_engineer_looks_up_first(run: StackResult, fault: Fault) -> None:
    for incident, alert in received(run, fault):
        assert fault.fact in alert_text(run, incident, alert)


@pytest.mark.parametrize("fault", FAULTS, ids=ids)
def test_the_top_causes_ranked_for_each_alert_include_the_broken_object_or_what_broke_it(
    run: StackResult, fault: Fault
) -> None:
    for _, alert in received(run, fault):
        causes = top_causes(alert)
        assert any(fault.cause in cause for cause in causes), causes


def test_causes_are_ranked_from_each_incident_s_own_neighbourhood(run: StackResult) -> None:
    """The failed Job's, the NotReady node's and the full claim's incidents do not share one
    cluster-wide list of busy services."""
    rows = [f for f in FAULTS if f.fault in ("failed Job", "NotReady node with pods", "PVC filling up")]
    lists = {tuple(top_causes(received(run, f)[0][1])) for f in rows}
    assert len(lists) == len(rows), lists


@pytest.mark.parametrize("fault", FAULTS, ids=ids)
def test_the_page_says_what_to_do(run: StackResult, fault: Fault) -> None:
    for incident, alert in received(run, fault):
        assert fault.advice in alert_text(run, incident, alert)


def test_no_alert_is_folded_without_a_causal_link_it_names(run: StackResult) -> None:
    """Only the pods on the NotReady node (and their workload) are its symptoms; nothing is
    folded under a volume, a filesystem or an exporter alert."""
    for incident, alert in run.received():
        decision = per_alert(incident, alert, "decisions")
        if decision["reason"] != "symptom":
            continue
        facts = per_alert(incident, alert, "enrichments").get("kubernetes", {}).get("facts", {})
        pod_node = (facts.get("pod") or {}).get("node")
        assert decision["rule"].startswith(f"on node {NOT_READY_NODE}, which is"), (alert["labels"], decision)
        assert pod_node == NOT_READY_NODE, (alert["labels"], facts.get("pod"))
