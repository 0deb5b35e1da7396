"""The terminal summary: a plain-text table per metric of one (dataset, protocol)."""

from __future__ import annotations

import pandas as pd

from benchmarks.leaderboard.aggregate import aggregate, metric_order
from benchmarks.leaderboard.markdown import format_number, metric_grid, text_table
from benchmarks.leaderboard.plots import entry_name, is_accuracy


def format_summary(frame: pd.DataFrame, dataset: str, protocol: str) -> str:
    """A plain-text table per metric: entries x t, mean over seeds (accuracies in %)."""
    agg = aggregate(frame)
    agg = agg[(agg["dataset"] == dataset) & (agg["protocol"] == protocol)]
    if agg.empty:
        return f"no results for {dataset} / {protocol}"
    blocks = []
    for metric in metric_order(agg["metric"]):
        grid = metric_grid(agg[agg["metric"] == metric])
        header = ["method", "preset", *grid.settings, *(h for h, _ in grid.columns)]
        body = []
        for row in grid.rows:
            cells = [grid.cells.get((row, t)) for _, t in grid.columns]
            body.append(
                [
                    entry_name(row[0], row[1]),
                    *row[2:],
                    *("" if c is None else format_number(c.mean, metric) for c in cells),
                ]
            )
        unit = " (%)" if is_accuracy(metric) else ""
        title = f"{dataset} / {protocol}: {metric}{unit}, mean over seeds"
        blocks.append(title + "\n" + text_table(header, body, n_left=2 + len(grid.settings)))
    return "\n\n".join(blocks)
