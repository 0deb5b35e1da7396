"""Command line: ``python -m benchmarks run | leaderboard | results | list``.

Bad input exits with status 2 and one line naming the bad value and the valid
choices; no traceback.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import leaderboard
from benchmarks.data import available_datasets
from benchmarks.presets import PRESETS
from benchmarks.runner import RunRequest, UsageError, execute, validate
from benchmarks.store import ResultsStore
from methods.base import available_methods
from protocols.base import available_protocols

LISTABLE = ("methods", "protocols", "datasets", "presets")
FORMATS = ("csv", "json", "md")


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


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    run = sub.add_parser("run", help="pretrain, evaluate, store, regenerate the leaderboards")
    run.add_argument("--method", type=_names, required=True, help="comma-separated methods (see `list methods`)")
    run.add_argument("--protocol", type=_names, required=True, help="comma-separated protocols")
    run.add_argument("--dataset", default="digits", help="digits (default), mnist, cifar10, cifar100, miniimagenet, folder:PATH")
    run.add_argument("--preset", default="quick", help=f"one of {', '.join(PRESETS)} (default quick)")
    run.add_argument("--seeds", type=_seeds, default=(0,), help="comma-separated integers (default 0)")
    run.add_argument("--data-root", default="data", help="where dataset files are (default data/)")
    run.add_argument("--download", action="store_true", help="download missing datasets (needs internet)")
    run.add_argument("--results", default="results", help="results store and caches (default results/)")
    run.add_argument("--leaderboards", default="leaderboards", help="generated leaderboards (default leaderboards/)")
    run.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override any preset setting, e.g. --set latent_dim=2 (repeatable)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    board = sub.add_parser("leaderboard", help="regenerate the leaderboards from the results store")
    board.add_argument("--results", default="results")
    board.add_argument("--leaderboards", default="leaderboards")
    board.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 if the leaderboards differ from what the store generates")

    results = sub.add_parser("results", help="print the results store")
    results.add_argument("--results", default="results")
    results.add_argument("--format", default="csv", choices=FORMATS)

    lister = sub.add_parser("list", help="list registered components")
    lister.add_argument("what", nargs="?", choices=LISTABLE + ("all",), default="all")
    return parser


def cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    request = RunRequest(
        methods=args.method, protocols=args.protocol, dataset=args.dataset, preset=args.preset,
        seeds=args.seeds, overrides=tuple(args.overrides), data_root=args.data_root,
        download=args.download, results=args.results, leaderboards=args.leaderboards,
        device=args.device, progress=not args.no_progress,
        command="python -m benchmarks " + shlex.join(argv),
    )
    store, dataset = execute(validate(request))
    frame = store.frame()
    for protocol in request.protocols:
        print(leaderboard.format_summary(frame, dataset, protocol))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    store = Path(args.results) / "results.sqlite"
    if not store.is_file():
        raise UsageError(f"--check: no results store at {store}; valid: a folder holding results.sqlite")
    problems = leaderboard.check(ResultsStore(args.results).frame(), args.leaderboards)
    for line in problems:
        print(line)
    if problems:
        print(f"{args.leaderboards}/ differs from what {store} generates in {len(problems)} files; "
              f"rerun: python -m benchmarks leaderboard --results {args.results} --leaderboards {args.leaderboards}")
        return 1
    print(f"{args.leaderboards}/ is exactly what {store} generates")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    listing = {"methods": available_methods, "protocols": available_protocols,
               "datasets": available_datasets, "presets": lambda: list(PRESETS)}
    for what in (LISTABLE if args.what == "all" else (args.what,)):
        print(f"{what}: {', '.join(listing[what]())}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args, argv)
        if args.command == "leaderboard" and args.check:
            return cmd_check(args)
        if args.command == "leaderboard":
            written = leaderboard.generate(ResultsStore(args.results).frame(), args.leaderboards)
            print(f"{len(written)} files written to {args.leaderboards}/")
            return 0
        if args.command == "results":
            sys.stdout.write(ResultsStore(args.results).export(args.format))
            return 0
        return cmd_list(args)
    except UsageError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except KeyboardInterrupt:
        parser.exit(130, "interrupted: finished results are stored; rerun the same command to resume\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
