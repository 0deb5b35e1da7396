"""Optuna sweeps: tune a method (and its protocol) on validation only, then finalise on test.

A trial samples the method's and the protocol's search spaces (``search_space(trial)``
on their classes), pretrains on the training split minus a stratified holdout,
and runs the protocol on a *tuning view* of the data: its ``val`` is that
holdout and its ``test`` is the real validation split. The test split is never
loaded into a trial, so nothing can be selected on it. The objective is the
best value of the protocol's ``objective_metric`` (default ``accuracy``) among
its records.

While pretraining, a trial reports a cheap validation score (a logistic
regression on the codes at t = 0.5, train codes -> holdout codes) several times,
so Optuna's median pruner can stop a bad trial early.

Storage: an RDB URL (``sqlite:///...``, ``postgresql://...``, reached through
psycopg) or, for any value without ``://``, a journal file (Optuna's
``JournalFileBackend``), which is what several local worker processes should
share. Without ``--storage``, a sweep whose ``--results-db`` is PostgreSQL keeps
its study in that database (Optuna's tables beside ``runs`` and ``results``):
workers on many machines then share both. Rerunning a sweep adds trials to its
study.

Several workers on one machine: ``--workers N`` starts N processes on one study,
the trials split between them, each with its share of the cores as intra-op
threads (``cores // N`` unless ``--threads`` says otherwise), so that they do not
oversubscribe the machine.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from benchmarks.cache import FeatureCache, encode_in_chunks
from benchmarks.presets import settings_with
from benchmarks.store import database_url
from core.data import DataSplits, stratified_split
from core.host_memory import retain_freed_memory
from core.seeding import seed_everything
from methods.base import (
    Budget,
    DataSpec,
    Method,
    TrainOptions,
    config_from_settings,
    create_method,
    get_method_class,
)
from protocols.base import Encoded, create_protocol

HOLDOUT_FRACTION = 0.1   # of the training split: the trial's validation set
REPORTS = 4              # intermediate values per pretraining (pruning points)
PROXY_TRAIN_CODES = 2000  # at most this many training codes for the pruning proxy
PROXY_T = 0.5


@dataclass(frozen=True)
class SweepRequest:
    method: str
    protocol: str
    dataset: str = "digits"
    preset: str = "quick"
    trials: int = 10
    storage: str = ""            # empty: sqlite:///<results>/optuna.sqlite
    study: str = ""              # empty: <dataset>-<method>-<protocol>-<preset>
    timeout: float | None = None
    seed: int = 0                # the trials' pretraining seed (and the holdout's)
    overrides: tuple[tuple[str, Any], ...] = ()  # fixed settings, typed
    results: str = "results"
    device: str = "cpu"
    results_db: str = ""         # the results store's database (store.database_url); '' = the SQLite file


def study_name(req: SweepRequest) -> str:
    return req.study or f"{req.dataset}-{req.method}-{req.protocol}-{req.preset}"


def create_storage(storage: str, results: str | Path, results_db: str = "") -> str | optuna.storages.BaseStorage:
    """An RDB URL (PostgreSQL's through psycopg); any other value is a journal file path (several workers can
    share it). None: the results database when it is PostgreSQL, else ``RESULTS/optuna.sqlite``."""
    if not storage and results_db and database_url(results_db).get_backend_name() == "postgresql":
        storage = results_db
    if not storage:
        Path(results).mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{Path(results) / 'optuna.sqlite'}"
    if "://" in storage:
        return _through_psycopg(storage)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(storage)))


def _through_psycopg(url: str) -> str:
    """``postgresql://`` and ``postgres://`` as ``postgresql+psycopg://``: SQLAlchemy's default PostgreSQL
    driver, psycopg2, is not a dependency (psycopg 3 is). Other URLs as they are."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # Optuna says what is wrong with it
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def load_study(req: SweepRequest) -> optuna.Study:
    storage = create_storage(req.storage, req.results, req.results_db)
    if isinstance(storage, str) and storage.startswith("sqlite"):
        # several worker processes may write at once: wait for the file lock rather than fail
        storage = optuna.storages.RDBStorage(storage, engine_kwargs={"connect_args": {"timeout": 300}})
    return optuna.create_study(
        storage=storage, study_name=study_name(req), direction="maximize",
        load_if_exists=True, sampler=optuna.samplers.TPESampler(),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))


def tuning_view(data: DataSplits, seed: int) -> DataSplits:
    """train minus a stratified holdout / the holdout / the real validation split as 'test'."""
    keep, held = stratified_split(data.train.labels, HOLDOUT_FRACTION, random_state=seed)
    return dataclasses.replace(data, train=data.train.subset(keep), val=data.train.subset(held), test=data.val)


def proxy_score(method: Method, data: DataSplits) -> float:
    """Validation accuracy of a logistic regression on the codes at t = 0.5 (the pruning signal)."""
    n = min(len(data.train), PROXY_TRAIN_CODES)
    x_train = encode_in_chunks(method, data.train.images[:n], [PROXY_T])[0].numpy()
    x_val = encode_in_chunks(method, data.val.images, [PROXY_T])[0].numpy()
    if not (np.isfinite(x_train).all() and np.isfinite(x_val).all()):
        return 0.0
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(max_iter=300).fit(scaler.transform(x_train), data.train.labels[:n].numpy())
    return float(clf.score(scaler.transform(x_val), data.val.labels.numpy()))


def _pruning_callback(trial: optuna.Trial, method: Method, data: DataSplits,
                      iterations: int) -> Callable[[int], None]:
    every = max(iterations // REPORTS, 1)

    def on_step(step: int) -> None:
        if step % every == 0:
            score = proxy_score(method, data)  # encode uses the EMA encoder in eval mode: training is untouched
            trial.report(score, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation proxy {score:.4f} at step {step}")

    return on_step


def objective_for(req: SweepRequest, data: DataSplits, device: torch.device) -> Callable[[optuna.Trial], float]:
    method_cls = get_method_class(req.method)
    protocol = create_protocol(req.protocol)
    tuning = tuning_view(data, req.seed)
    space = getattr(protocol, "search_space", None)
    objective_metric = getattr(protocol, "objective_metric", "accuracy")

    def objective(trial: optuna.Trial) -> float:
        params = {**method_cls.search_space(trial), **(space(trial) if space else {})}
        settings = settings_with(req.preset, data.image_shape, {**dict(req.overrides), **params})
        cfg = config_from_settings(method_cls.config_cls, settings)
        budget = config_from_settings(Budget, settings)
        options = config_from_settings(TrainOptions, settings)  # precision, compile...: as a run would
        protocol_cfg = config_from_settings(protocol.config_cls, settings)
        seed_everything(req.seed)
        trial.set_user_attr("threads", torch.get_num_threads())  # what this trial's worker ran with
        method = create_method(req.method, cfg, DataSpec(data.image_shape, data.mean, data.std)).to(device)
        method.fit(tuning.train, budget, progress=False, options=options,
                   on_step=_pruning_callback(trial, method, tuning, budget.iterations))
        with tempfile.TemporaryDirectory() as tmp:  # features of this trial only
            features = FeatureCache(Path(tmp), f"trial{trial.number}", method, tuning)
            records = protocol.run(Encoded(method, tuning, features, req.seed, device), protocol_cfg)
        values = [r.value for r in records if r.metric == objective_metric and not math.isnan(r.value)]
        if not values:
            raise ValueError(f"{req.protocol} gave no {objective_metric!r} to optimise")
        return max(values)

    return objective


class SweepWorkerError(RuntimeError):
    """A worker process of a sweep ended with an error."""


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may run on (containers, taskset)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def fair_share(workers: int, cores: int | None = None) -> int:
    """Intra-op threads for each of ``workers`` processes on one machine: every core used, none shared."""
    return max(1, (usable_cores() if cores is None else cores) // workers)


def worker_threads(workers: int, requested: int | None = None) -> int:
    """``--threads`` if given, else ``$OMP_NUM_THREADS`` if set, else the fair share of the cores."""
    if requested:
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else fair_share(workers)


def trial_shares(trials: int, workers: int) -> list[int]:
    """``trials`` split as evenly as possible among at most ``workers`` workers (none gets zero)."""
    workers = min(workers, trials)
    return [trials // workers + (i < trials % workers) for i in range(workers)]


def run_sweep(req: SweepRequest, data: DataSplits, device: torch.device, workers: int = 1,
              threads: int | None = None) -> optuna.Study:
    """Add ``req.trials`` trials to the study, in this process or in ``workers`` processes sharing it."""
    if workers > 1:
        _run_workers(req, data, device, workers, worker_threads(workers, threads))
    else:
        _optimize(req, data, device)
    study = load_study(req)
    save_best(study, req)
    return study


def _optimize(req: SweepRequest, data: DataSplits, device: torch.device) -> None:
    load_study(req).optimize(objective_for(req, data, device), n_trials=req.trials, timeout=req.timeout,
                             catch=(FloatingPointError,))  # a diverging trial fails; the sweep goes on


def _worker(req: SweepRequest, data: DataSplits, device: str, threads: int) -> None:
    torch.set_num_threads(threads)
    retain_freed_memory()  # a spawned worker starts with glibc's defaults, as the command line did
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial from N workers is noise
    _optimize(req, data, torch.device(device))


def _run_workers(req: SweepRequest, data: DataSplits, device: torch.device, workers: int, threads: int) -> None:
    load_study(req)  # create the study once, before the workers race to
    shares = trial_shares(req.trials, workers)
    print(f"sweep: {len(shares)} workers x {threads} threads, trials {shares}", flush=True)
    # spawn, not fork: a forked worker would inherit torch's thread pools and CUDA state
    context = torch.multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(shares), mp_context=context) as pool:
        jobs = [pool.submit(_worker, dataclasses.replace(req, trials=n), data, str(device), threads) for n in shares]
        errors = [job.exception() for job in jobs]
    failed = [err for err in errors if err is not None]
    if failed:
        raise SweepWorkerError(f"{len(failed)} of {len(jobs)} sweep workers failed ({failed[0]!r}); the trials "
                               f"they finished are in the study: rerun the same command to add the rest")


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def best_overrides(study: optuna.Study, digits: int = 4) -> dict[str, Any]:
    """The best trial's parameters, floats rounded to ``digits`` significant digits (readable labels)."""
    if not finished_trials(study):
        raise ValueError(f"study {study.study_name!r} has no finished trial yet; run more trials")
    return {k: float(f"{v:.{digits}g}") if isinstance(v, float) else v for k, v in study.best_params.items()}


def save_best(study: optuna.Study, req: SweepRequest) -> Path | None:
    """Write the best parameters and the budget to ``<results>/sweeps/<study>.json``."""
    if not finished_trials(study):
        return None
    path = Path(req.results) / "sweeps" / f"{study.study_name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = {"study": study.study_name, "best_value": study.best_value, "best_params": study.best_params,
               "trials": len(study.trials), "finished": len(finished_trials(study)),
               "pruned": len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))}
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return path
