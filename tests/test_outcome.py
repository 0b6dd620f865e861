"""The typed outcome: rows stored by earlier versions decode and re-encode unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
import pytest

from enrichers.base import Enrichment
from rca.model import Edge, RootCause
from receiver.models import parse_webhook
from receiver.pipeline.outcome import Decision, GraphRecord, SubjectRecord, decode_outcome
from receiver.pipeline.rank import graph_view
from receiver.pipeline.stage import Work

# What `Work.outcome()` returned (as stored JSON) before the outcome had a type.
STORED_PAGED = (
    '{"fingerprint": "a1b2c3d4e5f60718", "alertname": "KubePodCrashLooping", "decision": "notify", "reason": '
    '"flapping", "rule": "5 changes in 600s", "routes": ["json://<redacted:5905d199>", "mailto://<redacted:0b38c992>"],'
    ' "root_causes": [{"service": "api", "score": 0.9125, "evidence": ["OOMKilled", "error rate up"]}, {"service": '
    '"db", "score": 0.1, "evidence": []}], "enrichment": {"kubernetes": {"source": "kubernetes", "status": "partial", '
    '"facts": {"subject": {"kind": "pod", "name": "api-7d9f-x2"}, "verdict": "pod api-7d9f-x2: CrashLoopBackOff, 5 '
    'restarts", "pod": {"name": "api-7d9f-x2", "namespace": "shop", "exists": true, "phase": "Running", "ready": false,'
    ' "node": "node-1"}, "events": [{"reason": "BackOff", "count": 3, "last_seen": "2025-11-25T15:01:00+00:00", '
    '"message": "back-off"}], "problems": ["events: timeout"]}, "summary": ["pod api-7d9f-x2: CrashLoopBackOff, 5 '
    'restarts"], "reason": null, "elapsed_seconds": 0.1235}, "prometheus": {"source": "prometheus", "status": '
    '"unavailable", "facts": {}, "summary": [], "reason": "timed out after 2s", "elapsed_seconds": 2.0}}, "alert": '
    '{"fingerprint": "a1b2c3d4e5f60718", "status": "firing", "labels": {"alertname": "KubePodCrashLooping", '
    '"namespace": "shop", "pod": "api-7d9f-x2", "severity": "critical"}, "annotations": {"summary": "api is crash '
    'looping", "runbook_url": "https://runbooks/x"}, "startsAt": "2025-11-25T15:00:00.123456+00:00", "endsAt": null, '
    '"generatorURL": "http://prometheus:9090/graph?g0.expr=up"}, "group": {"groupKey": "{}:{alertname=\\"KubePodCrash'
    'Looping\\"}", "receiver": "kubebot", "status": "firing", "groupLabels": {"alertname": "KubePodCrashLooping"}, '
    '"commonLabels": {"severity": "critical"}, "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", '
    '"truncatedAlerts": 2}, "graph": {"nodes": ["api", "db", "web"], "edges": [["api", "db"], ["web", "api"]], '
    '"causes": ["api", "db"]}, "incident_key": "{}:{alertname=\\"KubePodCrashLooping\\"}", "sent_with": null}'
)
STORED_SYMPTOM = (
    '{"fingerprint": "a1b2c3d4e5f60718", "alertname": "KubePodCrashLooping", "decision": "suppress", "reason": '
    '"symptom", "rule": "node:node-1", "routes": [], "root_causes": [], "enrichment": {}, "alert": {"fingerprint": '
    '"a1b2c3d4e5f60718", "status": "firing", "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", '
    '"pod": "api-7d9f-x2", "severity": "critical"}, "annotations": {"summary": "api is crash looping", "runbook_url": '
    '"https://runbooks/x"}, "startsAt": "2025-11-25T15:00:00.123456+00:00", "endsAt": null, "generatorURL": '
    '"http://prometheus:9090/graph?g0.expr=up"}, "group": {"groupKey": "{}:{alertname=\\"KubePodCrashLooping\\"}", '
    '"receiver": "kubebot", "status": "firing", "groupLabels": {"alertname": "KubePodCrashLooping"}, "commonLabels": '
    '{"severity": "critical"}, "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "truncatedAlerts": '
    '2}, "graph": null, "incident_key": "other-key", "sent_with": "ffff"}'
)
STORED_RESOLVED = (
    '{"fingerprint": "4447c9a18db43980", "alertname": "KubeNodeNotReady", "decision": "notify", "reason": null, '
    '"rule": null, "routes": [], "root_causes": [], "enrichment": {}, "alert": {"fingerprint": "4447c9a18db43980", '
    '"status": "resolved", "labels": {"alertname": "KubeNodeNotReady", "node": "node-1"}, "annotations": {}, '
    '"startsAt": "2025-11-25T14:00:00+00:00", "endsAt": "2025-11-25T16:00:00+00:00", "generatorURL": ""}, "group": '
    '{"groupKey": "g", "receiver": "kubebot", "status": "resolved", "groupLabels": {}, "commonLabels": {}, '
    '"commonAnnotations": {}, "externalURL": "", "truncatedAlerts": 0}, "graph": null, "incident_key": "g", '
    '"sent_with": null}'
)


def _crash_looping() -> Work:
    """The alert STORED_PAGED was made from, as the pipeline leaves it."""
    message = parse_webhook(
        {
            "version": "4",
            "groupKey": '{}:{alertname="KubePodCrashLooping"}',
            "receiver": "kubebot",
            "status": "firing",
            "groupLabels": {"alertname": "KubePodCrashLooping"},
            "commonLabels": {"severity": "critical"},
            "externalURL": "http://alertmanager:9093",
            "truncatedAlerts": 2,
            "alerts": [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": "KubePodCrashLooping",
                        "namespace": "shop",
                        "pod": "api-7d9f-x2",
                        "severity": "critical",
                    },
                    "annotations": {"summary": "api is crash looping", "runbook_url": "https://runbooks/x"},
                    "startsAt": "2025-11-25T15:00:00.123456Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
                    "fingerprint": "a1b2c3d4e5f60718",
                }
            ],
        }
    )
    verdict = "pod api-7d9f-x2: CrashLoopBackOff, 5 restarts"
    pod = {"name": "api-7d9f-x2", "namespace": "shop", "exists": True, "phase": "Running", "ready": False}
    facts = {
        "subject": {"kind": "pod", "name": "api-7d9f-x2"},
        "verdict": verdict,
        "pod": {**pod, "node": "node-1"},
        "events": [{"reason": "BackOff", "count": 3, "last_seen": "2025-11-25T15:01:00+00:00", "message": "back-off"}],
    }
    kubernetes = Enrichment.found("kubernetes", facts, (verdict,), problems=("events: timeout",), elapsed=0.123456789)
    unavailable = Enrichment.unavailable("prometheus", "timed out after 2s", 2.00004)
    causes = (RootCause("api", 0.9125, ("OOMKilled", "error rate up")), RootCause("db", 0.1))
    return Work(
        message.alerts[0],
        message.group,
        datetime.now(UTC),
        enrichment={"kubernetes": kubernetes, "prometheus": unavailable},
        root_causes=causes,
        decision=Decision("notify", "flapping", "5 changes in 600s"),
        routes=("json://user:secret@hooks.example/x", "mailto://a:b@c"),
        graph=graph_view((Edge("web", "api", "static"), Edge("api", "db", "static")), causes),
    )


@pytest.mark.parametrize("stored", [STORED_PAGED, STORED_SYMPTOM, STORED_RESOLVED])
def test_an_outcome_stored_before_it_had_a_type_decodes_and_encodes_back_unchanged(stored: str) -> None:
    outcome = decode_outcome(stored)
    # Same keys, same values, same order: only the separators' spaces differ.
    assert outcome.encode() == msgspec.json.encode(json.loads(stored))
    assert outcome.to_json() == json.loads(stored)


def test_the_pipeline_records_the_outcome_it_recorded_before_plus_its_subject() -> None:
    subject = SubjectRecord(kind="Pod", namespace="shop", name="api-7d9f-x2")
    assert _crash_looping().outcome() == msgspec.structs.replace(decode_outcome(STORED_PAGED), subject=subject)
    assert json.loads(_crash_looping().outcome().encode()) == {
        **json.loads(STORED_PAGED),
        "subject": {"kind": "Pod", "namespace": "shop", "name": "api-7d9f-x2"},
    }


def test_a_row_written_before_subjects_is_about_what_its_labels_name() -> None:
    assert decode_outcome(STORED_PAGED).about == SubjectRecord(kind="Pod", namespace="shop", name="api-7d9f-x2")
    assert decode_outcome(STORED_RESOLVED).about == SubjectRecord(kind="Node", name="node-1")


def test_a_decoded_outcome_is_typed() -> None:
    outcome = decode_outcome(STORED_PAGED)
    assert outcome.as_decision() == Decision("notify", "flapping", "5 changes in 600s")
    assert [(c.service, c.evidence) for c in outcome.root_causes] == [
        ("api", ("OOMKilled", "error rate up")),
        ("db", ()),
    ]
    assert outcome.enrichment["prometheus"].reason == "timed out after 2s"
    assert outcome.facts_of("kubernetes")["verdict"] == "pod api-7d9f-x2: CrashLoopBackOff, 5 restarts"
    assert outcome.graph == GraphRecord(
        nodes=("api", "db", "web"), edges=(("api", "db"), ("web", "api")), causes=("api", "db")
    )
    assert (outcome.group.external_url, outcome.paged, outcome.key) == (
        "http://alertmanager:9093",
        True,
        '{}:{alertname="KubePodCrashLooping"}',
    )


def test_the_stored_alert_comes_back_as_the_alert_the_pipeline_saw() -> None:
    work = _crash_looping()
    assert decode_outcome(STORED_PAGED).alert.to_alert() == work.alert
    resolved = decode_outcome(STORED_RESOLVED).alert.to_alert()
    assert (resolved.starts_at, resolved.ends_at) == (
        datetime(2025, 11, 25, 14, tzinfo=UTC),
        datetime(2025, 11, 25, 16, tzinfo=UTC),
    )


def test_a_row_written_before_correlation_belongs_to_its_group() -> None:
    older = {k: v for k, v in json.loads(STORED_RESOLVED).items() if k not in ("incident_key", "graph", "sent_with")}
    outcome = decode_outcome(json.dumps(older))
    assert (outcome.incident_key, outcome.key, outcome.graph) == (None, "g", None)


@pytest.mark.parametrize(
    "damaged",
    [
        '{"enrichment": ["written", "by", "an", "older", "version"]}',
        STORED_RESOLVED.replace('"decision": "notify"', '"decision": "maybe"'),
        STORED_RESOLVED.replace('"enrichment": {}', '"enrichment": ["a", "list"]'),
        "not json",
    ],
)
def test_a_row_of_a_shape_no_version_wrote_is_a_decode_error(damaged: str) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_outcome(damaged)
