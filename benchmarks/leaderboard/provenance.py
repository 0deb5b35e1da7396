"""Where the numbers came from: commit and config pages, their links, the compute table, commands."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from benchmarks.leaderboard.aggregate import ENTRY_COLUMNS
from benchmarks.leaderboard.markdown import DASH, md_table
from benchmarks.leaderboard.plots import entry_name
from core.files import safe_name

CONFIG_FOLDER = "configs"  # full settings per config hash, linked from every page
COMMIT_FOLDER = "commits"  # per commit: the runs it produced, linked from every page


def commit_texts(df: pd.DataFrame) -> dict[Path, str]:
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
        lines += [*md_table(["dataset", "protocol", "method", "preset", "seeds"], body), ""]
        texts[Path(COMMIT_FOLDER) / f"{safe_name(commit)}.md"] = "\n".join(lines)
    return texts


def config_texts(df: pd.DataFrame) -> dict[Path, str]:
    """``configs/<hash>.json``: the full settings behind every config hash a page links to."""
    texts = {}
    for config_hash, text in sorted(set(zip(df["config_hash"], df["config"], strict=True))):
        if config_hash and text:
            body = json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
            texts[Path(CONFIG_FOLDER) / f"{safe_name(config_hash)}.json"] = body
    return texts


def _commit_links(commits: pd.Series) -> str:
    links = [f"[`{c}`](../{COMMIT_FOLDER}/{safe_name(c)}.md)" for c in sorted(set(commits)) if c]
    return ", ".join(links) or DASH


def _config_links(hashes: pd.Series) -> str:
    """Each config hash, linked to its full settings (``config_texts``)."""
    links = [f"[`{h}`](../{CONFIG_FOLDER}/{safe_name(h)}.json)" for h in sorted(set(hashes)) if h]
    return ", ".join(links) or DASH


def _fmt_mean(values: pd.Series, fmt: str) -> str:
    # RunInfo defaults these to 0.0, which means "not measured".
    m = values[values > 0].mean()
    return DASH if math.isnan(m) else format(m, fmt)


def sweeps(configs: pd.Series) -> list[dict]:
    """The Optuna studies (``config["sweep"]``) that chose the settings of these runs; none if untuned."""
    found = (json.loads(text).get("sweep") for text in configs if isinstance(text, str) and text)
    return [sweep for sweep in found if sweep]


def _sweep_trials(configs: pd.Series) -> str:
    """How many Optuna trials chose an entry's settings ('–': the preset's, untuned)."""
    return ", ".join(sorted({f"{s['trials']} ({s['study']})" for s in sweeps(configs)})) or DASH


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
    return md_table(header, body)


def commands_section(page: pd.DataFrame) -> list[str]:
    """A page's ``## Produced by``: every command recorded for its rows."""
    lines = ["## Produced by", ""]
    commands = sorted(set(page["command"]) - {""})
    if not commands:
        return [*lines, "(no command recorded)", ""]
    return [*lines, "```sh", *commands, "```", ""]
