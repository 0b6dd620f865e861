"""Ranking invariants and cause-versus-symptom behaviour, on synthetic cases."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rca.model import Edge, SignalTable
from rca.ranking import rank
from tests.rca_synthetic import SyntheticCase, generate_case

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def positions(case: SyntheticCase, **kwargs: object) -> dict[str, int]:
    ranking = rank(case.table, case.inject_time, case.edges, **kwargs)  # type: ignore[arg-type]
    return {cause.service: i for i, cause in enumerate(ranking)}


def renamed(case: SyntheticCase, names: dict[str, str]) -> SyntheticCase:
    columns = tuple(f"{names[SignalTable.service_of(c)]}_{SignalTable.metric_of(c)}" for c in case.table.columns)
    edges = tuple(Edge(names[e.caller], names[e.callee], e.source) for e in case.edges)
    table = SignalTable(case.table.times, columns, case.table.values)
    return SyntheticCase(table, case.inject_time, edges, names[case.root_cause], case.services)


@st.composite
def synthetic_cases(draw: st.DrawFn) -> SyntheticCase:
    services = draw(st.integers(min_value=2, max_value=25))
    case = generate_case(
        services,
        seed=draw(st.integers(min_value=0, max_value=2**16)),
        edges_per_service=draw(st.integers(min_value=1, max_value=4)),
        noise=draw(st.sampled_from([0.01, 0.1, 0.5])),
        steps=draw(st.integers(min_value=4, max_value=60)),
        fault_steps=2,
    )
    # Holes, as when a service had no requests for a minute.
    holes = draw(st.floats(min_value=0.0, max_value=0.5))
    values = case.table.values.copy()
    values[np.random.default_rng(services).random(values.shape) < holes] = np.nan
    table = SignalTable(case.table.times, case.table.columns, values)
    return SyntheticCase(table, case.inject_time, case.edges, case.root_cause, case.services)


@FAST
@given(synthetic_cases())
def test_ranking_is_a_permutation_of_the_services(case: SyntheticCase) -> None:
    ranking = rank(case.table, case.inject_time, case.edges)

    assert sorted(case.services) == sorted(cause.service for cause in ranking)


@FAST
@given(synthetic_cases(), st.randoms(use_true_random=False))
def test_renaming_services_renames_the_result(case: SyntheticCase, random: object) -> None:
    shuffled = list(case.services)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    names = {old: f"renamed-{new}" for old, new in zip(case.services, shuffled, strict=True)}

    original = rank(case.table, case.inject_time, case.edges)
    after = rank(*_args(renamed(case, names)))

    assert [(names[c.service], c.score) for c in original] == [(c.service, c.score) for c in after]


def _args(case: SyntheticCase) -> tuple[SignalTable, float, tuple[Edge, ...]]:
    return case.table, case.inject_time, case.edges


@FAST
@given(st.integers(min_value=3, max_value=40), st.integers(min_value=0, max_value=2**16))
def test_a_step_in_a_leaf_ranks_it_above_callers_that_inherit_it(services: int, seed: int) -> None:
    leaf = services - 1  # the last service calls nobody
    case = generate_case(services, seed, fault_service=leaf)
    ranked = positions(case)
    inheriting = [e.caller for e in case.edges if e.callee == case.root_cause]

    assert ranked[case.root_cause] == 0
    assert all(ranked[caller] > 0 for caller in inheriting)


def test_cause_ranks_first_in_a_large_synthetic_graph() -> None:
    case = generate_case(1000, seed=7, edges_per_service=5)

    assert positions(case)[case.root_cause] == 0


def test_services_without_edges_keep_their_anomaly_rank() -> None:
    case = generate_case(30, seed=3)
    no_edges = SyntheticCase(case.table, case.inject_time, (), case.root_cause, case.services)

    assert positions(no_edges)[case.root_cause] == 0


def test_edges_to_services_outside_the_data_are_ignored_in_the_result() -> None:
    case = generate_case(10, seed=4)
    extra = (*case.edges, Edge("svc0", "database", "kubernetes"))

    ranking = rank(case.table, case.inject_time, extra)

    assert "database" not in {cause.service for cause in ranking}


def test_a_kubernetes_fact_raises_a_quiet_service_to_the_top() -> None:
    case = generate_case(10, seed=5, fault_size=0.0)
    before = positions(case)
    quiet = max(before, key=lambda service: before[service])

    after = positions(case, facts={quiet: ["OOMKilled"]})

    assert after[quiet] == 0


def test_evidence_names_the_signal_and_the_change() -> None:
    case = generate_case(10, seed=6, fault_service=9)

    top = rank(case.table, case.inject_time, case.edges)[0]

    assert top.service == "svc9"
    assert any("cpu" in line and "baseline" in line for line in top.evidence)


def test_evidence_names_callers_that_degraded_after_the_cause() -> None:
    case = generate_case(10, seed=6, fault_service=9)
    callers = {e.caller for e in case.edges if e.callee == "svc9"}

    top = rank(case.table, case.inject_time, case.edges)[0]

    called_by = [line for line in top.evidence if line.startswith("called by")]
    assert callers
    assert called_by
    assert all(caller in called_by[0] for caller in callers)


def test_nothing_anomalous_still_ranks_every_service() -> None:
    times = [60.0 * i for i in range(10)]
    table = SignalTable.from_series(times, {"a_cpu": [1.0] * 10, "b_cpu": [2.0] * 10})

    ranking = rank(table, 300.0)

    assert [cause.service for cause in ranking] == ["a", "b"]
    assert all(cause.score == 0.0 for cause in ranking)


def test_an_empty_table_ranks_nothing() -> None:
    assert rank(SignalTable(np.array([]), (), np.zeros((0, 0))), 0.0) == []


def test_no_rows_after_the_fault_scores_every_service_zero() -> None:
    table = SignalTable.from_series([0.0, 60.0], {"a_cpu": [1.0, 5.0], "b_cpu": [2.0, 2.0]})

    ranking = rank(table, 1000.0, [Edge("a", "b", "static"), Edge("b", "a", "static")])

    assert [(cause.service, cause.score) for cause in ranking] == [("a", 0.0), ("b", 0.0)]


def test_ranking_among_some_services_names_only_them_in_the_order_they_had() -> None:
    case = generate_case(12, seed=6)
    everyone = [c.service for c in rank(case.table, case.inject_time, case.edges)]
    others = [s for s in everyone if s != case.root_cause]
    among = set(others[:5])

    ranking = rank(case.table, case.inject_time, (), among=among)

    assert {c.service for c in ranking} == among
    # Without edges each keeps its own anomaly, scored against every service in the table.
    alone = [c.service for c in rank(case.table, case.inject_time, ())]
    assert [c.service for c in ranking] == [s for s in alone if s in among]


def test_ranking_among_no_service_ranks_nothing() -> None:
    case = generate_case(5, seed=2)

    assert rank(case.table, case.inject_time, case.edges, among=set()) == []
