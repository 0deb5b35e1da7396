"""The columns the leaderboards read, a frame normalised to them, and its aggregation over seeds."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from benchmarks.leaderboard import stats
from benchmarks.store import setting_at_edge

ENTRY_COLUMNS = ("method", "variant", "preset")  # what identifies a competitor
SETTING_COLUMNS = ("head", "labels", "points", "t2")  # shown as extra row columns when used
AGG_KEYS = ["method", "variant", "preset", "metric", "head", "labels", "points", "t2", "t"]
# at_edge: how many of the n seeds chose a hyper-parameter at an end of its grid; edge_n: of how many
# seeds the rows record it at all (0: the number involves no selection on a grid).
AGG_COLUMNS = [*AGG_KEYS, "mean", "std", "n", "ci_low", "ci_high", "at_edge", "edge_n"]  # the per-page CSV
PRIMARY_METRIC = "accuracy"
# Columns a frame may lack (older stores, hand-made frames) and what they mean then.
OPTIONAL_COLUMNS = {
    "variant": "", "preset": "", "head": None, "labels": None, "points": None, "t": math.nan, "t2": math.nan,
    "command": "", "commit": "", "config_hash": "", "config": "", "setting": "",
    "pretrain_wall_time_s": math.nan, "images_per_s": math.nan, "wall_time_s": math.nan,
}  # fmt: skip


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every column the leaderboards read, missing settings as ''/NaN."""
    df = frame.copy()
    for col, default in OPTIONAL_COLUMNS.items():
        if col not in df.columns:
            df[col] = default
    for col in ("variant", "preset", "command", "commit", "config_hash", "config"):
        df[col] = df[col].fillna("").astype(str)
    # '' rather than None: groupby drops None keys and strings sort with strings.
    df["head"] = df["head"].where(df["head"].notna(), "").astype(str)
    for col in ("labels", "points"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    # Rounded so 0.30000000000000004 and 0.3 are the same column.
    for col in ("t", "t2"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64").round(6)
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype("float64")
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce").astype("int64")
    # 1.0 / 0.0 / NaN: the sum counts edges, the count the seeds that record a selection.
    df["at_edge"] = df["setting"].map(lambda s: math.nan if (e := setting_at_edge(s)) is None else float(e))
    return df


def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof=1), count and 95% interval over seeds of every (entry, setting, metric, t)."""
    return aggregate_normalised(normalise(frame))


def aggregate_normalised(df: pd.DataFrame) -> pd.DataFrame:
    """``aggregate`` of a frame already normalised (``normalise``)."""
    keys = ["dataset", "protocol", *AGG_KEYS]
    if df.empty:
        return pd.DataFrame(columns=[*keys, *AGG_COLUMNS[len(AGG_KEYS):]])
    # Summed in seed order: the same numbers give the same last bit however the frame is ordered
    # (a figure records a digest of its means, so a shuffled store must not redraw it).
    ordered = df.sort_values(["seed", "value"], kind="stable")
    grouped = ordered.groupby(keys, dropna=False, sort=True)
    out = grouped.agg(mean=("value", "mean"), std=("value", "std"), n=("value", "count"),
                      at_edge=("at_edge", "sum"), edge_n=("at_edge", "count")).reset_index()
    for col in ("n", "at_edge", "edge_n"):
        out[col] = out[col].astype("int64")
    out["ci_low"], out["ci_high"] = stats.confidence_intervals(out["mean"], out["std"], out["n"])
    return out


def metric_order(metrics: Iterable[str]) -> list[str]:
    """The metrics, the primary one first, the rest sorted."""
    rest = sorted(set(metrics) - {PRIMARY_METRIC})
    return ([PRIMARY_METRIC] if PRIMARY_METRIC in set(metrics) else []) + rest
