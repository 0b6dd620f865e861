"""Robust per-series scores cope with the data production gives."""

from __future__ import annotations

import math

import numpy as np

from rca.model import SignalTable
from rca.scoring import score_series

NORMAL = 30
AFTER = 5


def table_of(series: dict[str, list[float]]) -> SignalTable:
    rows = len(next(iter(series.values())))
    return SignalTable.from_series([60.0 * i for i in range(rows)], series)


INJECT = 60.0 * NORMAL - 1


def noisy(level: float, seed: int, rows: int = NORMAL + AFTER) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(level * (1 + 0.05 * rng.standard_normal(rows)))


def scores(series: dict[str, list[float]], inject: float = INJECT) -> dict[str, float]:
    return {s.column: s.score for s in score_series(table_of(series), inject)}


def test_a_step_scores_far_above_noise() -> None:
    step = noisy(10, 1)[:NORMAL] + [50.0] * AFTER

    result = scores({"a_cpu": step, "b_cpu": noisy(10, 2)})

    assert result["a_cpu"] > 10 * result["b_cpu"]


def test_an_unchanged_flat_series_scores_zero() -> None:
    assert scores({"a_mem": [5.0] * (NORMAL + AFTER)})["a_mem"] == 0.0


def test_a_flat_series_that_moves_a_little_is_not_anomalous() -> None:
    nudged = [100.0] * NORMAL + [101.0] * AFTER

    assert scores({"a_mem": nudged})["a_mem"] < 1


def test_an_all_zero_series_that_wakes_up_scores_high_and_finite() -> None:
    woken = [0.0] * NORMAL + [3.0] * AFTER

    result = scores({"a_cpu": woken})["a_cpu"]

    assert math.isfinite(result)
    assert result > 100


def test_one_spike_after_the_fault_does_not_count() -> None:
    spiky = [*noisy(10, 3)[:NORMAL], 10.0, 10.0, 500.0, 10.0, 10.0]

    assert scores({"a_cpu": spiky})["a_cpu"] < 3


def test_latency_stuck_at_the_top_bucket_is_ignored() -> None:
    latency = [*noisy(0.05, 4)[:NORMAL], 3600.0, 3600.0, 3600.0, 0.05, 0.05]

    assert scores({"a_client_latency_p99": latency})["a_client_latency_p99"] < 3


def test_noise_seen_before_the_fault_is_not_an_anomaly_after_it() -> None:
    bursty = [0.01, 25.0] * (NORMAL // 2) + [0.01, 25.0, 0.01, 25.0, 0.01]

    assert scores({"a_latency_p99": bursty})["a_latency_p99"] < 1.5


def test_empty_series_score_zero() -> None:
    result = scores({"a_cpu": [math.nan] * (NORMAL + AFTER), "b_cpu": noisy(1, 5)})

    assert result["a_cpu"] == 0.0


def test_very_short_normal_window_still_scores() -> None:
    short = [10.0, 10.5, 9.5, 40.0, 41.0]

    result = scores({"a_cpu": short}, inject=150.0)

    assert result["a_cpu"] > 10


def test_no_normal_window_scores_zero() -> None:
    assert scores({"a_cpu": [1.0, 9.0]}, inject=-1.0)["a_cpu"] == 0.0


def test_onset_is_the_first_anomalous_time() -> None:
    step = [*noisy(10, 6)[:NORMAL], 10.0, 60.0, 60.0, 60.0, 60.0]

    (result,) = score_series(table_of({"a_cpu": step}), INJECT)

    assert result.onset == 60.0 * (NORMAL + 1)


def test_a_small_change_unlike_the_peers_stands_out() -> None:
    # cpu drops 20 % in one service, within its own noise over time; the others stay put.
    rng = np.random.default_rng(7)
    series = {f"s{i}_cpu": list(10 * (1 + 0.01 * rng.standard_normal(NORMAL + AFTER))) for i in range(8)}
    series["odd_cpu"] = noisy(10, 8, NORMAL) + [8.0] * AFTER
    series["odd_cpu"][3] = 5.0  # an earlier dip makes 20 % look normal for this series

    (odd,) = [s for s in score_series(table_of(series), INJECT) if s.service == "odd"]

    assert odd.score < 1
    assert odd.peer_score > 3


def test_a_change_every_service_shares_is_not_unusual_among_peers() -> None:
    shifted = {f"s{i}_workload": noisy(10, i, NORMAL) + [7.0] * AFTER for i in range(8)}

    peers = [s.peer_score for s in score_series(table_of(shifted), INJECT)]

    assert max(peers) < 3


def test_too_few_peers_give_no_peer_score() -> None:
    (only,) = score_series(table_of({"a_cpu": noisy(10, 9)}), INJECT)

    assert math.isnan(only.peer_score)
