"""Command line: ``python -m benchmarks run | sweep | export | leaderboard | results | list``.

Exit status: 0 done; 1 ``leaderboard --check`` found differences; 2 bad input (one
line naming the bad value and the valid choices, no traceback), or a results
folder or database that cannot be written, before or during a run (what was
stored stays); 130 interrupted.

The results store is ``RESULTS/results.sqlite`` unless ``--results-db URL`` (or
``$BENCHMARKS_RESULTS_DB``) names another: ``postgresql://...`` for many workers
sharing one database. Checkpoints and features stay under ``--results``.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from benchmarks import leaderboard
from benchmarks.plan import Plan, RunRequest
from benchmarks.plan import describe as describe_plan
from benchmarks.presets import PRESETS
from benchmarks.provenance import reproduction_command
from benchmarks.runner import UsageError, execute, prepare, validate
from benchmarks.store import (
    URL_FORMS,
    NoStoreError,
    ResultsStore,
    StoreError,
    database_url,
    store_file,
)
from core.data import DatasetError
from core.files import CorruptCacheError
from core.host_memory import retain_freed_memory
from datasets import available_datasets, dataset_module, load_dataset
from methods.base import METHODS, available_methods
from protocols.base import PROTOCOLS, available_protocols

LISTABLE = ("methods", "protocols", "datasets", "presets")
FORMATS = ("csv", "json", "md")
# The results database when --results-db is not given (many workers, one database: export it once).
RESULTS_DB_ENV = "BENCHMARKS_RESULTS_DB"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line (and exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers (e.g. 0,1,2)") from None
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: seeds must be non-negative integers")
    return seeds


def _positive(what: str, hint: str = "") -> Callable[[str], int]:
    """An argparse type: a positive integer, or one line naming the bad value (``hint``: what is sensible)."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            n = 0
        if n < 1:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of {what} ({hint or 'e.g. 2'})")
        return n
    return parse


_threads = _positive("threads", f"e.g. 1; this machine has {os.cpu_count()} cores")


def _fair_share_threads(requested: int | None) -> None:
    """Intra-op threads for this process: ``--threads``, else ``$OMP_NUM_THREADS`` (torch reads it),
    else torch's default (every core). Several runs or sweep workers on one machine should each take
    their share (cores / processes): at the default, two oversubscribe a 2-core machine ~20x."""
    if requested is not None:
        torch.set_num_threads(requested)


def _times(text: str) -> tuple[float, ...]:
    try:
        ts = tuple(float(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers (e.g. 0,0.5,1)") from None
    bad = [t for t in ts if not 0.0 <= t <= 1.0]
    if bad:
        raise argparse.ArgumentTypeError(f"{text!r}: t must lie in [0, 1]; got {bad[0]}")
    return ts


def _add_results_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results-db", default=None, metavar="URL",
                        help=f"the results store's database, to share one among many workers: {URL_FORMS}; "
                             f"default ${RESULTS_DB_ENV}, else RESULTS/results.sqlite (caches stay under --results)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    # What a run and a sweep both need: the data, the preset and its overrides, the folders, the device.
    common = OneLineParser(add_help=False)
    common.add_argument("--method", type=_names, required=True,
                        help="comma-separated methods (see `list methods`); a sweep tunes one")
    common.add_argument("--protocol", type=_names, required=True,
                        help="comma-separated protocols; a sweep's one gives its validation objective")
    common.add_argument("--dataset", default="digits",
                        help="digits (default), mnist, cifar10, cifar100, miniimagenet, folder:PATH")
    common.add_argument("--preset", default="quick", help=f"one of {', '.join(PRESETS)} (default quick)")
    common.add_argument("--data-root", default="data", help="where dataset files are (default data/)")
    common.add_argument("--download", action="store_true", help="download missing datasets (needs internet)")
    common.add_argument("--results", default="results", help="results store and caches (default results/)")
    _add_results_db(common)
    common.add_argument("--leaderboards", default="leaderboards",
                        help="generated leaderboards (default leaderboards/)")
    common.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    common.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any preset setting, e.g. --set latent_dim=2 (repeatable; "
                             "in a sweep, fixed for every trial)")
    common.add_argument("--no-progress", action="store_true", help="no progress bars")
    common.add_argument("--threads", type=_threads, default=None,
                        help="intra-op CPU threads of this process (default: $OMP_NUM_THREADS, else every "
                             "core); give N concurrent runs or sweep workers on one machine cores/N each")

    common.add_argument("--rerun", action="store_true",
                        help="recompute runs the store already holds at this commit with these settings "
                             "(skipped by default: they would store the same numbers)")

    run = sub.add_parser("run", parents=[common], help="pretrain, evaluate, store, regenerate the leaderboards")
    run.add_argument("--seeds", type=_seeds, default=(0,), help="comma-separated integers (default 0)")
    run.add_argument("--dry-run", action="store_true",
                     help="check everything and print the plan (what is cached, what would be computed); "
                          "compute and write nothing")

    sweep = sub.add_parser("sweep", parents=[common],
                           help="tune a method on validation with Optuna; --finalize evaluates the best")
    sweep.add_argument("--trials", type=int, default=10, help="trials to add to the study (default 10)")
    sweep.add_argument("--storage", default="",
                       help="Optuna RDB URL (sqlite:///..., postgresql://...) or a journal file path "
                            "(default: the --results-db database when it is PostgreSQL, "
                            "else sqlite:///RESULTS/optuna.sqlite)")
    sweep.add_argument("--study", default="", help="study name (default DATASET-METHOD-PROTOCOL-PRESET)")
    sweep.add_argument("--workers", type=_positive("workers"), default=1,
                       help="worker processes on this machine sharing the study (default 1); each takes "
                            "cores/N intra-op threads unless --threads says otherwise")
    sweep.add_argument("--timeout", type=float, default=None, help="stop adding trials after SECONDS")
    sweep.add_argument("--seed", type=int, default=0, help="the trials' pretraining seed (default 0)")
    sweep.add_argument("--finalize", action="store_true",
                       help="no new trials: run the best parameters with --seeds on the test split")
    sweep.add_argument("--seeds", type=_seeds, default=(0, 1, 2), help="seeds for --finalize (default 0,1,2)")

    export = sub.add_parser("export", help="write a pretrained run's codes at chosen t to a .npz file")
    export.add_argument("--method", required=True, help="one method (see `list methods`)")
    export.add_argument("--dataset", default="digits", help="as for run (default digits)")
    export.add_argument("--seed", type=int, default=0, help="the pretraining seed (default 0)")
    export.add_argument("--t", dest="ts", type=_times, required=True, help="comma-separated t in [0, 1], e.g. 0,0.5,1")
    export.add_argument("--out", required=True, help="the .npz file to write")
    export.add_argument("--preset", default="quick", help=f"one of {', '.join(PRESETS)} (default quick)")
    export.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="the run's preset overrides (repeatable), as given to run")
    export.add_argument("--data-root", default="data", help="where dataset files are (default data/)")
    export.add_argument("--download", action="store_true", help="download missing datasets (needs internet)")
    export.add_argument("--results", default="results", help="results store and caches (default results/)")
    export.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    export.add_argument("--no-progress", action="store_true", help="no progress bars")
    export.add_argument("--threads", type=_threads, default=None, help="intra-op CPU threads, as for run")

    board = sub.add_parser("leaderboard", help="regenerate the leaderboards from the results store")
    board.add_argument("--results", default="results")
    _add_results_db(board)
    board.add_argument("--leaderboards", default="leaderboards")
    board.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 if the leaderboards differ from what the store generates")

    results = sub.add_parser("results", help="print the results store")
    results.add_argument("--results", default="results")
    _add_results_db(results)
    results.add_argument("--format", default="csv", choices=FORMATS)

    lister = sub.add_parser("list", help="list registered components")
    lister.add_argument("what", nargs="?", choices=LISTABLE + ("all",), default="all")
    return parser


def _run_request(args: argparse.Namespace, argv: Sequence[str]) -> RunRequest:
    """The run that ``run`` (or ``sweep --finalize``, with the best parameters added) makes."""
    return RunRequest(
        methods=args.method, protocols=args.protocol, dataset=args.dataset, preset=args.preset,
        seeds=args.seeds, overrides=tuple(args.overrides), data_root=args.data_root,
        download=args.download, results=args.results, leaderboards=args.leaderboards,
        device=args.device, progress=not args.no_progress,
        command=reproduction_command(argv), results_db=args.results_db, rerun=args.rerun,
    )


def _results_db(given: str | None) -> str:
    """--results-db, else $BENCHMARKS_RESULTS_DB, else '' (the SQLite file under --results); a bad URL is a
    UsageError naming where it came from."""
    source, value = ("--results-db", given) if given is not None else (RESULTS_DB_ENV, os.environ.get(RESULTS_DB_ENV, ""))
    if value:
        try:
            database_url(value, source)
        except StoreError as err:
            raise UsageError(str(err)) from None
    return value


def _open_store(args: argparse.Namespace, read_only: bool = False) -> ResultsStore:
    """The store ``leaderboard`` and ``results`` read: a bad path, URL or server is one line, exit 2."""
    try:
        return ResultsStore(args.results, read_only=read_only, url=args.results_db or None)
    except StoreError as err:
        raise UsageError(str(err)) from None


def cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    request = _run_request(args, argv)
    checked = validate(request)
    if args.dry_run:
        print(describe_plan(checked, prepare(checked)))
        return 0
    store, dataset = _execute_keeping_results(checked)
    if store is None:  # a torchrun rank other than 0: it helped pretrain, rank 0 reports
        return 0
    frame = store.frame()
    for protocol in request.protocols:
        print(leaderboard.format_summary(frame, dataset, protocol))
    return 0


# Errors of a folder that stopped being writable partway through a run (disk full, permissions...).
_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR}


def _execute_keeping_results(checked: Plan) -> tuple[ResultsStore | None, str]:
    """``execute``, with a write failure partway reported as one line: every run stored before it stays."""
    try:
        return execute(checked)
    except CorruptCacheError as err:  # a damaged file that could not even be moved aside
        raise UsageError(str(err)) from None
    except (StoreError, OSError) as err:
        if isinstance(err, OSError) and err.errno not in _WRITE_ERRNOS:
            raise
        if isinstance(err, StoreError) and store_file(checked.request.results, checked.request.results_db) is None:
            raise UsageError(f"{err}; the runs stored before this are kept") from None  # a server database
        raise UsageError(f"cannot write under --results {checked.request.results} or --leaderboards "
                         f"{checked.request.leaderboards} ({err}); the runs stored before this are kept: "
                         f"make the folders writable and rerun the same command to resume") from None


def cmd_sweep(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from benchmarks import sweep  # optuna is imported only by the command that needs it

    if args.trials < 1:
        raise UsageError(f"--trials {args.trials}: give a positive number of trials")
    base = _run_request(args, argv)
    plan = validate(base)
    if len(base.methods) != 1 or len(base.protocols) != 1:
        raise UsageError(f"sweep tunes one method on one protocol; got --method {','.join(base.methods)!r} "
                         f"--protocol {','.join(base.protocols)!r}")
    req = sweep.SweepRequest(
        method=base.methods[0], protocol=base.protocols[0], dataset=args.dataset, preset=args.preset,
        trials=args.trials, storage=args.storage, study=args.study, timeout=args.timeout, seed=args.seed,
        overrides=tuple(sorted(plan.overrides.items())), results=args.results, device=str(plan.device),
        results_db=args.results_db)
    if args.finalize:
        study = sweep.load_study(req)
        try:
            best = sweep.best_overrides(study)
        except ValueError as err:
            raise UsageError(str(err)) from None
        run = dataclasses.replace(
            base, overrides=base.overrides + tuple(f"{k}={v}" for k, v in sorted(best.items())),
            sweep={"study": study.study_name, "trials": len(study.trials), "best_value": study.best_value})
        store, dataset = _execute_keeping_results(validate(run))
        if store is not None:  # None: a torchrun rank other than 0
            print(leaderboard.format_summary(store.frame(), dataset, req.protocol))
        return 0
    try:
        data = load_dataset(args.dataset, root=args.data_root, download=args.download)
    except DatasetError as err:
        raise UsageError(str(err)) from None
    try:
        study = sweep.run_sweep(req, data, plan.device, workers=args.workers, threads=args.threads)
    except sweep.SweepWorkerError as err:
        print(f"python -m benchmarks: error: {err}", file=sys.stderr)
        return 1
    done = sweep.finished_trials(study)
    print(f"study {study.study_name}: {len(study.trials)} trials, {len(done)} finished")
    if done:
        print(f"best validation {study.best_value:.4f} with {study.best_params}")
        print(f"evaluate it on test: python -m benchmarks sweep --method {req.method} --protocol {req.protocol} "
              f"--dataset {args.dataset} --preset {args.preset} --study {study.study_name}"
              f"{' --storage ' + args.storage if args.storage else ''}"
              f"{' --results-db ' + args.results_db if args.results_db_given else ''} --finalize --seeds 0,1,2")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from benchmarks.export import export_codes

    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: seeds are non-negative integers")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise UsageError(f"--out {args.out}: the file name must end in .npz")
    if out.is_dir():
        raise UsageError(f"--out {args.out} is a folder; valid: a .npz file path")
    request = RunRequest(
        methods=_names(args.method), protocols=(), dataset=args.dataset, preset=args.preset, seeds=(args.seed,),
        overrides=tuple(args.overrides), data_root=args.data_root, download=args.download, results=args.results,
        device=args.device, progress=not args.no_progress, encode_only=True)
    if len(request.methods) != 1:
        raise UsageError(f"--method {args.method!r}: export writes one method's codes; give one")
    plan = validate(request)
    try:
        export_codes(plan, args.seed, args.ts, out, log=lambda s: print(s, file=sys.stderr))
    except OSError as err:
        raise UsageError(f"--out {args.out}: cannot write it ({err.strerror or err}); "
                         "valid: a path in a folder this user can write to") from None
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    path = store_file(args.results, args.results_db or None)
    if path is not None and not path.is_file():
        valid = "a folder holding results.sqlite" if not args.results_db else "--results-db naming a store file"
        raise UsageError(f"--check: no results store at {path}; valid: {valid}")
    try:
        opened = ResultsStore(args.results, read_only=path is None, url=args.results_db or None)
    except NoStoreError as err:  # a server database nothing was written to
        raise UsageError(f"--check: {err}") from None
    except StoreError as err:
        raise UsageError(str(err)) from None
    store = opened.location
    problems = leaderboard.check(opened.frame(), args.leaderboards)
    for line in problems:
        print(line)
    if problems:
        print(f"{args.leaderboards}/ differs from what {store} generates in {len(problems)} files; "
              f"rerun: python -m benchmarks leaderboard --results {args.results} --leaderboards {args.leaderboards}"
              f"{' --results-db ' + args.results_db if args.results_db_given else ''}")
        return 1
    print(f"{args.leaderboards}/ is exactly what {store} generates")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Each registered method, protocol and dataset with the module that defines it; the presets."""
    registered = {"methods": (available_methods, METHODS.module_of),
                  "protocols": (available_protocols, PROTOCOLS.module_of),
                  "datasets": (available_datasets, dataset_module)}
    for what in (LISTABLE if args.what == "all" else (args.what,)):
        if what == "presets":
            print(f"presets: {', '.join(PRESETS)}")
            continue
        names, module_of = registered[what]
        rows = [(name, module_of(name)) for name in names()]
        width = max(len(name) for name, _ in rows)
        print(f"{what}:")
        for name, module in rows:
            print(f"  {name:<{width}}  {module}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    _fair_share_threads(getattr(args, "threads", None))
    retain_freed_memory()  # steps reuse their freed activations instead of faulting pages in anew
    try:
        if hasattr(args, "results_db"):
            args.results_db_given = args.results_db is not None
            args.results_db = _results_db(args.results_db)
        if args.command == "run":
            return cmd_run(args, argv)
        if args.command == "sweep":
            return cmd_sweep(args, argv)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "leaderboard" and args.check:
            return cmd_check(args)
        if args.command == "leaderboard":
            written = leaderboard.generate(_open_store(args).frame(), args.leaderboards)
            print(f"{args.leaderboards}/ holds the {len(written)} files the store generates "
                  "(figures redrawn only where their data changed)")
            return 0
        if args.command == "results":
            sys.stdout.write(_open_store(args).export(args.format))
            return 0
        return cmd_list(args)
    except (UsageError, StoreError) as err:  # StoreError: a store that stopped answering after it opened
        parser.exit(2, f"{parser.prog}: error: {' '.join(str(err).split())}\n")
    except FloatingPointError as err:  # a diverged pretraining: the message names method, step and terms
        parser.exit(1, f"{parser.prog}: error: {err}; the runs stored before this are kept\n")
    except KeyboardInterrupt:
        parser.exit(130, "interrupted: finished results are stored; rerun the same command to resume\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
