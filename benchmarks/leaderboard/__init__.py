"""Results store -> ``leaderboards/``: markdown pages, CSV tables and PNG plots.

``generate(store.frame(), "leaderboards")`` writes one page per (dataset,
protocol) with mean ± std (n) over seeds, and an index. The output is a pure
function of the frame (sorted everything, fixed float formats, no timestamps,
PNGs without a software tag), so regenerating from the same store gives the
same bytes and the committed folder diffs cleanly. Pages whose rows left the
store are removed: the folder mirrors the store. Drawing is most of the work, so
a figure is redrawn only when the digest of what it shows (its rows and the
plotting code) differs from the one its PNG records; ``check`` draws nothing.

The package, one job per module, each importing only modules listed before it:
``aggregate`` (columns, normalising, the mean over seeds), ``markdown`` (cells, tables, one
metric as a grid, pivot tables), ``provenance`` (commit and config pages, the compute table),
``figures`` (which figures a page has, their digests), ``pages`` (a page's text), ``index`` (the
index and average ranks), ``output`` (the folder: ``generate``, ``check``) and ``summary`` (the
terminal table). ``stats``, ``plots``, ``html``, ``budget`` and ``claims`` are what they draw on.
"""

from __future__ import annotations

from benchmarks.leaderboard.aggregate import aggregate, normalise
from benchmarks.leaderboard.markdown import (
    EDGE_MARK,
    Cell,
    format_cell,
    metric_table,
    pivot_table,
)
from benchmarks.leaderboard.output import check, generate
from benchmarks.leaderboard.pages import GENERATOR, edge_counts
from benchmarks.leaderboard.provenance import compute_table
from benchmarks.leaderboard.summary import format_summary

__all__ = [
    "EDGE_MARK", "GENERATOR", "Cell", "aggregate", "check", "compute_table", "edge_counts", "format_cell",
    "format_summary", "generate", "metric_table", "normalise", "pivot_table",
]  # fmt: skip
