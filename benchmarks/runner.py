"""One run: pretrain (cached) -> encode (cached) -> protocols -> results store -> leaderboards.

Everything a request names is validated before anything is computed, so a
typo costs one line, not a pretraining. Checkpoints and features are cached
under the results folder and reused by every later run that needs them.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks import leaderboard, provenance
from benchmarks.cache import CheckpointStore, FeatureCache, stable_hash
from benchmarks.plan import (
    Plan,
    RunRequest,
    Setup,
    checkpoint_key,
    current_runs,
    folder_problem,
    results_folder_problem,
    run_config,
    stored_runs,
)
from benchmarks.presets import (
    PRESETS,
    SettingError,
    canonical_variant,
    parse_overrides,
    settings_with,
)
from benchmarks.store import ResultsStore, RunInfo, StoreError, database_url
from core.data import DatasetError, DataSplits
from core.distributed import barrier, init_distributed, is_main_process
from core.seeding import seed_everything
from datasets import load_dataset
from methods.base import (
    Budget,
    DataSpec,
    History,
    Method,
    TrainOptions,
    available_methods,
    config_from_settings,
    create_method,
    get_method_class,
)
from methods.training import SPEED_SETTINGS, TrainingSetupError, history_from_dict
from protocols.base import Encoded, available_protocols, create_protocol


class UsageError(ValueError):
    """Bad input from the user: reported as one line, exit status 2."""


def validate(req: RunRequest) -> Plan:
    _check_names("method", req.methods, available_methods())
    if not req.encode_only:
        _check_names("protocol", req.protocols, available_protocols())
    _check_names("preset", (req.preset,), list(PRESETS))
    if not req.seeds:
        raise UsageError("--seeds is empty; give integers such as 0,1,2")
    for kind, given in (("method", req.methods), ("protocol", req.protocols), ("seed", req.seeds)):
        repeated = [x for i, x in enumerate(given) if x in given[:i]]
        if repeated:  # it would run (and store) the same thing twice
            raise UsageError(f"{kind} {repeated[0]!r} is given twice in {','.join(map(str, given))}; "
                             f"give each {kind} once")
    classes = [get_method_class(m).config_cls for m in req.methods] + [Budget, TrainOptions]
    classes += [create_protocol(p).config_cls for p in req.protocols]
    try:
        overrides = parse_overrides(req.overrides, classes)
    except SettingError as err:
        raise UsageError(str(err)) from None
    if req.results_db:
        try:
            database_url(req.results_db, "--results-db")
        except StoreError as err:
            raise UsageError(str(err)) from None
    return Plan(req, overrides, _resolve_device(req.device))


def _check_names(kind: str, names: tuple[str, ...], valid: list[str]) -> None:
    if not names:
        raise UsageError(f"no {kind} given; valid: {', '.join(valid)}")
    for name in names:
        if name not in valid:
            raise UsageError(f"unknown {kind} {name!r}; valid: {', '.join(valid)}")


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here; valid: auto, cpu")
    if name not in ("cpu", "cuda"):
        raise UsageError(f"unknown device {name!r}; valid: auto, cpu, cuda")
    return torch.device(name)


def settings_for(plan: Plan, data: DataSplits) -> dict[str, Any]:
    return settings_with(plan.request.preset, data.image_shape, plan.overrides)


def prepare(plan: Plan) -> Setup:
    """Every check a run makes before it computes; writes nothing, so ``run --dry-run`` shares it."""
    req = plan.request
    for flag, folder, problem in (("--results", req.results, results_folder_problem(Path(req.results),
                                                                                   req.results_db)),
                                  ("--leaderboards", req.leaderboards, folder_problem(Path(req.leaderboards)))):
        if problem:  # found now, not after an hour of pretraining
            raise UsageError(f"{flag} {folder}: {problem}; valid: a folder this user can write to")
    try:
        data = load_dataset(req.dataset, root=req.data_root, download=req.download)
    except DatasetError as err:
        raise UsageError(str(err)) from None
    settings = settings_for(plan, data)
    try:  # build every config before computing anything: a bad value fails in a second
        method_cfgs = {m: config_from_settings(get_method_class(m).config_cls, settings) for m in req.methods}
        budget = config_from_settings(Budget, settings)
        options = config_from_settings(TrainOptions, settings)
        protocols = {p: create_protocol(p) for p in req.protocols}
        protocol_cfgs = {p: config_from_settings(protocols[p].config_cls, settings) for p in req.protocols}
        for p, protocol in protocols.items():  # settings that only the data can refute (label counts...)
            if hasattr(protocol, "check_data"):
                protocol.check_data(data, protocol_cfgs[p])
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None
    # Settings that change speed, not results, do not make a run a different entry.
    variant = canonical_variant({k: v for k, v in plan.overrides.items() if k not in SPEED_SETTINGS})
    return Setup(data, method_cfgs, budget, options, protocols, protocol_cfgs, variant)


def execute(plan: Plan, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)
            ) -> tuple[ResultsStore | None, str]:
    """Run the plan; returns the store (None on a ``torchrun`` rank other than 0) and the dataset's name."""
    req = plan.request
    rank_device = init_distributed()  # under torchrun: join the group; CUDA ranks get their own GPU
    if rank_device is not None:
        plan = dataclasses.replace(plan, device=rank_device)
    if not is_main_process():
        log = _quiet
    provenance.git_commit()  # read (and cached) now, when this process's code was loaded, not at its first write
    setup = prepare(plan)
    data, method_cfgs, budget, options = setup.data, setup.method_cfgs, setup.budget, setup.options
    protocols, protocol_cfgs, variant = setup.protocols, setup.protocol_cfgs, setup.variant
    store = None
    if is_main_process():  # only rank 0 writes
        try:
            store = ResultsStore(req.results, url=req.results_db or None)  # a server: reached now, not after pretraining
        except StoreError as err:
            raise UsageError(str(err)) from None
    checkpoints = CheckpointStore(Path(req.results))
    log(f"dataset {data.name}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
        f"images {data.image_shape}; preset {req.preset}{' [' + variant + ']' if variant else ''}; "
        f"device {plan.device}")
    fingerprint = data.fingerprint()
    # Read on every rank, so that under torchrun all ranks agree on which encoders to pretrain.
    stored = stored_runs(Path(req.results), req.results_db)
    commit = provenance.git_commit()

    for method_name in req.methods:
        for seed in req.seeds:
            precision = options.resolved_precision(plan.device)
            ckpt, key_fields = checkpoint_key(method_name, method_cfgs[method_name], budget, fingerprint, seed,
                                              precision)
            skipped = current_runs(req, setup, method_name, seed, key_fields, stored, commit)
            for name in skipped:
                log(f"{method_name} seed {seed} {name}: stored at this commit with these settings; "
                    "skipped (--rerun recomputes it)")
            due = [name for name in protocols if name not in skipped]
            if not due:  # not even pretrained: its checkpoint may be long gone
                continue
            method, history = _fitted_method(method_name, method_cfgs[method_name], budget, options, data,
                                             seed, ckpt, checkpoints, plan.device, req.progress, log)
            if store is None:  # other ranks only help pretrain
                continue
            features = FeatureCache(Path(req.results), ckpt, method, data, progress=req.progress)
            encoded = Encoded(method, data, features, seed, plan.device, Path(req.results) / "artifacts",
                              progress=req.progress)
            for name in due:
                log(f"{method_name} seed {seed}: evaluating with {name}")
                start = time.perf_counter()
                records = protocols[name].run(encoded, protocol_cfgs[name])
                config = run_config(key_fields, protocol_cfgs[name], req.sweep)
                info = RunInfo(
                    dataset=data.name, method=method_name, protocol=name, preset=req.preset, seed=seed,
                    variant=variant, config_hash=stable_hash(config), config=config, checkpoint=ckpt,
                    commit=commit, versions=provenance.package_versions(),
                    device=provenance.device_name(plan.device),
                    wall_time_s=time.perf_counter() - start,
                    pretrain_wall_time_s=history.wall_time_s, images_per_s=history.images_per_s,
                    peak_memory_mb=history.peak_memory_mb, command=req.command,
                )
                store.write(info, records)
                log(f"{method_name} seed {seed} {name}: {len(records)} numbers stored "
                    f"({info.wall_time_s:.1f} s)")
    if store is None:
        return store, data.name
    leaderboard.generate(store.frame(), req.leaderboards)
    log(f"leaderboards regenerated in {req.leaderboards}/")
    return store, data.name


def _quiet(_: str) -> None:
    pass


def _fitted_method(name: str, cfg: Any, budget: Budget, options: TrainOptions, data: DataSplits,
                   seed: int, ckpt: str, checkpoints: CheckpointStore, device: torch.device,
                   progress: bool, log: Callable[[str], None]) -> tuple[Method, History]:
    seed_everything(seed)
    method = create_method(name, cfg, DataSpec(data.image_shape, data.mean, data.std)).to(device)
    saved = checkpoints.load(ckpt)
    if saved is not None:
        method.load_state_dict(saved["state"])
        history = history_from_dict(saved["history"])
        log(f"{name} seed {seed}: reusing pretrained checkpoint {ckpt} (no training)")
        return method, history
    if not method.pretrains:
        log(f"{name} seed {seed}: no pretraining (the encoder at its seeded random initialisation)")
        return method, method.fit(data.train, budget, progress=progress)
    log(f"{name} seed {seed}: pretraining {budget.iterations} steps x {budget.batch_size} images "
        f"({method.num_parameters() / 1e6:.2f} M parameters), checkpoint {ckpt}")
    snapshot = checkpoints.snapshot_path(ckpt)
    try:
        history = method.fit(data.train, budget, progress=progress, options=options, snapshot_path=snapshot,
                             log=log)
    except TrainingSetupError as err:  # a snapshot from another world size, an indivisible batch
        raise UsageError(str(err)) from None
    if is_main_process():
        checkpoints.save(ckpt, {"state": method.state_dict(), "history": dataclasses.asdict(history),
                                "method": name, "key": ckpt})
        snapshot.unlink(missing_ok=True)  # the final checkpoint supersedes it
    barrier()
    log(f"{name} seed {seed}: pretrained in {history.wall_time_s:.1f} s "
        f"({history.images_per_s:.0f} images/s), final loss {history.losses[-1]:.4g}")
    return method, history
