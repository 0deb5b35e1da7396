"""What a run will do, worked out without computing or writing anything.

A request, its validated plan and that plan checked against its data
(``RunRequest``, ``Plan``, ``Setup``: the runner builds them). The runner and
``run --dry-run`` share them, the checkpoint key and the folder checks; the dry
run then reads (never writes) the caches and the results store to say what is
already there and what would be computed.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks import provenance
from benchmarks.cache import CACHE_FORMAT, CheckpointStore, FeatureCache, stable_hash
from benchmarks.store import RUN_KEY, NoStoreError, ResultsStore, StoreError, shown_url, store_file
from core.data import DataSplits
from methods.base import Budget, TrainOptions, get_method_class
from protocols.base import Evaluation

SPLITS = ("train", "val", "test")
RESULTS_SUBFOLDERS = ("checkpoints", "features", "artifacts")


@dataclass(frozen=True)
class RunRequest:
    methods: tuple[str, ...]
    protocols: tuple[str, ...]
    dataset: str = "digits"
    preset: str = "quick"
    seeds: tuple[int, ...] = (0,)
    overrides: tuple[str, ...] = ()
    data_root: str = "data"
    download: bool = False
    results: str = "results"
    leaderboards: str = "leaderboards"
    device: str = "auto"
    progress: bool = True
    command: str = ""
    results_db: str = ""  # the store's database URL (store.database_url); '' = RESULTS/results.sqlite
    sweep: dict[str, Any] | None = None  # the Optuna study the overrides come from (its budget: trials)
    encode_only: bool = False  # export: no protocol runs, so none is needed
    rerun: bool = False  # recompute runs stored at this commit with these settings (skipped otherwise)


@dataclass
class Plan:
    """A validated request: every name known, every override typed."""

    request: RunRequest
    overrides: dict[str, Any]
    device: torch.device


@dataclass
class Setup:
    """A plan checked against its data: the dataset loaded, every config built, the folders writable."""

    data: DataSplits
    method_cfgs: dict[str, Any]
    budget: Budget
    options: TrainOptions
    protocols: dict[str, Evaluation]
    protocol_cfgs: dict[str, Any]
    variant: str


def checkpoint_key(method: str, cfg: Any, budget: Budget, data_fingerprint: str, seed: int,
                   precision: str = "fp32") -> tuple[str, dict[str, Any]]:
    """The pretrained encoder's cache key, and the fields it hashes (everything that determines it)."""
    fields = {"method": method, "config": dataclasses.asdict(cfg), "budget": dataclasses.asdict(budget),
              "data": data_fingerprint, "seed": seed, "format": CACHE_FORMAT}
    if precision != "fp32":  # reduced precision learns a different encoder (fp32 keys are unchanged)
        fields["precision"] = precision
    return stable_hash(fields), fields


def folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used (or created) as a writable folder, or None; touches nothing."""
    if path.exists():
        if not path.is_dir():
            return f"{path} is a file, not a folder"
        return None if os.access(path, os.W_OK | os.X_OK) else f"{path} is not writable"
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot create {path}: {existing} is not writable"
    return None


def results_folder_problem(folder: Path, results_db: str = "") -> str | None:
    """``folder_problem`` for a results folder, the subfolders a run writes into and its store file
    (``folder/results.sqlite``, the file a ``sqlite:///`` ``results_db`` names, none for a server's)."""
    problem = folder_problem(folder)
    if problem:
        return problem
    if folder.exists():
        for name in RESULTS_SUBFOLDERS:
            problem = folder_problem(folder / name)
            if problem:
                return problem
    store = store_file(folder, results_db or None)
    if store is None:
        return None
    if store.parent != folder:
        problem = folder_problem(store.parent)
        if problem:
            return problem
    if store.is_dir():
        return f"{store} is a folder, not a file"
    if store.exists() and not os.access(store, os.W_OK):
        return f"{store} is not writable"
    return None


def stored_runs(results: Path, results_db: str = "") -> dict[tuple, tuple[str, str]] | None:
    """(commit, config hash) of each run the results store holds, by its key (``store.RUN_KEY``);
    None when the store cannot be read."""
    try:
        return ResultsStore(results, read_only=True, url=results_db or None).run_versions()
    except NoStoreError:  # nothing stored yet
        return {}
    except StoreError:
        return None


def run_key(**fields: Any) -> tuple:
    """A run's identity in the store (``store.RUN_KEY``'s values, in its order) from those fields by name."""
    return tuple(fields[k] for k in RUN_KEY)


def run_config(checkpoint_fields: dict[str, Any], protocol_cfg: Any, sweep: dict[str, Any] | None) -> dict[str, Any]:
    """The settings a stored run records (and hashes): its method, budget, protocol and sweep."""
    config = {"method": checkpoint_fields["config"], "budget": checkpoint_fields["budget"],
              "protocol": dataclasses.asdict(protocol_cfg)}
    if sweep:
        config["sweep"] = sweep
    return config


def is_current(stored: tuple[str, str] | None, commit: str, config_hash: str) -> bool:
    """Whether a stored run is what running it again would store: the same settings at the same clean commit.

    Code outside git or with uncommitted changes (``+dirty``) is never known to match, so such runs are
    always recomputed; a run at another commit is too, since its code may differ."""
    if stored is None or not commit or commit.endswith("+dirty"):
        return False
    return stored == (commit, config_hash)


def current_runs(req: RunRequest, setup: Setup, method: str, seed: int, checkpoint_fields: dict[str, Any],
                 stored: dict[tuple, tuple[str, str]] | None, commit: str) -> set[str]:
    """The protocols whose run of ``method`` and ``seed`` the store holds at this clean commit with these
    settings (``is_current``): what running again would store, so it is skipped; none under ``--rerun``."""
    if req.rerun or not stored:
        return set()
    return {name for name, cfg in setup.protocol_cfgs.items()
            if is_current(stored.get(run_key(dataset=setup.data.name, method=method, variant=setup.variant,
                                             protocol=name, preset=req.preset, seed=seed)),
                          commit, stable_hash(run_config(checkpoint_fields, cfg, req.sweep)))}


def feature_times(protocol: Any, cfg: Any) -> tuple[float, ...] | None:
    """The t at which a protocol reads cached codes; None for one that fine-tunes the encoder instead."""
    if getattr(protocol, "fine_tunes", False):
        return None
    return tuple(protocol.feature_times(cfg))


def describe(plan: Plan, setup: Setup) -> str:
    """The plan of a run: one line per pretrained encoder, one per evaluation, then the totals."""
    req, data = plan.request, setup.data
    results = Path(req.results)
    stored = stored_runs(results, req.results_db)
    checkpoints = CheckpointStore(results)
    fingerprint = data.fingerprint()
    variant = f" [{setup.variant}]" if setup.variant else ""
    store = f"store {shown_url(req.results_db)}: " if req.results_db else ""
    lines = [f"plan: {len(req.methods)} methods x {len(req.protocols)} protocols x {len(req.seeds)} seeds "
             f"on {data.name} ({len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
             f"images {data.image_shape}), preset {req.preset}{variant}, device {plan.device}",
             f"results {results}/ ({store}{'store unreadable' if stored is None else f'{len(stored)} runs stored'}), "
             f"leaderboards {req.leaderboards}/"]
    commit = provenance.git_commit()
    to_train = cached = untrained = steps = 0
    replaced = new = current = codes_cached = codes_needed = 0
    for method in req.methods:
        method_cls = get_method_class(method)
        for seed in req.seeds:
            ckpt, fields = checkpoint_key(method, setup.method_cfgs[method], setup.budget, fingerprint, seed,
                                          setup.options.resolved_precision(plan.device))
            # FeatureCache's own file names; it reads only the class's time_conditioned to name them.
            features = FeatureCache(results, ckpt, method_cls, data)
            skipped = current_runs(req, setup, method, seed, fields, stored, commit)
            current += len(skipped)
            evaluations = []
            for name, protocol in setup.protocols.items():
                stored_key = run_key(dataset=data.name, method=method, variant=setup.variant, protocol=name,
                                     preset=req.preset, seed=seed)
                if name in skipped:
                    evaluations.append(f"    {method} seed {seed} {name}: stored at this commit with these "
                                       "settings, skipped (--rerun recomputes it)")
                    continue
                if stored is None:
                    run = "store unreadable"
                elif stored_key in stored:
                    replaced += 1
                    run = "stored run will be replaced"
                else:
                    new += 1
                    run = "new run"
                ts = feature_times(protocol, setup.protocol_cfgs[name])
                if ts is None:
                    codes = "fine-tunes a copy of the encoder (no cached codes)"
                else:
                    files = {features.cached_file(split, t) for split in SPLITS for t in ts}
                    have = sum(f.exists() for f in files)
                    codes_cached, codes_needed = codes_cached + have, codes_needed + len(files)
                    codes = f"codes at {len(ts)} t: {have} of {len(files)} (split, t) cached"
                evaluations.append(f"    {method} seed {seed} {name}: {run}; {codes}")
            if len(skipped) == len(setup.protocols):
                lines.append(f"  {method} seed {seed}: nothing to compute (every run stored at this commit)")
            elif not method_cls.pretrains:
                untrained += 1
                lines.append(f"  {method} seed {seed}: no pretraining (its seeded random initialisation)")
            elif checkpoints.path(ckpt).exists():
                cached += 1
                lines.append(f"  {method} seed {seed}: pretrained checkpoint {ckpt} cached")
            else:
                to_train += 1
                steps += setup.budget.iterations
                resumes = " (resuming from its snapshot)" if checkpoints.snapshot_path(ckpt).exists() else ""
                lines.append(f"  {method} seed {seed}: will pretrain {setup.budget.iterations} steps x "
                             f"{setup.budget.batch_size} images{resumes} -> checkpoint {ckpt}")
            lines.extend(evaluations)
    lines.append(f"total: {cached + to_train + untrained} encoders ({cached} cached, {to_train} to pretrain, "
                 f"{steps} steps in all; {untrained} without pretraining); {replaced + new} evaluations "
                 f"({new} new, {replaced} replacing stored runs; {current} stored at this commit, skipped); "
                 f"{codes_cached} of {codes_needed} (split, t) codes cached")
    lines.append("dry run: nothing computed, nothing written")
    return "\n".join(lines)
