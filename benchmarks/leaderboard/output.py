"""The leaderboards folder as a whole: what it holds (``_render``), writing it and checking it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmarks.leaderboard import claims, html, plots
from benchmarks.leaderboard.aggregate import aggregate_normalised, normalise
from benchmarks.leaderboard.figures import Figure, plan_figures
from benchmarks.leaderboard.index import CLAIMS_PAGE, index_text
from benchmarks.leaderboard.pages import GENERATOR, budget_section, page_csv, page_text
from benchmarks.leaderboard.provenance import commit_texts, config_texts
from core.files import safe_name

GENERATED_SUFFIXES = (".md", ".csv", ".png", ".json")  # what stale-page removal may delete
TOP_LEVEL_PAGES = ("README.md", CLAIMS_PAGE, "index.html")


def _write(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8"))


@dataclass
class Output:
    """Everything the leaderboards folder holds, by path relative to it; nothing written or drawn."""

    texts: dict[Path, str] = field(default_factory=dict)
    figures: dict[Path, Figure] = field(default_factory=dict)


def _add_page(out: Output, dataset: str, protocol: str, page: pd.DataFrame, agg: pd.DataFrame) -> str:
    """Add a (dataset, protocol) page, its CSV and its figures to ``out``; returns the page's text."""
    folder, stem = Path(safe_name(dataset)), safe_name(protocol)
    figures = plan_figures(agg, f"{dataset} / {protocol}", stem)
    budget_lines, budget_figure = budget_section(page, f"{dataset} / {protocol}", stem)
    out.figures.update({folder / fig.file: fig for figs in figures.values() for fig in figs})
    if budget_figure is not None:
        out.figures[folder / budget_figure.file] = budget_figure
    text = page_text(dataset, protocol, page, agg, figures, budget_lines)
    out.texts[folder / f"{stem}.md"] = text
    out.texts[folder / f"{stem}.csv"] = page_csv(agg)
    return text


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


def _render(frame: pd.DataFrame) -> Output:
    """What the leaderboards folder of ``frame`` holds: the texts in full, the figures as plans."""
    df = normalise(frame)
    agg = aggregate_normalised(df)
    pages = [(str(d), str(p), g) for (d, p), g in df.groupby(["dataset", "protocol"], sort=True)]
    _check_unique_paths(pages)
    out = Output({**config_texts(df), **commit_texts(df)})
    texts = []
    for dataset, protocol, page in pages:
        page_agg = agg[(agg["dataset"] == dataset) & (agg["protocol"] == protocol)]
        text = _add_page(out, dataset, protocol, page, page_agg)
        texts.append((dataset, protocol, f"{safe_name(dataset)}/{safe_name(protocol)}", text))
    index = index_text(pages, agg)
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
