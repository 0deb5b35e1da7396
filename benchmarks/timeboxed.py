"""A comparison that fits a wall-clock budget: measure, size one budget for all, run.

    python -m benchmarks.timeboxed --minutes 6                     # the reduced CIFAR-10 comparison, on a GPU
    python -m benchmarks.timeboxed --minutes 6 --dry-run           # measure and plan only

Every method gets the same pretraining budget (iterations x batch), so the
ranking stays a comparison under one budget; the wall clock only decides how
large that budget is. The steps:

1. check the run as ``run`` does and load the dataset (its time counts against the budget,
   twice: the run loads it again);
2. time each method's training step at the preset on the real training images
   (a few warm-up steps, then ``--measure-steps``) with the options a run uses
   on that device (bf16 autocast, channels-last and fused Adam on CUDA);
3. time one evaluation (encoding every split at the protocol's t and running
   the protocol) of the method with the largest encoder, as it is after its
   timed steps: neither the codes nor the heads depend on the pretraining
   budget, so each run's evaluation costs about that (the others' at most);
4. keep that for every run, and give the rest to pretraining: ``iterations =
   seconds / (seeds x sum(step time of each method))``, the same for every
   method, rounded down;
5. run ``python -m benchmarks run --set iterations=N`` on all methods, which
   stores the rows (a budget of its own on the pages: grouped by images seen)
   with that command as their reproduction line; then print the planned and the
   spent wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.__main__ import _seeds
from benchmarks.__main__ import main as benchmarks_main
from benchmarks.cache import FeatureCache
from benchmarks.plan import RunRequest, Setup
from benchmarks.presets import PRESETS
from benchmarks.runner import UsageError, prepare, validate
from core.seeding import seed_everything
from methods.base import DataSpec, Method, create_method
from protocols.base import Encoded

DEFAULT_METHODS = ("drl", "vdrl", "ae", "cdae", "simclr-gauss")
WARMUP_STEPS = 3  # cuDNN autotuning and allocator growth, not timed


@dataclass(frozen=True)
class StepTime:
    method: str
    seconds_per_step: float
    batch_size: int


@dataclass(frozen=True)
class TimedBudget:
    """One pretraining budget for every method, and the wall time it is planned to take."""

    iterations: int
    pretrain_seconds: float   # planned for all methods and seeds together
    reserved_seconds: float   # encoding and the protocols of every run


def time_step(name: str, setup: Setup, device: torch.device, steps: int) -> tuple[StepTime, Method]:
    """Seconds per training step of ``name`` with the run's config, budget and options on its training images,
    and the method after those steps."""
    data, budget, options = setup.data, setup.budget, setup.options
    seed_everything(0)
    method = create_method(name, setup.method_cfgs[name], DataSpec(data.image_shape, data.mean, data.std)).to(device)
    method.fit(data.train, dataclasses.replace(budget, iterations=WARMUP_STEPS), progress=False, options=options)
    _synchronize(device)
    started = time.perf_counter()
    method.fit(data.train, dataclasses.replace(budget, iterations=steps), progress=False, options=options)
    _synchronize(device)  # the device's time, not the launch queue's
    return StepTime(name, (time.perf_counter() - started) / steps, budget.batch_size), method


def time_evaluation(method: Method, setup: Setup, device: torch.device) -> float:
    """Seconds to encode the data and run every protocol once on ``method``, codes cached in a scratch folder
    (the store and the run's caches untouched)."""
    with tempfile.TemporaryDirectory(prefix="timeboxed-") as scratch:
        root = Path(scratch)
        encoded = Encoded(method, setup.data, FeatureCache(root, "timing", method, setup.data), seed=0,
                          device=device, artifacts=root / "artifacts")
        started = time.perf_counter()
        for name, protocol in setup.protocols.items():
            protocol.run(encoded, setup.protocol_cfgs[name])
        _synchronize(device)
        return time.perf_counter() - started


def encoder_size(method: Method) -> int:
    return sum(p.numel() for p in method.modules["encoder"].parameters())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plan_budget(step_times: Sequence[StepTime], seconds_left: float, eval_seconds: float, seeds: int = 1,
                multiple: int = 10) -> TimedBudget:
    """One iteration count for every method: what ``seconds_left`` holds once every run's evaluation
    (``eval_seconds`` each, for each method and seed) is set aside; at least ``multiple``."""
    reserved = eval_seconds * len(step_times) * seeds
    pretrain = seconds_left - reserved
    per_iteration = seeds * sum(s.seconds_per_step for s in step_times)  # one step of every run
    iterations = max(multiple, math.floor(pretrain / per_iteration / multiple) * multiple)
    return TimedBudget(iterations, iterations * per_iteration, reserved)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.timeboxed", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6.0, help="wall-clock budget of the whole comparison")
    parser.add_argument("--method", default=",".join(DEFAULT_METHODS), help="comma-separated methods")
    parser.add_argument("--protocol", default="probe", help="comma-separated protocols (default probe)")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--preset", default="paper", choices=list(PRESETS))
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--seeds", type=_seeds, default=(0,), help="comma-separated integers (default 0)")
    parser.add_argument("--measure-steps", type=int, default=20, help="timed steps per method (default 20)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--results", default="results")
    parser.add_argument("--leaderboards", default="leaderboards")
    parser.add_argument("--dry-run", action="store_true", help="measure and print the plan; run nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _timeboxed(args)
    except UsageError as err:  # the run's own checks: one line, exit status 2, as for `run`
        parser.exit(2, f"{parser.prog}: error: {' '.join(str(err).split())}\n")


def _timeboxed(args: argparse.Namespace) -> int:
    if not args.minutes > 0 or args.measure_steps < 1:
        raise UsageError(f"--minutes {args.minutes}, --measure-steps {args.measure_steps}: "
                         "valid are minutes > 0, steps >= 1")
    start = time.perf_counter()
    request = RunRequest(
        methods=tuple(m for m in args.method.split(",") if m), protocols=tuple(args.protocol.split(",")),
        dataset=args.dataset, preset=args.preset, seeds=args.seeds, data_root=args.data_root,
        results=args.results, leaderboards=args.leaderboards, device=args.device)
    plan = validate(request)  # every name, the device, the folders, the data, every config: before timing
    setup = prepare(plan)
    load_s = time.perf_counter() - start
    print(f"timeboxed: {args.dataset} loaded and checked in {load_s:.0f} s; timing {args.measure_steps} steps "
          f"of {', '.join(request.methods)} at {args.preset} on {plan.device}", flush=True)
    steps, largest, largest_size = [], None, -1  # the largest encoder: the costliest to evaluate
    for m in request.methods:
        step, method = time_step(m, setup, plan.device, args.measure_steps)
        print(f"  {step.method}: {step.seconds_per_step * 1000:.1f} ms per step of {step.batch_size} "
              f"({step.batch_size / step.seconds_per_step:.0f} images/s)", flush=True)
        steps.append(step)
        if encoder_size(method) > largest_size:
            largest, largest_size = method, encoder_size(method)
    eval_s = time_evaluation(largest, setup, plan.device)
    print(f"timeboxed: evaluating {largest.name} ({args.protocol}, encoding included) took {eval_s:.0f} s; "
          "every run keeps that", flush=True)
    del largest, method
    # the run below loads and checks the data again: keep that time too
    left = start + args.minutes * 60 - time.perf_counter() - load_s
    budget = plan_budget(steps, left, eval_s, seeds=len(request.seeds))
    over = "" if budget.reserved_seconds < left else (
        f"; evaluating alone needs more than the {max(left, 0):.0f} s left, so the box will be exceeded")
    print(f"timeboxed: {budget.iterations} iterations for every method: {budget.pretrain_seconds:.0f} s of "
          f"pretraining in all, {budget.reserved_seconds:.0f} s kept for encoding and {args.protocol}{over}",
          flush=True)
    run = ["run", "--method", ",".join(request.methods), "--protocol", args.protocol, "--dataset", args.dataset,
           "--preset", args.preset, "--device", args.device, "--seeds", ",".join(map(str, args.seeds)),
           "--set", f"iterations={budget.iterations}", "--results", args.results, "--leaderboards", args.leaderboards]
    run += ["--data-root", args.data_root] * (args.data_root != "data")  # the stored command as a user types it
    run += ["--dry-run"] * args.dry_run + ["--no-progress"] * args.no_progress
    code = benchmarks_main(run)
    spent = time.perf_counter() - start
    print(f"timeboxed: {spent:.0f} s spent of {args.minutes * 60:.0f} s planned ({spent / (args.minutes * 60):.2f}x)")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
