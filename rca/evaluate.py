"""Offline root-cause ranking on case directories, and its accuracy over labelled cases."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rca.cases import Case, CaseError, load_case
from rca.model import RootCause
from rca.ranking import DEFAULT_CONFIG, RankingConfig, rank

TOP_K = (1, 3, 5)


@dataclass(frozen=True)
class CaseResult:
    name: str
    system: str
    fault: str
    position: int | None  # 1-based position of the labelled service; None if absent
    seconds: float  # ranking only
    seconds_with_loading: float
    error: str | None = None  # the case could not be read


def rank_case(case: Case, config: RankingConfig = DEFAULT_CONFIG) -> list[RootCause]:
    return rank(case.table, case.inject_time, case.edges, config=config)


def run_rca(case_dir: Path) -> dict[str, object]:
    """`kubebot rca CASE_DIR`: {"ranking": [{"service", "score", "evidence"}]}, best first."""
    ranking = rank_case(load_case(case_dir))
    return {"ranking": [cause.to_json() for cause in ranking]}


def labelled_case_dirs(cases_dir: Path) -> list[Path]:
    """Every directory below `cases_dir` (itself included) that has a label.json."""
    return sorted(path.parent for path in cases_dir.rglob("label.json"))


def evaluate_cases(case_dirs: Iterable[Path], config: RankingConfig = DEFAULT_CONFIG) -> list[CaseResult]:
    """Rank each labelled case; a case that cannot be read is kept, with its error."""
    results = []
    for case_dir in case_dirs:
        started = time.perf_counter()
        try:
            case = load_case(case_dir)
            if case.label is None:
                raise CaseError(f"{case_dir}: no label.json")
        except CaseError as error:
            results.append(CaseResult(case_dir.name, "unreadable", "unreadable", None, 0.0, 0.0, str(error)))
            continue
        loaded = time.perf_counter()
        ranking = rank_case(case, config)
        ranked = time.perf_counter()
        services = [cause.service for cause in ranking]
        label = case.label
        position = services.index(label.service) + 1 if label.service in services else None
        results.append(CaseResult(case.name, label.system, label.fault, position, ranked - loaded, ranked - started))
    return results


def accuracy(positions: Sequence[int | None]) -> dict[str, float]:
    """AC@k: share of cases with the cause in the top k; Avg@5: mean of AC@1..AC@5."""

    def ac(k: int) -> float:
        return sum(1 for p in positions if p is not None and p <= k) / len(positions)

    result = {f"AC@{k}": ac(k) for k in TOP_K}
    result["Avg@5"] = sum(ac(k) for k in range(1, 6)) / 5
    return result


def report(results: Sequence[CaseResult]) -> str:
    """A table: overall, per system, per fault type, per system and fault."""
    unreadable = [r for r in results if r.error is not None]
    results = [r for r in results if r.error is None]
    if not results:
        return "\n".join(["no readable labelled cases found", *(f"skipped: {r.error}" for r in unreadable)])
    groups: dict[str, list[CaseResult]] = {"overall": list(results)}
    for r in results:
        groups.setdefault(f"system {r.system}", []).append(r)
    for r in sorted(results, key=lambda r: r.fault):
        groups.setdefault(f"fault {r.fault}", []).append(r)
    for r in sorted(results, key=lambda r: (r.system, r.fault)):
        groups.setdefault(f"  {r.system} / {r.fault}", []).append(r)
    width = max(len(name) for name in groups)
    lines = [f"{'':{width}}  cases  AC@1  AC@3  AC@5  Avg@5"]
    for name, members in groups.items():
        scores = accuracy([m.position for m in members])
        lines.append(
            f"{name:{width}}  {len(members):5d}  "
            + "  ".join(f"{scores[k]:.2f}" for k in ("AC@1", "AC@3", "AC@5"))
            + f"  {scores['Avg@5']:.2f}"
        )
    median = statistics.median(r.seconds for r in results)
    slowest = max(r.seconds for r in results)
    with_loading = statistics.median(r.seconds_with_loading for r in results)
    lines.append(
        f"median time per case {median:.3f} s ranking ({with_loading:.3f} s with loading), slowest {slowest:.3f} s"
    )
    lines.extend(f"skipped: {r.error}" for r in unreadable)
    return "\n".join(lines)


def run_eval(cases_dir: Path) -> str:
    """`kubebot rca-eval CASES_DIR`: the report over every labelled case below it."""
    return report(evaluate_cases(labelled_case_dirs(cases_dir)))
