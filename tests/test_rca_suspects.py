"""Kubernetes objects and services in one ranking (rca.suspects, pure)."""

from __future__ import annotations

from rca.model import RootCause
from rca.suspects import ALERT, Clue, Suspect, blend

NODE_DOWN = Clue("node", "node worker-3 NotReady (NodeStatusUnknown)")


def test_an_object_with_a_fact_outranks_every_metric_anomaly() -> None:
    ranked = [RootCause("checkout", 1.0, ("checkout: cpu 8x baseline",)), RootCause("cart", 0.4)]
    node = Suspect("Node", "worker-3", clues=(NODE_DOWN, Clue(ALERT, "KubeNodeNotReady firing since 12:16 UTC")))

    causes = blend([node], ranked)

    assert [(c.kind, c.service, c.score) for c in causes] == [
        ("Node", "worker-3", 2.0),
        (None, "checkout", 1.0),
        (None, "cart", 0.4),
    ]
    assert causes[0].evidence == (NODE_DOWN.text, "KubeNodeNotReady firing since 12:16 UTC")


def test_an_object_takes_the_metric_score_and_evidence_of_the_service_it_runs_as() -> None:
    ranked = [RootCause("api", 0.7, ("api: memory 3x baseline",)), RootCause("db", 0.2)]
    deployment = Suspect("Deployment", "api", "shop", "api", (Clue("rollout", "rolled out 4 min before the alert"),))

    causes = blend([deployment], ranked)

    assert [(c.kind, c.namespace, c.service, c.score) for c in causes] == [
        ("Deployment", "shop", "api", 1.7),
        (None, None, "db", 0.2),
    ]
    assert causes[0].evidence == ("rolled out 4 min before the alert", "api: memory 3x baseline")


def test_an_alert_about_an_object_counts_as_much_as_its_metrics_not_on_top_of_them() -> None:
    alerted = Suspect("HorizontalPodAutoscaler", "web", "shop", "web", (Clue(ALERT, "KubeHpaMaxedOut"),))

    assert blend([alerted], [RootCause("web", 0.6)])[0].score == 1.0
    assert blend([alerted], [RootCause("web", 1.0)])[0].score == 1.0


def test_clues_of_one_topic_count_once() -> None:
    image = (Clue("image", "image shop/api:2 not found in registry"), Clue("image", "image shop/api:2 back-off"))
    causes = blend([Suspect("Deployment", "api", "shop", clues=image)], [])

    assert causes[0].score == 1.0
    assert len(causes[0].evidence) == 2


def test_one_object_seen_twice_is_one_cause_and_objects_with_nothing_against_them_are_left_out() -> None:
    suspects = [
        Suspect("Node", "worker-3", clues=(NODE_DOWN,)),
        Suspect("Node", "worker-3", clues=(NODE_DOWN, Clue("cordoned", "node worker-3 cordoned", 0.5))),
        Suspect("ReplicaSet", "api-7d9f", "shop"),
    ]

    causes = blend(suspects, [])

    assert [(c.service, c.score, len(c.evidence)) for c in causes] == [("worker-3", 1.5, 2)]


def test_a_service_cause_reads_as_it_always_has() -> None:
    assert RootCause("api", 0.5, ("x",)).to_json() == {"service": "api", "score": 0.5, "evidence": ["x"]}
    assert RootCause("data-0", 1.0, (), "PersistentVolumeClaim", "shop").to_json() == {
        "service": "data-0",
        "score": 1.0,
        "evidence": [],
        "kind": "PersistentVolumeClaim",
        "namespace": "shop",
    }
