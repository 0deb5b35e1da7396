"""The pretraining budget as an axis: images seen, read from each run's config.

A run at ``--set iterations=N`` is the same entry as the preset's run at
another budget, not a variant of it: ``split_budget`` separates the overrides
that change the budget from those that change the entry, and ``images_seen``
is iterations x batch size. The claims page groups its contexts by budget and
the probe page draws best-t accuracy against images seen.
"""

from __future__ import annotations

import json

import pandas as pd

from benchmarks.leaderboard import stats

BUDGET_KEYS = ("iterations", "batch_size")  # overrides that change the budget, not the entry
UNRECORDED = -1  # images seen of a run whose config has no budget


def split_budget(variant: str) -> tuple[str, str]:
    """'iterations=5000; latent_dim=2' -> ('latent_dim=2', 'iterations=5000'): the entry, the budget."""
    parts = [p for p in variant.split("; ") if p]
    budget = [p for p in parts if p.split("=", 1)[0] in BUDGET_KEYS]
    return "; ".join(p for p in parts if p not in budget), "; ".join(budget)


def images_seen(config: str) -> int:
    """Iterations x batch size of a run's stored config (JSON); ``UNRECORDED`` if it has none."""
    try:
        budget = json.loads(config)["budget"]
        return int(budget["iterations"]) * int(budget["batch_size"])
    except (ValueError, KeyError, TypeError):
        return UNRECORDED


def by_budget(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, std, n and 95% interval over seeds of ``metric`` per (method, entry variant, preset, head,
    images seen), from normalised store rows; only budgets that were recorded."""
    sel = rows[rows["metric"] == metric]
    columns = ["method", "variant", "preset", "head", "images_seen", "mean", "std", "n", "ci_low", "ci_high"]
    if sel.empty:
        return pd.DataFrame(columns=columns)
    sel = sel.assign(variant=sel["variant"].map(lambda v: split_budget(v)[0]),
                     images_seen=sel["config"].map(images_seen))
    sel = sel[sel["images_seen"] != UNRECORDED].sort_values(["seed", "value"], kind="stable")
    out = sel.groupby(["method", "variant", "preset", "head", "images_seen"], sort=True).agg(
        mean=("value", "mean"), std=("value", "std"), n=("value", "count")).reset_index()
    out["n"] = out["n"].astype("int64")
    out["ci_low"], out["ci_high"] = stats.confidence_intervals(out["mean"], out["std"], out["n"])
    return out[columns]
