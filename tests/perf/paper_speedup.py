"""The paper preset's training step against the papers' own, alternated in one sitting: issue 18's ratio.

    python -m tests.perf.paper_speedup REFDIR --alternations 3 --steps 10
    python -m tests.perf.paper_speedup REFDIR --suite fp32 bf16 --alternations 5

REFDIR is the reference's ``score_sde_pytorch`` folder (see ``tests.perf.paper_code_throughput``).
Each alternation runs every command once, one after the other, each in a
fresh process: the reference's step as it ships (fp32, glibc's malloc
defaults), the reference like for like (fp32 and bf16, freed memory retained
as the suite's command line keeps it), then the suite's ``paper`` preset under
each ``--suite`` option (``tests.perf.throughput``). Alternating keeps the
machine's drift, up to a fifth within a sitting on shared machines, out of
the ratios. Each measurement is printed as it comes; at the end (or at
Ctrl-C, for the alternations completed) a table of images/s per alternation
and, per suite option, its ratio to the reference as shipped and to the
reference at its own precision: the median and the range over alternations.
Run nothing else on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.leaderboard.markdown import md_table
from tests.perf.throughput import OPTIONS

SUITE_DEFAULT = ("fp32", "fp32+channels_last", "bf16")
IMAGES_PER_S = re.compile(r": ([0-9]+(?:\.[0-9]+)?) images/s")
AS_SHIPPED = "reference fp32, as shipped"


@dataclass(frozen=True)
class Command:
    label: str
    argv: tuple[str, ...]
    precision: str  # fp32 or bf16: the reference it is compared with like for like
    suite: bool = False  # the suite's step (reported as ratios), not a reference's


class MeasurementError(RuntimeError):
    """A timing command failed or printed no images/s."""


def reference_label(precision: str) -> str:
    return f"reference {precision}, memory retained"


def precision_of(option: str) -> str:
    """The precision ``option`` runs in on a CPU (the CUDA default's label runs fp32 there)."""
    return OPTIONS[option].resolved_precision(torch.device("cpu"))


def commands(refdir: Path, suite: Sequence[str], steps: int) -> list[Command]:
    """One alternation: the reference as shipped, the reference at each precision the suite runs (memory
    retained), then the suite under each option; all on the CPU."""
    python = (sys.executable, "-m")
    reference = (*python, "tests.perf.paper_code_throughput", str(refdir), "--device", "cpu", "--steps", str(steps))
    runs = [Command(AS_SHIPPED, (*reference, "--precision", "fp32", "--malloc", "default"), "fp32")]
    for precision in sorted({precision_of(option) for option in suite}, key=("fp32", "bf16").index):
        runs.append(Command(reference_label(precision),
                            (*reference, "--precision", precision, "--malloc", "retain"), precision))
    for option in suite:
        argv = (*python, "tests.perf.throughput", "--device", "cpu", "--steps", str(steps), "--option", option)
        runs.append(Command(f"suite {option}", argv, precision_of(option), suite=True))
    return runs


def run_command(argv: Sequence[str]) -> str:
    """Run one timing command; its last line of output (what it measured)."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise MeasurementError(f"exited {done.returncode}: {tail}")
    return lines[-1]


def images_per_s(line: str) -> float:
    found = IMAGES_PER_S.search(line)
    if found is None:
        raise MeasurementError(f"no images/s in the line {line!r}")
    return float(found.group(1))


def ratio_summary(ratios: Sequence[float]) -> str:
    """The median ratio, and the range when there are several."""
    median = f"{statistics.median(ratios):.2f}x"
    return median if len(ratios) == 1 else f"{median} ({min(ratios):.2f}x to {max(ratios):.2f}x)"


def report(runs: Sequence[Command], measured: Sequence[dict[str, float]]) -> str:
    """A markdown table of images/s per alternation, then each suite option's ratios."""
    lines = md_table(["alternation", *(run.label for run in runs)],
                     [[str(i), *(f"{one[run.label]:.1f}" for run in runs)] for i, one in enumerate(measured, start=1)])
    for run in (run for run in runs if run.suite):
        shipped = [one[run.label] / one[AS_SHIPPED] for one in measured]
        same = [one[run.label] / one[reference_label(run.precision)] for one in measured]
        lines.append(f"{run.label}: {ratio_summary(shipped)} the reference as shipped, "
                     f"{ratio_summary(same)} the reference in {run.precision} with memory retained")
    return "\n".join(lines)


def alternate(runs: Sequence[Command], alternations: int, run: Callable[[Sequence[str]], str] = run_command,
              log: Callable[[str], None] = print) -> tuple[list[dict[str, float]], str | None]:
    """images/s of every command per complete alternation, each line logged as it is measured; and why
    it stopped early (a failed command, Ctrl-C), None when it ran them all."""
    measured: list[dict[str, float]] = []
    try:
        for i in range(1, alternations + 1):
            one = {}
            for command in runs:
                try:
                    line = run(command.argv)
                    one[command.label] = images_per_s(line)
                except MeasurementError as err:
                    return measured, f"{command.label} (alternation {i}): {err}"
                log(f"[{i}/{alternations}] {line}")
            measured.append(one)
    except KeyboardInterrupt:
        return measured, "interrupted"
    return measured, None


def main(argv: list[str] | None = None, run: Callable[[Sequence[str]], str] = run_command) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.paper_speedup", description=__doc__.splitlines()[0])
    parser.add_argument("refdir", type=Path, help="the score_sde_pytorch folder of the DRL paper's code")
    parser.add_argument("--suite", nargs="+", default=list(SUITE_DEFAULT), choices=list(OPTIONS), metavar="OPTION",
                        help=f"tests.perf.throughput options to time (default: {' '.join(SUITE_DEFAULT)}; "
                             f"valid: {', '.join(OPTIONS)})")
    parser.add_argument("--alternations", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="timed steps of each command")
    args = parser.parse_args(argv)
    for name in ("alternations", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)}: give 1 or more")
    if not (args.refdir / "models" / "ncsnpp.py").is_file():
        parser.error(f"refdir {str(args.refdir)!r} holds no models/ncsnpp.py; "
                     "give the score_sde_pytorch folder of korabs-x/representation_score_based")
    runs = commands(args.refdir, list(dict.fromkeys(args.suite)), args.steps)
    measured, stopped = alternate(runs, args.alternations, run, lambda line: print(line, flush=True))
    if measured:  # what was measured is reported, even when a later command failed
        print(report(runs, measured))
    if stopped is not None:
        print(f"paper_speedup: stopped after {len(measured)} of {args.alternations} alternations: {stopped}",
              file=sys.stderr)
        return 130 if stopped == "interrupted" else 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
