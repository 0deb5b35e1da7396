"""Which figures a page has, each planned (file, caption, how to draw it, digest) but not drawn."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks.leaderboard import plots
from benchmarks.leaderboard.aggregate import metric_order
from benchmarks.leaderboard.markdown import used_settings

BAR_METRICS = ("attention",)  # distributions over t: bars per entry rather than lines
BUDGET_METRIC = "best_t_accuracy"  # what the budget axis shows: each method at its best t


@dataclass(frozen=True)
class Figure:
    """A figure of a page, not drawn yet: ``draw(path, digest=digest)`` draws it."""

    file: str
    caption: str
    draw: Callable[..., None]
    digest: str  # of everything the figure shows: its rows, its kind and title, the plotting code


_CAPTIONS = {"heatmap": "{} over pairs of t", "bars": "{} over t", "vs_t": "{} against t",
             "vs_points": "{} against the number of points K",
             "vs_labels": "{} against the number of labelled images"}


def _figure_kind(metric: str, rows: pd.DataFrame) -> str | None:
    """Which figure shows a metric, from the shape of its rows (None: a table is enough)."""
    if rows["t2"].notna().any():
        return "heatmap"
    if rows["t"].notna().any():
        return "bars" if metric in BAR_METRICS else "vs_t"
    if rows["points"].nunique() > 1:  # one K (the attention protocol's head): the table says it all
        return "vs_points"
    if rows["labels"].nunique() > 1:
        return "vs_labels"
    return None


@functools.cache
def _plotting_code_digest() -> str:
    """A digest of plots.py: changing how figures are drawn redraws every figure."""
    source = Path(plots.__file__).read_bytes().replace(b"\r\n", b"\n")  # the same on a CRLF checkout
    return hashlib.sha256(source).hexdigest()


def _figure_digest(rows: pd.DataFrame, *arguments: object) -> str:
    digest = hashlib.sha256(_plotting_code_digest().encode())
    digest.update(json.dumps(arguments).encode())
    digest.update(rows.to_csv(index=False, lineterminator="\n").encode())  # floats at full precision
    return digest.hexdigest()


LINE_KINDS = ("vs_t", "vs_points", "vs_labels")  # one line per entry: main entries and variants apart


def plan_figures(agg: pd.DataFrame, title: str, stem: str) -> dict[str, list[Figure]]:
    """The figures of each metric that has any: {metric: [figure, ...]}. A line figure shows the main
    entries (no overrides); a second one, ``..._variants.png``, each variant beside its plain entry."""
    figures: dict[str, list[Figure]] = {}
    for metric in metric_order(agg["metric"]):
        rows = agg[agg["metric"] == metric]
        kind = _figure_kind(metric, rows)
        if kind is None:
            continue
        if kind not in LINE_KINDS:
            figures[metric] = [_one_figure(rows, metric, kind, title, f"{stem}_{metric}_{kind}", _CAPTIONS[kind])]
            continue
        plain, varied = rows[rows["variant"] == ""], set(rows.loc[rows["variant"] != "", "method"])
        parts = [(plain, "", "")] if not plain.empty else []
        if varied:  # named as the main figure when there is no main figure
            parts.append((rows[rows["method"].isin(varied)], "_variants" if parts else "",
                          ", variants beside their plain entry"))
        figures[metric] = [_one_figure(part, metric, kind, title, f"{stem}_{metric}_{kind}{suffix}",
                                       _CAPTIONS[kind] + caption) for part, suffix, caption in parts]
    return figures


def _one_figure(rows: pd.DataFrame, metric: str, kind: str, title: str, name: str, caption: str) -> Figure:
    settings = used_settings(rows)
    if kind == "heatmap":
        draw = functools.partial(plots.plot_heatmaps, rows[rows["t2"].notna()], metric, title)
    elif kind == "bars":
        draw = functools.partial(plots.plot_bars_over_t, rows, metric, title)
    elif kind == "vs_t":
        draw = functools.partial(plots.plot_metric_vs_t, rows, metric, title, settings=settings)
    else:  # "vs_points" or "vs_labels"
        draw = functools.partial(plots.plot_metric_vs_count, rows, metric, title, settings=settings,
                                 axis=kind.removeprefix("vs_"))
    return Figure(f"{name}.png", caption.format(metric), draw, _figure_digest(rows, kind, metric, title, settings))


def budget_figure(agg: pd.DataFrame, title: str, stem: str) -> Figure:
    """Best-t accuracy against images seen (``agg``: ``budget.by_budget`` of a page's rows)."""
    draw = functools.partial(plots.plot_metric_vs_budget, agg, BUDGET_METRIC, title)
    return Figure(f"{stem}_accuracy_vs_budget.png", f"{BUDGET_METRIC} against images seen", draw,
                  _figure_digest(agg, "budget", BUDGET_METRIC, title))
