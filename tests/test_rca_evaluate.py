"""Offline evaluation: accuracy figures, reports, and cases written to disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rca.evaluate import accuracy, evaluate_cases, labelled_case_dirs, report, run_eval, run_rca
from tests.rca_synthetic import SyntheticCase, generate_case


@pytest.mark.parametrize(
    ("positions", "expected"),
    [
        ([1], {"AC@1": 1.0, "AC@3": 1.0, "AC@5": 1.0, "Avg@5": 1.0}),
        ([3], {"AC@1": 0.0, "AC@3": 1.0, "AC@5": 1.0, "Avg@5": 0.6}),
        ([6, None], {"AC@1": 0.0, "AC@3": 0.0, "AC@5": 0.0, "Avg@5": 0.0}),
        ([1, 5], {"AC@1": 0.5, "AC@3": 0.5, "AC@5": 1.0, "Avg@5": 0.6}),
    ],
)
def test_accuracy(positions: list[int | None], expected: dict[str, float]) -> None:
    assert accuracy(positions) == pytest.approx(expected)


def write_case(directory: Path, case: SyntheticCase, label: bool = True) -> Path:
    directory.mkdir(parents=True)
    table = case.table
    lines = [",".join(["time", *table.columns])]
    rows = zip(table.times.tolist(), table.values.tolist(), strict=True)
    lines += [",".join([repr(t), *map(repr, row)]) for t, row in rows]
    (directory / "data.csv").write_text("\n".join(lines))
    (directory / "inject_time.txt").write_text(repr(float(case.inject_time)))
    (directory / "graph.csv").write_text("\n".join(["caller,callee", *(f"{e.caller},{e.callee}" for e in case.edges)]))
    if label:
        text = {"system": "synthetic", "service": case.root_cause, "fault": "cpu"}
        (directory / "label.json").write_text(json.dumps(text))
    return directory


def test_run_rca_ranks_a_case_on_disk(tmp_path: Path) -> None:
    case = generate_case(12, seed=11)

    result = run_rca(write_case(tmp_path / "one", case, label=False))

    ranking = result["ranking"]
    assert isinstance(ranking, list)
    assert ranking[0]["service"] == case.root_cause
    assert sorted(item["service"] for item in ranking) == sorted(case.services)


def test_eval_finds_labelled_cases_at_any_depth(tmp_path: Path) -> None:
    write_case(tmp_path / "a" / "one", generate_case(8, seed=1))
    write_case(tmp_path / "two", generate_case(8, seed=2))
    write_case(tmp_path / "unlabelled", generate_case(8, seed=3), label=False)

    assert [p.name for p in labelled_case_dirs(tmp_path)] == ["one", "two"]


def test_eval_reports_unreadable_cases_instead_of_failing(tmp_path: Path) -> None:
    write_case(tmp_path / "good", generate_case(8, seed=4))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "label.json").write_text('{"system": "s", "service": "x", "fault": "f"}')

    text = run_eval(tmp_path)

    assert text.splitlines()[1].split()[:3] == ["overall", "1", "1.00"]
    assert "skipped:" in text
    assert "data.csv: missing" in text


def test_report_without_cases_says_so() -> None:
    assert report(evaluate_cases([])) == "no readable labelled cases found"
