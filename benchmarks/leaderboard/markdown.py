"""Numbers as text: cells, markdown and plain-text tables, one metric as a grid, pivot tables."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

import pandas as pd

from benchmarks.leaderboard import stats
from benchmarks.leaderboard.aggregate import SETTING_COLUMNS
from benchmarks.leaderboard.plots import entry_name, format_t, is_accuracy, is_missing, setting_text

K = TypeVar("K")  # a cell's key in a table

EDGE_MARK = "‡"
DASH = "–"  # std of a single seed, or a quantity not recorded


# -- formatting ------------------------------------------------------------------


def format_number(x: float, metric: str) -> str:
    """A mean or std as shown: accuracies in % with 2 decimals, anything else with 4."""
    return f"{100 * x:.2f}" if is_accuracy(metric) else f"{x:.4f}"


class Cell(NamedTuple):
    """One aggregated number: mean, std, count and 95% interval over seeds (a row of ``aggregate``)."""

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float
    at_edge: int = 0  # seeds whose selection sat at an end of its grid

    @classmethod
    def of(cls, rec: dict) -> Cell:
        return cls(rec["mean"], rec["std"], int(rec["n"]), rec["ci_low"], rec["ci_high"], int(rec.get("at_edge", 0)))


def format_cell(cell: Cell, metric: str, bold: bool = False, better_than_next: bool = False) -> str:
    """``mean ± std [95% CI] (n)``; accuracies in %, std '–' and no interval for a single seed.

    ``better_than_next`` appends a dagger: significantly better than the next entry (paired test).
    A cell some of whose seeds chose a hyper-parameter at an end of its grid gets ``EDGE_MARK``.
    """
    if cell.n == 0 or math.isnan(cell.mean):
        return ""
    m = format_number(cell.mean, metric)
    shown = f"**{m}**" if bold else m
    if cell.n < 2 or math.isnan(cell.std):
        text = f"{shown} ± {DASH} ({cell.n})"
    else:
        text = (f"{shown} ± {format_number(cell.std, metric)} [{format_number(cell.ci_low, metric)}, "
                f"{format_number(cell.ci_high, metric)}] ({cell.n})")
    return text + (" †" if better_than_next else "") + (f" {EDGE_MARK}" if cell.at_edge else "")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Markdown lines of a pipe table; '|' in a cell escaped."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return lines


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], n_left: int) -> str:
    """Aligned plain text: the first ``n_left`` columns left-aligned, the rest right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [
            c.ljust(w) if i < n_left else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


# -- one metric as a table -----------------------------------------------------------


def used_settings(agg: pd.DataFrame) -> list[str]:
    """The setting columns not empty in ``agg``."""
    return [c for c in SETTING_COLUMNS if agg[c].map(setting_text).ne("").any()]


def _column_axis(agg: pd.DataFrame) -> str:
    """What the value columns run over: the diffusion time t, else the number of trajectory points."""
    return "points" if agg["t"].isna().all() and agg["points"].notna().any() else "t"


def _value_columns(agg: pd.DataFrame, axis: str) -> list[tuple[str, float | None]]:
    """(header, value of the axis) per column, plus 'value' for rows without one."""
    values = sorted(agg[axis].dropna().unique())
    if axis == "t":
        cols: list[tuple[str, float | None]] = [(format_t(t), float(t)) for t in values]
    else:
        cols = [(f"K={int(k)}", int(k)) for k in values]
    if agg[axis].isna().any() or not cols:
        cols.append(("value", None))
    return cols


@dataclass
class Grid:
    """One metric laid out as rows (entry + used settings) x value columns."""

    settings: list[str]  # setting columns shown (those not empty for this metric)
    rows: list[tuple]  # (method, variant, preset, *setting values), sorted
    columns: list[tuple[str, float | None]]  # (header, t or K); None for the 'value' column
    cells: dict[tuple, Cell]  # keyed by (row, t or K)
    seeds: dict[tuple, dict[int, float]] = field(default_factory=dict)  # (row, t or K) -> {seed: value}

    def means(self, rows: Iterable[tuple], t: float | None) -> list[float]:
        found = (self.cells[(r, t)].mean for r in rows if (r, t) in self.cells)
        return [m for m in found if not math.isnan(m)]

    def setting_groups(self) -> list[list[tuple]]:
        """The rows by setting (same head/labels/points): the rows that compete with each other."""
        groups: dict[tuple, list[tuple]] = {}
        for row in self.rows:
            groups.setdefault(row[3:], []).append(row)
        return list(groups.values())


def metric_grid(agg: pd.DataFrame, raw: pd.DataFrame | None = None) -> Grid:
    """The grid of ``agg`` (one metric); ``raw`` (its normalised rows) adds the per-seed values."""
    axis = _column_axis(agg)
    settings = [c for c in used_settings(agg) if c != axis]
    grid = Grid(settings, [], _value_columns(agg, axis), {})

    def key(rec: dict) -> tuple[tuple, float | int | None]:
        row = (rec["method"], rec["variant"], rec["preset"]) + tuple(setting_text(rec[c]) for c in settings)
        return row, None if is_missing(rec[axis]) else (float if axis == "t" else int)(rec[axis])

    rows: dict[tuple, None] = {}  # insertion-ordered set; agg is sorted, so rows are too
    for rec in agg.to_dict(orient="records"):
        row, at = key(rec)
        rows[row] = None
        grid.cells[(row, at)] = Cell.of(rec)
    grid.rows = list(rows)
    grid.seeds = _seed_values(raw, key)
    return grid


def _seed_values(raw: pd.DataFrame | None, key: Callable[[dict], K]) -> dict[K, dict[int, float]]:
    """{key(row): {seed: value}} over the rows of ``raw`` (normalised) that have a value."""
    seeds: dict[K, dict[int, float]] = {}
    for rec in [] if raw is None else raw.to_dict(orient="records"):
        if not math.isnan(rec["value"]):
            seeds.setdefault(key(rec), {})[int(rec["seed"])] = rec["value"]
    return seeds


def _better_than_next(metric: str, cells: dict[K, Cell], seeds: dict[K, dict[int, float]],
                      groups: Iterable[Iterable[K]]) -> set[K]:
    """The cells significantly better than the next-best cell of their group (accuracies only)."""
    if not is_accuracy(metric):
        return set()
    marked: set[K] = set()
    for group in groups:
        present = [c for c in group if c in cells]
        marked |= stats.better_than_next({c: cells[c].mean for c in present}, seeds)
    return marked


def _best_means(grid: Grid, metric: str) -> dict[tuple, str]:
    """{(setting values, t): displayed best mean}, for accuracies only.

    Methods compete within a setting (same head/labels/points), so the best is
    taken per setting and column, and only where at least two rows compete.
    """
    if not is_accuracy(metric):
        return {}
    best = {}
    for members in grid.setting_groups():
        for _, t in grid.columns:
            means = grid.means(members, t)
            if len(means) >= 2:
                best[(members[0][3:], t)] = format_number(max(means), metric)
    return best


def metric_table(agg: pd.DataFrame, metric: str, raw: pd.DataFrame | None = None) -> list[str]:
    """Markdown lines: one row per entry (+ settings), one column per t (or 'value').

    With ``raw`` (the metric's rows, normalised), cells significantly better than the next
    entry of their column get a dagger.
    """
    grid = metric_grid(agg, raw)
    best = _best_means(grid, metric)
    significant = _better_than_next(metric, grid.cells, grid.seeds,
                                    ([(r, t) for r in members] for members in grid.setting_groups()
                                     for _, t in grid.columns))
    header = ["method", "preset", *grid.settings, *(h for h, _ in grid.columns)]
    body = []
    for row in grid.rows:
        cells = []
        for _, t in grid.columns:
            cell = grid.cells.get((row, t))
            bold = cell is not None and best.get((row[3:], t)) == format_number(cell.mean, metric)
            cells.append("" if cell is None else
                         format_cell(cell, metric, bold=bold, better_than_next=(row, t) in significant))
        body.append([entry_name(row[0], row[1]), row[2], *row[3:], *cells])
    return md_table(header, body)


# -- a paper's summary table ---------------------------------------------------------


def pivot_table(agg: pd.DataFrame, metric: str, row: str, columns: Sequence[str],
                hide: Sequence[str] = (), raw: pd.DataFrame | None = None) -> list[str]:
    """Markdown: one row per value of ``row``, one column per entry and combination of ``columns``.

    The shape of a paper's summary table (the DRL paper's Table 1: label counts x
    initialisation x mixup). The best mean of each row is bold for accuracies. Overrides
    named in ``hide`` are left out of the column names (the row or a column already says them).
    With ``raw`` (the normalised rows), a dagger marks a cell significantly better than the
    next-best cell of its row, paired over seeds.
    """
    rows = agg[agg["metric"] == metric]
    if rows.empty:
        return []

    def shown_variant(variant: str) -> str:
        return "; ".join(p for p in variant.split("; ") if p and p.split("=")[0] not in hide)

    def column_name(rec: dict) -> str:
        parts = [entry_name(rec["method"], shown_variant(rec["variant"])) if c == "method"
                 else setting_text(rec[c]) for c in columns]
        return " · ".join(p for p in parts if p)

    cells: dict[tuple[str, str], Cell] = {}
    keys, heads = [], {}
    for rec in rows.sort_values(["method", "variant", *[c for c in columns if c != "method"], row]).to_dict(
            orient="records"):
        key, head = setting_text(rec[row]), column_name(rec)
        if key not in keys:
            keys.append(key)
        heads[head] = None
        cells[(key, head)] = Cell.of(rec)
    keys.sort(key=lambda k: (len(k), k))  # numbers as numbers: 10 < 90 < 100
    seeds = _seed_values(None if raw is None else raw[raw["metric"] == metric],
                         lambda rec: (setting_text(rec[row]), column_name(rec)))
    marked = _better_than_next(metric, cells, seeds, ([(key, h) for h in heads] for key in keys))
    body = []
    for key in keys:
        found = [cells[(key, h)].mean for h in heads if (key, h) in cells]
        best = format_number(max(found), metric) if is_accuracy(metric) and len(found) > 1 else None
        line = [key]
        for h in heads:
            cell = cells.get((key, h))
            line.append("" if cell is None else
                        format_cell(cell, metric, bold=best == format_number(cell.mean, metric),
                                    better_than_next=(key, h) in marked))
        body.append(line)
    return md_table([row, *heads], body)
