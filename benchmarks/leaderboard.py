"""Results store -> ``leaderboards/``: markdown pages, CSV tables and PNG plots.

``generate(store.frame(), "leaderboards")`` writes one page per (dataset,
protocol) with mean ± std (n) over seeds, and an index. The output is a pure
function of the frame (sorted everything, fixed float formats, no timestamps,
PNGs without a software tag), so regenerating from the same store gives the
same bytes and the committed folder diffs cleanly. Pages whose rows left the
store are removed: the folder mirrors the store. Drawing is most of the work, so
a figure is redrawn only when the digest of what it shows (its rows and the
plotting code) differs from the one its PNG records; ``check`` draws nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TypeVar

import pandas as pd

from benchmarks import budget, claims, html, plots, stats
from benchmarks.plots import entry_name, format_t, is_accuracy, is_missing
from benchmarks.plots import setting_text as _setting_text
from benchmarks.store import setting_at_edge

K = TypeVar("K")  # a cell's key in a table

ENTRY_COLUMNS = ("method", "variant", "preset")  # what identifies a competitor
SETTING_COLUMNS = ("head", "labels", "points", "t2")  # shown as extra row columns when used
AGG_KEYS = ["method", "variant", "preset", "metric", "head", "labels", "points", "t2", "t"]
# at_edge: how many of the n seeds chose a hyper-parameter at an end of its grid; edge_n: of how many
# seeds the rows record it at all (0: the number involves no selection on a grid).
AGG_COLUMNS = [*AGG_KEYS, "mean", "std", "n", "ci_low", "ci_high", "at_edge", "edge_n"]  # the per-page CSV
EDGE_MARK = "‡"
GENERATED_SUFFIXES = (".md", ".csv", ".png", ".json")  # what stale-page removal may delete
CONFIG_FOLDER = "configs"  # full settings per config hash, linked from every page
COMMIT_FOLDER = "commits"  # per commit: the runs it produced, linked from every page
CLAIMS_PAGE = "claims.md"  # the papers' claims and their computed verdicts (benchmarks.claims)
TOP_LEVEL_PAGES = ("README.md", CLAIMS_PAGE, "index.html")
PRIMARY_METRIC = "accuracy"
GENERATOR = "python -m benchmarks leaderboard"
BAR_METRICS = ("attention",)  # distributions over t: bars per entry rather than lines
DASH = "–"  # std of a single seed, or a quantity not recorded
# Columns a frame may lack (older stores, hand-made frames) and what they mean then.
_OPTIONAL_COLUMNS = {
    "variant": "", "preset": "", "head": None, "labels": None, "points": None, "t": math.nan, "t2": math.nan,
    "command": "", "commit": "", "config_hash": "", "config": "", "setting": "",
    "pretrain_wall_time_s": math.nan, "images_per_s": math.nan, "wall_time_s": math.nan,
}  # fmt: skip


# -- normalising and aggregating ------------------------------------------------


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every column this module reads, missing settings as ''/NaN."""
    df = frame.copy()
    for col, default in _OPTIONAL_COLUMNS.items():
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
    return _aggregate_normalised(_normalise(frame))


def _aggregate_normalised(df: pd.DataFrame) -> pd.DataFrame:
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


def _metric_order(metrics: Iterable[str]) -> list[str]:
    rest = sorted(set(metrics) - {PRIMARY_METRIC})
    return ([PRIMARY_METRIC] if PRIMARY_METRIC in set(metrics) else []) + rest


# -- formatting ------------------------------------------------------------------


def safe_name(name: str) -> str:
    """A file-system-safe form of a dataset/protocol name ('folder:/x/y' -> 'folder-x-y')."""
    # Leading dots are stripped too, so no name can become '..' or a hidden file.
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "unnamed"


def _fmt_number(x: float, metric: str) -> str:
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
    m = _fmt_number(cell.mean, metric)
    shown = f"**{m}**" if bold else m
    if cell.n < 2 or math.isnan(cell.std):
        text = f"{shown} ± {DASH} ({cell.n})"
    else:
        text = (f"{shown} ± {_fmt_number(cell.std, metric)} [{_fmt_number(cell.ci_low, metric)}, "
                f"{_fmt_number(cell.ci_high, metric)}] ({cell.n})")
    return text + (" †" if better_than_next else "") + (f" {EDGE_MARK}" if cell.at_edge else "")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return lines


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]], n_left: int) -> str:
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


def _used_settings(agg: pd.DataFrame) -> list[str]:
    return [c for c in SETTING_COLUMNS if agg[c].map(_setting_text).ne("").any()]


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
class _Grid:
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


def _metric_grid(agg: pd.DataFrame, raw: pd.DataFrame | None = None) -> _Grid:
    """The grid of ``agg`` (one metric); ``raw`` (its normalised rows) adds the per-seed values."""
    axis = _column_axis(agg)
    settings = [c for c in _used_settings(agg) if c != axis]
    grid = _Grid(settings, [], _value_columns(agg, axis), {})

    def key(rec: dict) -> tuple[tuple, float | int | None]:
        row = (rec["method"], rec["variant"], rec["preset"]) + tuple(_setting_text(rec[c]) for c in settings)
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


def _best_means(grid: _Grid, metric: str) -> dict[tuple, str]:
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
                best[(members[0][3:], t)] = _fmt_number(max(means), metric)
    return best


def metric_table(agg: pd.DataFrame, metric: str, raw: pd.DataFrame | None = None) -> list[str]:
    """Markdown lines: one row per entry (+ settings), one column per t (or 'value').

    With ``raw`` (the metric's rows, normalised), cells significantly better than the next
    entry of their column get a dagger.
    """
    grid = _metric_grid(agg, raw)
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
            bold = cell is not None and best.get((row[3:], t)) == _fmt_number(cell.mean, metric)
            cells.append("" if cell is None else
                         format_cell(cell, metric, bold=bold, better_than_next=(row, t) in significant))
        body.append([entry_name(row[0], row[1]), row[2], *row[3:], *cells])
    return _md_table(header, body)


# -- compute / provenance table ------------------------------------------------------


def _commit_texts(df: pd.DataFrame) -> dict[Path, str]:
    """``commits/<sha>.md``: which runs a commit produced, and how to see its code."""
    runs = df.drop_duplicates(["commit", "dataset", "protocol", *ENTRY_COLUMNS, "seed"])
    texts = {}
    for commit, g in runs.groupby("commit", sort=True):
        if not commit:
            continue
        sha = commit.removesuffix("+dirty")
        lines = [f"# Commit `{commit}`", "",
                 f"The code of these numbers: `git show {sha}` (or `git checkout {sha}`) in a clone of this "
                 "repository." + (" `+dirty`: the working tree had uncommitted changes." if commit != sha else ""),
                 "", "Runs stored from it (seeds per dataset, protocol and entry):", ""]
        body = [[d, p, entry_name(m, v), pr, ",".join(str(x) for x in sorted(gg["seed"]))]
                for (d, p, m, v, pr), gg in g.groupby(["dataset", "protocol", *ENTRY_COLUMNS], sort=True)]
        lines += [*_md_table(["dataset", "protocol", "method", "preset", "seeds"], body), ""]
        texts[Path(COMMIT_FOLDER) / f"{safe_name(commit)}.md"] = "\n".join(lines)
    return texts


def _commit_links(commits: pd.Series) -> str:
    links = [f"[`{c}`](../{COMMIT_FOLDER}/{safe_name(c)}.md)" for c in sorted(set(commits)) if c]
    return ", ".join(links) or DASH


def _config_links(hashes: pd.Series) -> str:
    """Each config hash, linked to its full settings (``_config_texts``)."""
    links = [f"[`{h}`](../{CONFIG_FOLDER}/{safe_name(h)}.json)" for h in sorted(set(hashes)) if h]
    return ", ".join(links) or DASH


def _unique_text(values: pd.Series) -> str:
    return ", ".join(f"`{v}`" for v in sorted(set(values)) if v) or DASH


def _fmt_mean(values: pd.Series, fmt: str) -> str:
    # RunInfo defaults these to 0.0, which means "not measured".
    m = values[values > 0].mean()
    return DASH if math.isnan(m) else format(m, fmt)


def _sweep_trials(configs: pd.Series) -> str:
    """How many Optuna trials chose an entry's settings ('–': the preset's, untuned)."""
    trials = set()
    for text in configs:
        sweep = json.loads(text).get("sweep") if isinstance(text, str) and text else None
        if sweep:
            trials.add(f"{sweep['trials']} ({sweep['study']})")
    return ", ".join(sorted(trials)) or DASH


def compute_table(page: pd.DataFrame) -> list[str]:
    """Per entry: mean wall times and throughput over runs, and the commits/configs used."""
    # One row per run (rows of a run share their provenance).
    runs = page.drop_duplicates([*ENTRY_COLUMNS, "seed"])
    header = [
        "method",
        "preset",
        "runs",
        "pretrain wall time (s)",
        "images/s",
        "protocol wall time (s)",
        "sweep trials",
        "commit",
        "config hash",
    ]
    body = []
    for (method, variant, preset), g in runs.groupby(list(ENTRY_COLUMNS), sort=True):
        body.append(
            [
                entry_name(method, variant),
                preset,
                str(len(g)),
                _fmt_mean(g["pretrain_wall_time_s"], ".1f"),
                _fmt_mean(g["images_per_s"], ".1f"),
                _fmt_mean(g["wall_time_s"], ".1f"),
                _sweep_trials(g["config"]),
                _commit_links(g["commit"]),
                _config_links(g["config_hash"]),
            ]
        )
    return _md_table(header, body)


# -- pages ----------------------------------------------------------------------------


def _commands_section(page: pd.DataFrame) -> list[str]:
    lines = ["## Produced by", ""]
    commands = sorted(set(page["command"]) - {""})
    if not commands:
        return [*lines, "(no command recorded)", ""]
    return [*lines, "```sh", *commands, "```", ""]


def _protocol_class(protocol: str) -> type | None:
    from protocols.base import PROTOCOLS  # the protocols registry, upstream of this module

    try:
        return PROTOCOLS.get(protocol)
    except KeyError:  # a store row of a protocol this checkout no longer has
        return None


def _protocol_notes(protocol: str) -> list[str]:
    """The protocol's own account of how it differs from the papers and their code."""
    notes = getattr(_protocol_class(protocol), "notes", "")
    return ["## Protocol", "", notes.strip(), ""] if notes else []


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
                 else _setting_text(rec[c]) for c in columns]
        return " · ".join(p for p in parts if p)

    cells: dict[tuple[str, str], Cell] = {}
    keys, heads = [], {}
    for rec in rows.sort_values(["method", "variant", *[c for c in columns if c != "method"], row]).to_dict(
            orient="records"):
        key, head = _setting_text(rec[row]), column_name(rec)
        if key not in keys:
            keys.append(key)
        heads[head] = None
        cells[(key, head)] = Cell.of(rec)
    keys.sort(key=lambda k: (len(k), k))  # numbers as numbers: 10 < 90 < 100
    seeds = _seed_values(None if raw is None else raw[raw["metric"] == metric],
                         lambda rec: (_setting_text(rec[row]), column_name(rec)))
    marked = _better_than_next(metric, cells, seeds, ([(key, h) for h in heads] for key in keys))
    body = []
    for key in keys:
        found = [cells[(key, h)].mean for h in heads if (key, h) in cells]
        best = _fmt_number(max(found), metric) if is_accuracy(metric) and len(found) > 1 else None
        line = [key]
        for h in heads:
            cell = cells.get((key, h))
            line.append("" if cell is None else
                        format_cell(cell, metric, bold=best == _fmt_number(cell.mean, metric),
                                    better_than_next=(key, h) in marked))
        body.append(line)
    return _md_table([row, *heads], body)


def _summary_section(protocol: str, agg: pd.DataFrame, raw: pd.DataFrame | None = None) -> list[str]:
    """A protocol's ``summary`` layout ({title, row, columns, metrics}) as pivot tables, if it has one."""
    layout = getattr(_protocol_class(protocol), "summary", None)
    if not layout:
        return []
    lines = [f"## {layout['title']}", ""]
    for metric in layout["metrics"]:
        table = pivot_table(agg, metric, layout["row"], layout["columns"], layout.get("hide", ()), raw)
        if table:
            lines += [f"{metric}{' (%)' if is_accuracy(metric) else ''}:", "", *table, ""]
    return lines


def _page_text(
    dataset: str, protocol: str, page: pd.DataFrame, agg: pd.DataFrame, figures: dict[str, list[_Figure]],
    budget_lines: Sequence[str] = (),
) -> str:
    lines = [
        f"# {dataset} — {protocol}",
        "",
        f"Generated by `{GENERATOR}` from the results store; do not edit by hand.",
        "Cells are mean ± std [95% confidence interval] (n) over seeds: std with ddof=1, the "
        "interval Student's t (– and none for one seed); accuracies in %, the best mean of each "
        "column among rows of the same setting in bold; † marks an entry significantly better "
        f"than the next one in its column ({stats.PAIRED_TEST}). Columns 0.0, 0.1, ... are the "
        "diffusion time t, columns K=... the number of trajectory points.",
        "",
    ]
    lines += _answer_section(agg, page, figures)
    lines += _edge_summary(agg)
    lines += _commands_section(page)
    lines += _protocol_notes(protocol)
    lines += _summary_section(protocol, agg, page)
    lines += budget_lines
    for metric in _metric_order(agg["metric"]):
        lines += [f"## {metric}", ""]
        shown_above = figures.get(metric, [])[1:] if metric == PRIMARY_METRIC else figures.get(metric, [])
        lines += [line for fig in shown_above for line in (f"![{fig.caption}]({fig.file})", "")]
        lines += [*metric_table(agg[agg["metric"] == metric], metric, page[page["metric"] == metric]), ""]
    lines += ["## Compute", "", *compute_table(page), ""]
    return "\n".join(lines)


def _answer_rows(agg: pd.DataFrame) -> tuple[str, pd.DataFrame, str] | None:
    """What a page's answer table shows: (metric, its rows, what they are), or None.

    Best-t accuracy where the protocol chose t on validation (probe, lowlabel); else accuracy at the
    largest number of trajectory points (trajectory). Nothing is chosen on the test split here."""
    if (agg["metric"] == BUDGET_METRIC).any():
        return BUDGET_METRIC, agg[agg["metric"] == BUDGET_METRIC], "test accuracy at the t chosen on validation"
    acc = agg[(agg["metric"] == PRIMARY_METRIC) & agg["points"].notna()]
    if acc["points"].nunique() > 1:
        k = int(acc["points"].max())
        return PRIMARY_METRIC, acc[acc["points"] == k], f"test accuracy with K = {k} points"
    return None


def _answer_section(agg: pd.DataFrame, page: pd.DataFrame, figures: dict[str, list[_Figure]]) -> list[str]:
    """The page's answer first: the main figure and one row per entry, ranked, with its budget."""
    lines = ["## Answer", ""]
    if figures.get(PRIMARY_METRIC):
        main = figures[PRIMARY_METRIC][0]
        lines += [f"![{main.caption}]({main.file})", ""]
    found = _answer_rows(agg)
    if found is None:
        return lines if len(lines) > 2 else []
    metric, rows, what = found
    columns = [c for c in ("head", "labels") if rows[c].map(_setting_text).ne("").any()]
    rows = rows.sort_values(columns or ["method"]).assign(
        column=rows[columns].apply(lambda r: " · ".join(
            _setting_text(v) + (" labels" if c == "labels" else "") for c, v in r.items()), axis=1)
        if columns else "value")
    heads = list(dict.fromkeys(rows.sort_values(columns or ["method"])["column"]))  # head, then labels as numbers
    seen = page.assign(images=page["config"].map(budget.images_seen)).groupby(list(ENTRY_COLUMNS))["images"].agg(
        lambda v: ", ".join(f"{int(n):,}" for n in sorted(set(v)) if n != budget.UNRECORDED) or DASH)
    cells = {(r["method"], r["variant"], r["preset"], r["column"]): Cell.of(r) for r in rows.to_dict(orient="records")}
    means = pd.DataFrame([{"entry": k[:3], "column": k[3], "mean": c.mean} for k, c in cells.items()])
    tables = []
    for title, keep in (("", lambda e: e[1] == ""), ("Variants (overridden settings):", lambda e: e[1] != "")):
        part = means[means["entry"].map(keep)]
        if part.empty:
            continue
        rank = part.assign(rank=part.groupby("column")["mean"].rank(ascending=False, method="average"))
        order = rank.groupby("entry")["rank"].mean().sort_values(kind="stable")
        body = [[entry_name(e[0], e[1]), e[2], seen.get(e, DASH), f"{r:.1f}",
                 *(format_cell(cells[(*e, h)], metric) if (*e, h) in cells else "" for h in heads)]
                for e, r in sorted(order.items(), key=lambda item: (item[1], item[0]))]
        tables += ([title, ""] if title else []) + _md_table(
            ["method", "preset", "images seen", "mean rank", *heads], body) + [""]
    intro = (f"{metric}{' (%)' if is_accuracy(metric) else ''}: {what}, mean ± std [95% interval] (n) over "
             "seeds; entries ranked within each column (1 = best), the mean of those ranks shown.")
    return [*lines, intro, "", *tables]


BUDGET_METRIC = "best_t_accuracy"  # what the budget axis shows: each method at its best t


def _budget_section(page: pd.DataFrame, title: str, stem: str) -> tuple[list[str], _Figure | None]:
    """Best-t accuracy against images seen, when the page holds an entry at two budgets or more."""
    agg = budget.by_budget(page, BUDGET_METRIC)
    if agg.empty or agg.groupby(["method", "variant", "preset"])["images_seen"].nunique().max() < 2:
        return [], None
    draw = functools.partial(plots.plot_metric_vs_budget, agg, BUDGET_METRIC, title)
    figure = _Figure(f"{stem}_accuracy_vs_budget.png", f"{BUDGET_METRIC} against images seen", draw,
                     _figure_digest(agg, "budget", BUDGET_METRIC, title))
    seen = sorted(agg["images_seen"].unique())
    cells = {(r["method"], r["variant"], r["preset"], r["head"], r["images_seen"]): Cell.of(r)
             for r in agg.to_dict(orient="records")}
    rows = sorted({k[:4] for k in cells})
    body = [[entry_name(m, v), p, h, *(format_cell(cells[(m, v, p, h, n)], BUDGET_METRIC)
                                         if (m, v, p, h, n) in cells else "" for n in seen)]
            for m, v, p, h in rows]
    lines = ["## Accuracy against pretraining budget", "",
             f"{BUDGET_METRIC} (%) of every entry at each budget it was run at (images seen in pretraining: "
             "iterations x batch size; runs with `--set iterations=N`), mean ± std [95% interval] (n) over "
             "seeds. A ranking that changes along this axis is an artefact of the budget.", "",
             f"![{figure.caption}]({figure.file})", "",
             *_md_table(["method", "preset", "head", *(f"{int(n):,}" for n in seen)], body), ""]
    return lines, figure


def edge_counts(agg: pd.DataFrame) -> tuple[int, int, int, int]:
    """Cells with a selection at an edge of its grid for some seed, cells that record one; the same
    counted per seed (rows)."""
    known = agg[agg["edge_n"] > 0]
    return (int((known["at_edge"] > 0).sum()), len(known), int(known["at_edge"].sum()),
            int(known["edge_n"].sum()))


def _edge_summary(agg: pd.DataFrame) -> list[str]:
    cells, known, rows, known_rows = edge_counts(agg)
    if not known:
        return []
    return [f"{EDGE_MARK} marks a cell for which, in at least one seed, a hyper-parameter chosen on validation "
            "(the linear head's L2 strength, an SGD head's learning rate, or its epoch: still improving "
            "when training stopped) sat at an end of its grid, so the grid or the training may be too "
            f"short: **{cells} of {known} cells ({100 * cells / known:.1f} %)**; counted per seed, "
            f"{rows} of {known_rows} selections ({100 * rows / known_rows:.1f} %). Each row's `at_edge` is "
            "in `python -m benchmarks results --format csv`.", ""]


def _page_csv(agg: pd.DataFrame) -> str:
    out = agg[AGG_COLUMNS].copy()
    out["head"] = out["head"].replace("", None)  # empty cell, as for labels/points
    # Row order: the groupby order of aggregate(), i.e. sorted by the key columns.
    return out.to_csv(index=False, float_format="%.6f", na_rep="", lineterminator="\n")


def _write(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8"))


@dataclass(frozen=True)
class _Figure:
    """A figure of a page, not drawn yet: ``draw(path, digest=digest)`` draws it."""

    file: str
    caption: str
    draw: Callable[..., None]
    digest: str  # of everything the figure shows: its rows, its kind and title, the plotting code


@dataclass
class _Output:
    """Everything the leaderboards folder holds, by path relative to it; nothing written or drawn."""

    texts: dict[Path, str] = field(default_factory=dict)
    figures: dict[Path, _Figure] = field(default_factory=dict)


def _add_page(out: _Output, dataset: str, protocol: str, page: pd.DataFrame, agg: pd.DataFrame) -> str:
    """Add a (dataset, protocol) page, its CSV and its figures to ``out``; returns the page's text."""
    folder, stem = Path(safe_name(dataset)), safe_name(protocol)
    figures = _plan_figures(agg, f"{dataset} / {protocol}", stem)
    budget_lines, budget_figure = _budget_section(page, f"{dataset} / {protocol}", stem)
    out.figures.update({folder / fig.file: fig for figs in figures.values() for fig in figs})
    if budget_figure is not None:
        out.figures[folder / budget_figure.file] = budget_figure
    text = _page_text(dataset, protocol, page, agg, figures, budget_lines)
    out.texts[folder / f"{stem}.md"] = text
    out.texts[folder / f"{stem}.csv"] = _page_csv(agg)
    return text


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


def _plan_figures(agg: pd.DataFrame, title: str, stem: str) -> dict[str, list[_Figure]]:
    """The figures of each metric that has any: {metric: [figure, ...]}. A line figure shows the main
    entries (no overrides); a second one, ``..._variants.png``, each variant beside its plain entry."""
    figures: dict[str, list[_Figure]] = {}
    for metric in _metric_order(agg["metric"]):
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


def _one_figure(rows: pd.DataFrame, metric: str, kind: str, title: str, name: str, caption: str) -> _Figure:
    settings = _used_settings(rows)
    if kind == "heatmap":
        draw = functools.partial(plots.plot_heatmaps, rows[rows["t2"].notna()], metric, title)
    elif kind == "bars":
        draw = functools.partial(plots.plot_bars_over_t, rows, metric, title)
    elif kind == "vs_t":
        draw = functools.partial(plots.plot_metric_vs_t, rows, metric, title, settings=settings)
    else:  # "vs_points" or "vs_labels"
        draw = functools.partial(plots.plot_metric_vs_count, rows, metric, title, settings=settings,
                                 axis=kind.removeprefix("vs_"))
    return _Figure(f"{name}.png", caption.format(metric), draw, _figure_digest(rows, kind, metric, title, settings))


def _index_text(pages: list[tuple[str, str, pd.DataFrame]], agg: pd.DataFrame) -> str:
    lines = [
        "# Leaderboards",
        "",
        f"This folder is generated by `{GENERATOR}` from the results store; never edit it by",
        "hand: rerun the command, which rewrites every page and removes stale ones.",
        "",
    ]
    if not pages:
        return "\n".join([*lines, "No results in the store yet.", ""])
    lines += [f"[The papers' claims, tested]({CLAIMS_PAGE}): each claim of the two papers, the "
              "comparisons that test it and a computed verdict per dataset, preset and budget.", ""]
    body = []
    for dataset, protocol, page in pages:
        rel = f"{safe_name(dataset)}/{safe_name(protocol)}"
        body.append(
            [
                dataset,
                f"[{protocol}]({rel}.md)",
                str(page["method"].nunique()),
                str(page["seed"].nunique()),
                f"[csv]({rel}.csv)",
            ]
        )
    header = ["dataset", "protocol", "methods", "seeds", "numbers"]
    return "\n".join([*lines, *_md_table(header, body), "", *_rank_section(agg)])


def _rank_section(agg: pd.DataFrame) -> list[str]:
    """Average rank of every entry per protocol, over datasets, on the primary metric: the main
    entries ranked among themselves, then the variants (overridden settings) among all entries."""
    primary = agg[agg["metric"] == PRIMARY_METRIC]
    if primary.empty:
        return []
    lines = [
        f"## Average rank ({PRIMARY_METRIC})",
        "",
        "Per protocol: within every comparable cell (same preset, setting and t) entries are ranked by "
        "mean accuracy (1 = best, ties share the average rank); an entry's rank on a dataset is its mean "
        "over cells, and the number shown its mean over datasets (how many in parentheses). The main "
        "entries (preset settings) are ranked among themselves; each variant is then ranked among the "
        "main entries and the variants.",
        "",
        *_rank_table(primary[primary["variant"] == ""]),
        "",
    ]
    if (primary["variant"] != "").any():
        variants = _rank_table(primary, only_variants=True)
        lines += ["Variants (overridden settings):", "", *variants, ""]
    return lines


def _rank_table(primary: pd.DataFrame, only_variants: bool = False) -> list[str]:
    ranks: dict[str, pd.Series] = {}
    counts: dict[str, pd.Series] = {}
    for protocol, rows in primary.groupby("protocol", sort=True):
        cells = rows.assign(entry=[entry_name(m, v) for m, v in zip(rows["method"], rows["variant"], strict=True)])
        for col in ("head", "labels", "points", "t2", "t"):
            cells[col] = cells[col].map(_setting_text)
        ranks[protocol] = stats.average_ranks(cells, cell=("preset", "head", "labels", "points", "t2", "t"))
        counts[protocol] = cells.groupby("entry")["dataset"].nunique()
    shown = set().union(*(r.index for r in ranks.values()))
    if only_variants:
        shown = {e for e in shown if e.endswith("]")}
    entries = sorted(shown, key=lambda e: (pd.Series([r.get(e, math.inf) for r in ranks.values()]).mean(), e))
    body = [[e, *(f"{ranks[p][e]:.2f} ({counts[p][e]})" if e in ranks[p] else "" for p in ranks)]
            for e in entries]
    return _md_table(["method", *ranks], body)


def _check_unique_paths(pages: list[tuple[str, str, pd.DataFrame]]) -> None:
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for dataset, protocol, _ in pages:
        key = (safe_name(dataset), safe_name(protocol))
        if key in seen and seen[key] != (dataset, protocol):
            raise ValueError(
                f"{dataset!r}/{protocol!r} and {seen[key][0]!r}/{seen[key][1]!r} map to the "
                f"same page {key[0]}/{key[1]}; rename one of them"
            )
        seen[key] = (dataset, protocol)


def _remove_stale(out_dir: Path, keep: set[Path]) -> None:
    """Delete the generated files not in ``keep``, and the folders that leaves empty."""
    stale = [f for f in _generated_files(out_dir) if f not in keep]
    for f in stale:
        f.unlink()
    for folder in sorted({f.parent for f in stale} - {out_dir}):
        if not any(folder.iterdir()):
            folder.rmdir()


def _render(frame: pd.DataFrame) -> _Output:
    """What the leaderboards folder of ``frame`` holds: the texts in full, the figures as plans."""
    df = _normalise(frame)
    agg = _aggregate_normalised(df)
    pages = [(str(d), str(p), g) for (d, p), g in df.groupby(["dataset", "protocol"], sort=True)]
    _check_unique_paths(pages)
    out = _Output({**_config_texts(df), **_commit_texts(df)})
    texts = []
    for dataset, protocol, page in pages:
        page_agg = agg[(agg["dataset"] == dataset) & (agg["protocol"] == protocol)]
        text = _add_page(out, dataset, protocol, page, page_agg)
        texts.append((dataset, protocol, f"{safe_name(dataset)}/{safe_name(protocol)}", text))
    index = _index_text(pages, agg)
    claims_md = claims.claims_page(df, GENERATOR)
    out.texts[Path("README.md")] = index
    out.texts[Path(CLAIMS_PAGE)] = claims_md
    out.texts[Path("index.html")] = html.leaderboard_html(index, texts, claims_md)
    return out


def generate(frame: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write the leaderboards for ``frame`` (``ResultsStore.frame()``) into ``out_dir``.

    Returns every generated path, sorted. Same frame -> same bytes. A figure whose PNG
    already records the digest of its data is left as it is (a run changes a page or two).
    """
    out_dir = Path(out_dir)
    out = _render(frame)
    for rel, text in out.texts.items():
        _write(out_dir / rel, text)
    for rel, figure in out.figures.items():
        if plots.recorded_digest(out_dir / rel) != figure.digest:
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            figure.draw(out_dir / rel, digest=figure.digest)
    generated = {out_dir / rel for rel in [*out.texts, *out.figures]}
    _remove_stale(out_dir, generated)
    return sorted(generated)


def _config_texts(df: pd.DataFrame) -> dict[Path, str]:
    """``configs/<hash>.json``: the full settings behind every config hash a page links to."""
    texts = {}
    for config_hash, text in sorted(set(zip(df["config_hash"], df["config"], strict=True))):
        if config_hash and text:
            body = json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
            texts[Path(CONFIG_FOLDER) / f"{safe_name(config_hash)}.json"] = body
    return texts


def check(frame: pd.DataFrame, out_dir: str | Path) -> list[str]:
    """What differs between ``out_dir`` and what ``frame`` generates: lines like 'changed: x.md'.

    Pages and CSVs are compared byte for byte. Figures are not drawn: their pixels depend on
    the matplotlib build and fonts of the machine, not on the numbers, so a figure is current
    when it records the digest of the data it should show. An empty list means the committed
    leaderboards are what the store gives.
    """
    out_dir = Path(out_dir)
    out = _render(frame)
    fresh = {*out.texts, *out.figures}
    committed = {p.relative_to(out_dir) for p in _generated_files(out_dir)}

    def current(rel: Path) -> bool:
        if rel in out.figures:
            return plots.recorded_digest(out_dir / rel) == out.figures[rel].digest
        return (out_dir / rel).read_bytes() == out.texts[rel].encode("utf-8")

    problems = [f"missing: {rel}" for rel in sorted(fresh - committed)]
    problems += [f"stale (no longer generated): {rel}" for rel in sorted(committed - fresh)]
    problems += [f"changed: {rel}" for rel in sorted(fresh & committed) if not current(rel)]
    return problems


def _generated_files(out_dir: Path) -> list[Path]:
    """The files in ``out_dir`` of the kinds ``generate`` writes: the index and per-folder pages."""
    if not out_dir.is_dir():
        return []
    files = [out_dir / name for name in TOP_LEVEL_PAGES if (out_dir / name).is_file()]
    for folder in sorted(p for p in out_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files += [f for f in sorted(folder.iterdir()) if f.is_file() and f.suffix in GENERATED_SUFFIXES]
    return files


# -- terminal summary -------------------------------------------------------------------


def format_summary(frame: pd.DataFrame, dataset: str, protocol: str) -> str:
    """A plain-text table per metric: entries x t, mean over seeds (accuracies in %)."""
    agg = aggregate(frame)
    agg = agg[(agg["dataset"] == dataset) & (agg["protocol"] == protocol)]
    if agg.empty:
        return f"no results for {dataset} / {protocol}"
    blocks = []
    for metric in _metric_order(agg["metric"]):
        grid = _metric_grid(agg[agg["metric"] == metric])
        header = ["method", "preset", *grid.settings, *(h for h, _ in grid.columns)]
        body = []
        for row in grid.rows:
            cells = [grid.cells.get((row, t)) for _, t in grid.columns]
            body.append(
                [
                    entry_name(row[0], row[1]),
                    *row[2:],
                    *("" if c is None else _fmt_number(c.mean, metric) for c in cells),
                ]
            )
        unit = " (%)" if is_accuracy(metric) else ""
        title = f"{dataset} / {protocol}: {metric}{unit}, mean over seeds"
        blocks.append(title + "\n" + _text_table(header, body, n_left=2 + len(grid.settings)))
    return "\n\n".join(blocks)


__all__ = ["aggregate", "check", "format_summary", "generate", "safe_name"]
