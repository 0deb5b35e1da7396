"""The leaderboards' figures, drawn from aggregated rows (mean, std over seeds).

Every figure is a pure function of its rows: matplotlib's default style (not
the user's matplotlibrc), fixed sizes, one colour per method across every
figure (``method_colour``; a method's variants share it, dashed or dotted), and no software tag in the PNG, so the same rows give the same
bytes on every machine. Each PNG records a digest of what it was drawn from
(``DIGEST_KEY``), so the leaderboards redraw only the figures whose data changed.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib
import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, UnidentifiedImageError

PANEL_SIZE = (4.8, 3.8)  # inches per subplot
LEGEND_WIDTH = 1.9  # inches on the right for one legend shared by all subplots
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
MAX_COLUMNS = 5  # subplots per row in per-entry grids
DIGEST_KEY = "Data-Digest"  # PNG text chunk: the digest of the rows (and code) a figure shows


def format_t(t: float) -> str:
    # One decimal for the usual 0.0..1.0 grid, more only when a grid needs it.
    return f"{t:.1f}" if abs(t * 10 - round(t * 10)) < 1e-9 else f"{t:.4g}"


def entry_name(method: str, variant: str) -> str:
    return f"{method} [{variant}]" if variant else method


def is_missing(value: object) -> bool:
    """None, pandas' NA or NaN: a setting a row does not have."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def setting_text(value: object) -> str:
    if is_missing(value):
        return ""
    return format_t(value) if isinstance(value, float) else str(value)


def is_accuracy(metric: str) -> bool:
    return "accuracy" in metric


def _scale(metric: str) -> float:
    return 100.0 if is_accuracy(metric) else 1.0


def _ylabel(metric: str) -> str:
    return f"{metric} (%)" if is_accuracy(metric) else metric


def _line_labels(agg: pd.DataFrame, settings: Sequence[str]) -> pd.Series:
    """One legend label per row: the entry, its preset where several are shown, and its settings."""
    show_preset = agg["preset"].nunique() > 1

    def label(rec: pd.Series) -> str:
        text = entry_name(rec["method"], rec["variant"])
        if show_preset:
            text += f" ({rec['preset']})"
        return ", ".join([text, *(f"{c}={setting_text(rec[c])}" for c in settings)])

    return agg.apply(label, axis=1) if not agg.empty else pd.Series(dtype=str)


# One colour per method across every figure of the suite: the papers' methods in a fixed order,
# any other method a colour of the rest of the palette fixed by its name alone.
METHOD_ORDER = ("drl", "vdrl", "drl-vp", "vdrl-vp", "ae", "vae", "dae", "cdae", "simclr", "simclr-gauss", "none")
_PALETTE = [*matplotlib.colormaps["tab10"].colors, *matplotlib.colormaps["tab20"].colors[1::2]]
LINESTYLES = ("-", "--", ":", "-.")


def method_colour(method: str) -> tuple:
    if method in METHOD_ORDER:
        return _PALETTE[METHOD_ORDER.index(method)]
    rest = _PALETTE[len(METHOD_ORDER):]
    return rest[zlib.crc32(method.encode()) % len(rest)]


def _line_styles(agg: pd.DataFrame, labels: pd.Series) -> dict[str, tuple]:
    """Label -> (colour, marker, linestyle): the method's colour; its variants dashed, dotted, ..."""
    styles: dict[str, tuple] = {}
    per_method = agg.assign(label=labels)[["method", "variant", "label"]].drop_duplicates()
    for method, rows in per_method.groupby("method", sort=True):
        variants = sorted(rows["variant"].unique(), key=lambda v: (v != "", v))  # the plain entry first
        for rec in rows.to_dict(orient="records"):
            i = variants.index(rec["variant"])
            styles[rec["label"]] = (method_colour(method), MARKERS[i % len(MARKERS)], LINESTYLES[i % len(LINESTYLES)])
    return styles


def _fit_y(ax, ys: list[pd.Series], metric: str) -> None:
    """Accuracies: the y axis from the lowest tenth of the points (less 2 points) up, so that a
    collapse of one entry (DAE at large t) does not squeeze the rest into the top of a 0-100 axis;
    what falls below is said on the axis."""
    if not is_accuracy(metric) or not ys:
        return
    values = pd.concat(ys)
    low = float(values.quantile(0.1)) - 2.0
    high = float(values.max()) + 1.0
    if values.min() < low:
        ax.set_ylim(low, high)
        ax.text(0.01, 0.01, f"values below {low:.0f} % off the axis (see the table)", transform=ax.transAxes,
                fontsize="x-small", color="0.35", va="bottom")


def _save(fig: Figure, path: Path, digest: str) -> None:
    metadata = {"Software": None, **({DIGEST_KEY: digest} if digest else {})}
    fig.savefig(path, dpi=100, metadata=metadata)


def recorded_digest(path: Path) -> str | None:
    """The digest a figure was saved with; None if it has none or is not a readable PNG."""
    try:
        with Image.open(path) as image:  # reads the chunks before the pixels, not the pixels
            return image.info.get(DIGEST_KEY)
    except (OSError, UnidentifiedImageError):
        return None


def _panels(n: int, legend: bool, sharey: bool = True) -> tuple[Figure, list]:
    w, h = PANEL_SIZE
    extra = LEGEND_WIDTH if legend else 0.0
    cols = min(n, MAX_COLUMNS) if not legend else n
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(w * cols + extra, h * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=sharey).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _finish_with_legend(fig: Figure, axes: list) -> None:
    handles: dict[str, object] = {}  # one legend outside the axes, so no line is hidden under it
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="center right", fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0, 1 - LEGEND_WIDTH / fig.get_figwidth(), 1))


def _line_plot(agg: pd.DataFrame, x: str, metric: str, title: str, path: Path, xlabel: str,
               ticks: Callable[[list], tuple[list, list[str]] | None], settings: Sequence[str],
               log_x: bool = False, digest: str = "") -> None:
    """``metric`` against column ``x``, one subplot per head, one line and a ±std band per entry."""
    heads = sorted(agg["head"].unique())
    labels = _line_labels(agg, settings)
    style = _line_styles(agg, labels)
    scale = _scale(metric)
    with matplotlib.style.context("default"):
        fig, axes = _panels(len(heads), legend=True)
        xs = sorted(agg[x].dropna().unique())
        shown = []
        for ax, head in zip(axes, heads, strict=True):
            sel = agg["head"] == head
            for name in sorted(style):
                line = agg[sel & (labels == name)].sort_values(x)
                if line.empty:
                    continue
                colour, marker, linestyle = style[name]
                xv = line[x].astype(float)
                y, s = scale * line["mean"], scale * line["std"].fillna(0.0)
                ax.plot(xv, y, marker=marker, color=colour, linestyle=linestyle, label=name, linewidth=1.5,
                        markersize=4)
                ax.fill_between(xv, y - s, y + s, color=colour, alpha=0.15, linewidth=0)
                shown.append(y)
            ax.set_title(title + (f" — head: {head}" if head else ""), fontsize="medium")
            ax.set_xlabel(xlabel)
            if log_x:
                ax.set_xscale("log")
                ax.minorticks_off()
            tick = ticks(xs)
            if tick:
                ax.set_xticks(*tick)
            ax.grid(True, alpha=0.3)
        _fit_y(axes[0], shown, metric)  # the panels share y
        axes[0].set_ylabel(_ylabel(metric))
        _finish_with_legend(fig, axes)
        _save(fig, path, digest)


def plot_metric_vs_t(agg: pd.DataFrame, metric: str, title: str, path: Path, settings: Sequence[str],
                     digest: str = "") -> None:
    """A per-t metric (accuracy in %, anything else as is) against the diffusion time t."""
    def ticks(ts: list) -> tuple[list, list[str]] | None:
        # The paper's 0.0..1.0 grid: one tick per evaluated t.
        return (ts, [format_t(t) for t in ts]) if len(ts) <= 12 else None

    _line_plot(agg[agg["t"].notna()], "t", metric, title, path, "diffusion time t", ticks,
               [c for c in settings if c != "head"], digest=digest)


COUNT_AXES = {"points": "trajectory points K", "labels": "labelled images"}


def plot_metric_vs_count(agg: pd.DataFrame, metric: str, title: str, path: Path, settings: Sequence[str],
                         axis: str, digest: str = "") -> None:
    """A metric against a count (``axis``: K trajectory points or labelled images), log x, one subplot per head."""
    def ticks(ns: list) -> tuple[list, list[str]]:
        return [int(n) for n in ns], [str(int(n)) for n in ns]

    _line_plot(agg[agg[axis].notna()], axis, metric, title, path, f"{COUNT_AXES[axis]} (log scale)",
               ticks, [c for c in settings if c not in ("head", axis)], log_x=True, digest=digest)


def plot_heatmaps(agg: pd.DataFrame, metric: str, title: str, path: Path, digest: str = "") -> None:
    """A pairwise metric over (t, t2): one heatmap of the seed mean per entry, colour scale [0, 1]."""
    labels = _line_labels(agg, [])
    names = sorted(labels.unique())
    ts = sorted(set(agg["t"].dropna()) | set(agg["t2"].dropna()))
    pos = {t: i for i, t in enumerate(ts)}
    with matplotlib.style.context("default"):
        fig, axes = _panels(len(names), legend=False, sharey=False)
        image = None
        for ax, name in zip(axes, names, strict=True):
            grid = np.full((len(ts), len(ts)), np.nan)
            for rec in agg[labels == name].to_dict(orient="records"):
                grid[pos[rec["t2"]], pos[rec["t"]]] = rec["mean"]
            image = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis", origin="lower")
            tick_at = list(range(0, len(ts), math.ceil(len(ts) / 6)))
            ax.set_xticks(tick_at, [format_t(ts[i]) for i in tick_at])
            ax.set_yticks(tick_at, [format_t(ts[i]) for i in tick_at])
            ax.set_title(name, fontsize="medium")
            ax.set_xlabel("t")
            ax.set_ylabel("t2")
        fig.suptitle(f"{title}: {metric} (mean over seeds)", fontsize="medium")
        fig.tight_layout()
        if image is not None:
            fig.colorbar(image, ax=axes, shrink=0.8)
        _save(fig, path, digest)


def plot_bars_over_t(agg: pd.DataFrame, metric: str, title: str, path: Path, digest: str = "") -> None:
    """A distribution over t per entry (attention weights): bars of the seed mean, error bars of the std."""
    agg = agg[agg["t"].notna()]
    labels = _line_labels(agg, [])
    names = sorted(labels.unique())
    with matplotlib.style.context("default"):
        fig, axes = _panels(len(names), legend=False)
        for ax, name in zip(axes, names, strict=True):
            rows = agg[labels == name].sort_values("t")
            ts = rows["t"].astype(float).tolist()
            width = 0.8 * (min(np.diff(ts)) if len(ts) > 1 else 0.1)
            ax.bar(ts, rows["mean"], width=width, yerr=rows["std"].fillna(0.0), color=method_colour(rows["method"].iloc[0]),
                   capsize=2, error_kw={"linewidth": 0.8})
            ax.set_xticks(ts, [format_t(t) if i % 2 == 0 else "" for i, t in enumerate(ts)])
            ax.set_title(name, fontsize="medium")
            ax.set_xlabel("diffusion time t")
            ax.grid(True, axis="y", alpha=0.3)
        axes[0].set_ylabel(metric)
        fig.suptitle(f"{title}: {metric} (mean ± std over seeds)", fontsize="medium")
        fig.tight_layout()
        _save(fig, path, digest)


def _images_text(n: float) -> str:
    n = int(n)
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size:
            return f"{n / size:g}{unit}"
    return str(n)


def plot_metric_vs_budget(agg: pd.DataFrame, metric: str, title: str, path: Path, digest: str = "") -> None:
    """A metric (best-t accuracy) against the pretraining budget in images seen, log x, one subplot per head."""
    def ticks(ns: list) -> tuple[list, list[str]]:
        return [int(n) for n in ns], [_images_text(n) for n in ns]

    _line_plot(agg, "images_seen", metric, title, path, "images seen in pretraining (log scale)", ticks, [],
               log_x=True, digest=digest)

