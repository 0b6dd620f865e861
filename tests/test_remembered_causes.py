"""A remembered cause joins the fresh ranking after it, and never pushes it aside."""

from __future__ import annotations

from rca.model import RootCause
from receiver.pipeline.remembered import same_scope, with_remembered
from receiver.store.base import ConfirmedCause

AT = 1_795_000_000.0  # 2026-11-18
LABELS = {"alertname": "HighErrorRate", "namespace": "shop", "service": "checkout"}


def _confirmed(cause: str, by: str = "ana", at: float = AT) -> ConfirmedCause:
    return ConfirmedCause(cause, by, at, "HighErrorRate", LABELS)


def test_fresh_evidence_pointing_elsewhere_stays_first() -> None:
    fresh = (RootCause("payments", 0.8, ("error ratio up first",)),)
    ranked = with_remembered(fresh, [_confirmed("cart")])
    assert [(c.service, c.evidence) for c in ranked] == [
        ("payments", ("error ratio up first",)),
        ("cart", ("confirmed by ana on 2026-11-18",)),
    ]
    assert ranked[1].score < ranked[0].score


def test_a_fresh_cause_confirmed_before_gains_the_evidence_and_keeps_its_place() -> None:
    fresh = (RootCause("payments", 0.8), RootCause("cart", 0.7, kind="Deployment", namespace="shop"))
    ranked = with_remembered(fresh, [_confirmed("Deployment shop/cart", by="bo"), _confirmed("Deployment shop/cart")])
    assert [(c.service, c.score, c.evidence) for c in ranked] == [
        ("payments", 0.8, ()),
        ("cart", 0.7, ("confirmed by bo on 2026-11-18",)),
    ]


def test_a_confirmed_cause_applies_in_the_same_namespace_or_for_the_same_service() -> None:
    assert same_scope(LABELS, {**LABELS, "pod": "x"})
    assert same_scope({"service": "checkout"}, {"service": "checkout", "namespace": "other"})
    assert not same_scope(LABELS, {"alertname": "HighErrorRate", "namespace": "billing", "service": "ledger"})
