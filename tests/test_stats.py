"""Leaderboard statistics against hand-computed values."""

import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.leaderboard.stats import (
    average_ranks,
    better_than_next,
    confidence_interval,
    confidence_intervals,
    paired_p_value,
    significantly_better,
)


def test_confidence_interval_is_students_t():
    # mean 0.93, std 0.036056 over 3 seeds; t_{0.975, 2} = 4.302653 from the tables.
    lo, hi = confidence_interval(0.93, 0.036056, 3)
    half = 4.302653 * 0.036056 / math.sqrt(3)
    assert lo == pytest.approx(0.93 - half, abs=1e-6) and hi == pytest.approx(0.93 + half, abs=1e-6)
    lo, hi = confidence_interval(1.0, 2.0, 30)  # t_{0.975, 29} = 2.045230
    assert hi - 1.0 == pytest.approx(2.045230 * 2.0 / math.sqrt(30), abs=1e-5)
    assert all(math.isnan(x) for x in confidence_interval(0.5, math.nan, 1))


def test_confidence_intervals_of_many_means_at_once():
    # Rows as aggregate() gives them: 3 seeds, 30 seeds, one seed, 2 seeds without spread.
    low, high = confidence_intervals([0.93, 1.0, 0.5, 0.7], [0.036056, 2.0, math.nan, 0.0], [3, 30, 1, 2])
    half = 4.302653 * 0.036056 / math.sqrt(3)  # t_{0.975, 2} from the tables
    assert (low[0], high[0]) == pytest.approx((0.93 - half, 0.93 + half), abs=1e-6)
    assert high[1] - 1.0 == pytest.approx(2.045230 * 2.0 / math.sqrt(30), abs=1e-5)
    assert math.isnan(low[2]) and math.isnan(high[2])
    assert (low[3], high[3]) == (0.7, 0.7)


def test_paired_t_test_matches_the_closed_form_for_three_seeds():
    better, worse = {0: 1.0, 1: 2.0, 2: 3.5}, {0: 0.5, 1: 1.8, 2: 2.9}
    diffs = [0.5, 0.2, 0.6]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    t = mean / (sd / math.sqrt(3))
    # With 2 degrees of freedom, P(T > t) = (1 - t / sqrt(t^2 + 2)) / 2.
    assert paired_p_value(better, worse) == pytest.approx((1 - t / math.sqrt(t * t + 2)) / 2, rel=1e-6)
    assert significantly_better(better, worse)  # p = 0.0345
    assert not significantly_better(worse, better)


def test_paired_test_needs_two_shared_seeds_and_handles_constant_differences():
    assert math.isnan(paired_p_value({0: 1.0, 1: 2.0}, {1: 0.0, 2: 0.0}))
    assert not significantly_better({0: 1.0}, {0: 0.0})
    # Better by the same 5 of 450 test images in every seed, one side stored as float32: the t statistic
    # is about 1e6 and would give p ~ 1e-12; the sign test over 3 seeds gives 1/8, not significant.
    correct = {0: 436, 1: 431, 2: 435}
    worse = {s: float(np.float32(k / 450)) for s, k in correct.items()}
    better = {s: (k + 5) / 450 for s, k in correct.items()}
    assert paired_p_value(better, worse) == pytest.approx(0.125)
    assert not significantly_better(better, worse)
    assert paired_p_value(worse, better) == 1.0
    assert paired_p_value({0: 0.8, 1: 0.7}, {0: 0.8, 1: 0.7}) == 1.0  # no difference at all
    assert paired_p_value({s: 0.9 for s in range(5)}, {s: 0.8 for s in range(5)}) == pytest.approx(1 / 32)


def test_average_ranks_over_cells_then_datasets():
    cells = pd.DataFrame([
        # dataset a: two cells; A wins one, B the other; C last in both
        ("a", "c1", "A", 0.9), ("a", "c1", "B", 0.8), ("a", "c1", "C", 0.1),
        ("a", "c2", "A", 0.7), ("a", "c2", "B", 0.8), ("a", "c2", "C", 0.1),
        # dataset b: one cell; A and B tie (rank 1.5 each), C last
        ("b", "c1", "A", 0.5), ("b", "c1", "B", 0.5), ("b", "c1", "C", 0.2),
    ], columns=["dataset", "cell", "entry", "mean"])
    ranks = average_ranks(cells)
    assert ranks.to_dict() == {"A": 1.5, "B": 1.5, "C": 3.0}


def test_better_than_next_ranks_by_mean_and_pairs_by_seed():
    means = {"a": 0.9, "b": 0.8, "c": 0.7, "d": math.nan}
    seeds = {"a": {0: 0.9, 1: 0.91, 2: 0.92}, "b": {0: 0.8, 1: 0.8, 2: 0.81}, "c": {0: 0.9, 1: 0.5, 2: 0.7}}
    # a beats b by about 0.1 in every seed (p ~ 5e-4); b vs c is about even with spread: not
    # significant; d has no mean.
    assert better_than_next(means, seeds) == {"a"}
