"""Statistics over seeds for the leaderboards: confidence intervals, paired tests, ranks.

- The 95% confidence interval of a mean over n seeds is Student's t interval,
  mean ± t_{0.975, n-1} · std / sqrt(n) (std with ddof = 1); none for n < 2.
- "Significantly better than the next" is a one-sided paired t-test (scipy's
  ``ttest_rel``) over the seeds both entries share: the same seed means the same
  label subsets and data order, so pairing removes that shared variance.
- Average ranks: within every comparable cell (same setting and t), entries are
  ranked by mean (1 = best, ties share the average rank); a method's rank on a
  dataset is the mean over its cells, and its average rank over datasets the
  mean of those.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

K = TypeVar("K", bound=Hashable)

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05
NO_SPREAD = 1e-6  # paired differences closer than this are equal (values are stored as float32)
PAIRED_TEST = "one-sided paired t-test over shared seeds (scipy.stats.ttest_rel), p < 0.05"


def confidence_intervals(mean: ArrayLike, std: ArrayLike, n: ArrayLike,
                         level: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Student's t interval of every mean of ``n`` values (arrays); NaN where n < 2 or std is NaN."""
    mean, std, n = (np.asarray(a, dtype=np.float64) for a in (mean, std, n))
    dof = np.where(n >= 2, n - 1, np.nan)  # t.ppf of NaN degrees of freedom is NaN
    half = stats.t.ppf(0.5 + level / 2, dof) * std / np.sqrt(np.maximum(n, 1))
    return mean - half, mean + half


def confidence_interval(mean: float, std: float, n: int, level: float = CONFIDENCE) -> tuple[float, float]:
    """``confidence_intervals`` of one mean; (nan, nan) when n < 2."""
    low, high = confidence_intervals([mean], [std], [n], level)
    return float(low[0]), float(high[0])


def p_mean_above(d: np.ndarray, bound: float = 0.0) -> float:
    """One-sided p-value of "mean(d) > bound" (one-sample t-test); nan for fewer than 2 values.
    Accuracies are multiples of one test image, so two entries can differ by the same images in every
    seed: differences without spread (up to float32 storage) make the t statistic infinite and its
    p-value meaningless (3 seeds gave 3e-12), so an exact sign test over the seeds decides then
    (0.125 for 3 seeds all on the claim's side)."""
    d = np.asarray(d, dtype=np.float64)
    if len(d) < 2:
        return math.nan
    if np.ptp(d) <= NO_SPREAD:
        return float(stats.binomtest(int(np.sum(d > bound)), len(d), 0.5, alternative="greater").pvalue)
    return float(stats.ttest_1samp(d, bound, alternative="greater").pvalue)


def paired_p_value(better: Mapping[int, float], worse: Mapping[int, float]) -> float:
    """p-value of "``better`` > ``worse``" paired by seed (the paired t-test, ``p_mean_above`` of the
    differences); nan with fewer than 2 shared seeds."""
    seeds = sorted(set(better) & set(worse))
    return p_mean_above(np.array([better[s] - worse[s] for s in seeds]))


def significantly_better(better: Mapping[int, float], worse: Mapping[int, float],
                         alpha: float = SIGNIFICANCE) -> bool:
    p = paired_p_value(better, worse)
    return not math.isnan(p) and p < alpha


def better_than_next(means: Mapping[K, float], seeds: Mapping[K, Mapping[int, float]],
                     alpha: float = SIGNIFICANCE) -> set[K]:
    """The competitors significantly better than the next one down, ranked by mean (NaN left out)."""
    ranked = sorted((k for k, m in means.items() if not math.isnan(m)), key=lambda k: -means[k])
    return {a for a, b in zip(ranked, ranked[1:]) if significantly_better(seeds.get(a, {}), seeds.get(b, {}), alpha)}


def average_ranks(cells: pd.DataFrame, entry: str = "entry", cell: Sequence[str] = ("cell",),
                  dataset: str = "dataset", value: str = "mean") -> pd.Series:
    """Mean over datasets of each entry's mean rank over that dataset's cells (higher value = rank 1)."""
    if cells.empty:
        return pd.Series(dtype=float)
    ranked = cells.assign(rank=cells.groupby([dataset, *cell])[value].rank(ascending=False, method="average"))
    per_dataset = ranked.groupby([dataset, entry])["rank"].mean()
    return per_dataset.groupby(entry).mean().sort_values()
