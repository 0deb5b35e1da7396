"""Pretraining throughput and same-seed spread of DRL, for ``tox -e gpu`` and by hand on any device.

    python -m tests.perf.throughput --device cpu --steps 2 --option fp32
    python -m tests.perf.throughput --device cpu --steps 2 --set score_width=24 --set score_blocks=1
    python -m tests.perf.throughput --device cpu --steps 2 --option bf16+channels_last   # as labelled, CPUs too
    python -m tests.perf.throughput --device cpu --steps 2 --option fp32+channels_last --set compile=true
    python -m tests.perf.throughput --device cpu --steps 2 --malloc default   # glibc's own malloc settings
    python -m tests.perf.throughput --device cuda --steps 50 --option bf16+channels_last+fused+cudagraphs

prints one line: DRL at the ``paper`` preset on CIFAR-10-sized random images
(the cost does not depend on pixels), images/s over ``--steps`` steps after a
5-step warm-up, peak memory and the ratio to the GPU target (12,000 images/s)
on CUDA, and the hours the paper's 70k iterations would take at that speed.
``tests/perf/test_bench_gpu.py`` runs the same on CUDA.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import TypeVar

import torch

from benchmarks.presets import SettingError, canonical_variant, parse_overrides, preset_settings
from core.data import DataSplits, ImageData
from core.host_memory import MALLOC_CHOICES, malloc_in_effect
from methods.base import Budget, get_method_class
from methods.training import History, TrainOptions
from tests.conftest import preset_method

SHAPE = (3, 32, 32)
PAPER_ITERATIONS = preset_settings("paper", SHAPE)["iterations"]
OPTIONS = {
    "fp32": TrainOptions(precision="fp32", layout="contiguous"),
    "bf16+channels_last+fused": TrainOptions(),  # the CUDA default; on a CPU it runs as fp32, contiguous
    "bf16+channels_last+fused+compile": TrainOptions(compile=True),
    # the same compiled with CUDA graphs: each forward and backward one launch (a CPU compiles without them)
    "bf16+channels_last+fused+cudagraphs": TrainOptions(compile=True, compile_mode="reduce-overhead"),
    "fp32+compile": TrainOptions(precision="fp32", layout="contiguous", compile=True),
    # as asked on any device, CPUs too (bf16 autocast: AMX or AVX-512 BF16 matrix instructions)
    "bf16": TrainOptions(precision="bf16", layout="contiguous"),
    "fp32+channels_last": TrainOptions(precision="fp32", layout="channels_last"),
    "bf16+channels_last": TrainOptions(precision="bf16", layout="channels_last"),
    "fp32+channels_last+compile": TrainOptions(precision="fp32", layout="channels_last", compile=True),
}
# tox -e gpu's: compiled in the mode the GPU target needs (each compile takes a minute or more of the
# run's budget; the default mode's option runs by hand, and tests/test_gpu.py trains in both modes)
GPU_OPTIONS = ("fp32", "bf16+channels_last+fused", "bf16+channels_last+fused+cudagraphs")
# Issue 18's target on one H200-class GPU: the papers' 70k steps of 100 images in under 10 minutes.
GPU_TARGET_IMAGES_PER_S = 12_000


def random_cifar_like() -> DataSplits:
    g = torch.Generator().manual_seed(0)
    images = ImageData(torch.randint(0, 256, (10_000, *SHAPE), generator=g, dtype=torch.uint8),
                       torch.randint(0, 10, (10_000,), generator=g))
    small = ImageData(images.images[:10], images.labels[:10])
    return DataSplits(name="cifar-like", train=images, val=small, test=small, num_classes=10,
                      classes=tuple(map(str, range(10))), mean=(0.5,) * 3, std=(0.25,) * 3)


def measure(data: DataSplits, options: TrainOptions, device: str = "cuda", steps: int = 50,
            timer: Callable[[Callable[[], History]], History] = lambda f: f(),
            **overrides) -> tuple[History, int, float]:
    """Pretrain DRL at the paper preset (and ``overrides``) for ``steps`` after a 5-step warm-up:
    (History, batch size, hours for 70k)."""
    method, budget = preset_method("drl", data, "paper", **overrides)
    method.to(device)
    method.fit(data.train, dataclasses.replace(budget, iterations=5), progress=False,
               options=options)  # warm-up: cuDNN autotuning, compilation
    cuda = device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def timed() -> History:
        history = method.fit(data.train, dataclasses.replace(budget, iterations=steps), progress=False,
                             options=options)
        if cuda:
            torch.cuda.synchronize()
        return history

    history = timer(timed)
    return history, budget.batch_size, PAPER_ITERATIONS * budget.batch_size / history.images_per_s / 3600


REFERENCE_GFLOP_PER_STEP = 233.5  # the reference's NCSN++-small + WRN-28-2 step, batch 100, same counter


def gflop_per_step(data: DataSplits, **overrides) -> float:
    """FLOPs of one training step (forward and backward) of DRL at the paper preset (and ``overrides``),
    torch's counter."""
    from torch.utils.flop_counter import FlopCounterMode

    method, budget = preset_method("drl", data, "paper", **overrides)
    batch = data.train.images[:budget.batch_size]
    with FlopCounterMode(display=False) as counter:
        loss, _ = method.loss(method.prepare(batch))
        loss.backward()
    return counter.get_total_flops() / 1e9


def ran_as(options: TrainOptions, device: str) -> str:
    """What an option set does on ``device``, as pretraining resolves it: a label alone can say more than
    ran (the CUDA default's bf16 and channels-last are fp32 and contiguous on a CPU)."""
    where = torch.device(device)
    layout = "channels-last" if options.resolved_channels_last(where) else "contiguous"
    compiled = ""
    if options.compile:
        compiled = ", compiled with CUDA graphs" if options.uses_cuda_graphs(where) else ", compiled"
    return f"{options.resolved_precision(where)}, {layout}{compiled}"


def throughput_line(history: History, batch_size: int, hours: float, option: str, device: str,
                    gflop: float | None = None, variant: str = "", options: TrainOptions | None = None) -> str:
    """One line: what ran and how fast. ``options``: what ran, where ``--set`` changed ``option``'s."""
    cuda = device == "cuda"
    where = torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)"
    cuda_only = ""  # peak memory (measured on CUDA only) and the GPU target
    if cuda:
        cuda_only = (f", peak {history.peak_memory_mb:.0f} MiB, {history.images_per_s / GPU_TARGET_IMAGES_PER_S:.2f}x "
                     f"the target of {GPU_TARGET_IMAGES_PER_S:,} images/s")
    flops = "" if gflop is None else (f", {gflop:.1f} GFLOP per step "
                                      f"({gflop / REFERENCE_GFLOP_PER_STEP:.3f}x the reference's)")
    preset = f"paper preset [{variant}]" if variant else "paper preset"
    return (f"drl {preset}, {SHAPE[1]}x{SHAPE[2]}x{SHAPE[0]}, batch {batch_size}, {option} "
            f"({ran_as(options or OPTIONS[option], device)}): {history.images_per_s:.1f} images/s{cuda_only}{flops}, "
            f"{PAPER_ITERATIONS} iterations = {hours:.1f} h on {where}")


def same_seed_spread(data: DataSplits, options: TrainOptions, device: str = "cuda", steps: int = 200) -> dict:
    """Train the quick preset's DRL twice with one seed on ``device``; how far apart the two end.

    Returns the largest relative difference of their test codes at t = 0.5 and the
    difference of a linear probe's test accuracy on those codes (fit on train, scored once).
    """
    from sklearn.linear_model import LogisticRegression

    codes, accuracies = [], []
    for _ in range(2):
        method, budget = preset_method("drl", data, "quick", iterations=steps)  # reseeds: the same start
        method.to(device).fit(data.train, budget, progress=False, options=options)
        z = {s: method.encode(data.split(s).images, torch.full((len(data.split(s)),), 0.5)).cpu()
             for s in ("train", "test")}
        probe = LogisticRegression(max_iter=500).fit(z["train"].numpy(), data.train.labels.numpy())
        accuracies.append(probe.score(z["test"].numpy(), data.test.labels.numpy()))
        codes.append(z["test"])
    scale = codes[0].abs().max().item()
    return {"max_relative_code_difference": (codes[0] - codes[1]).abs().max().item() / scale,
            "accuracy_difference": abs(accuracies[0] - accuracies[1])}


Result = TypeVar("Result")


def profiled(top: int) -> Callable[[Callable[[], Result]], Result]:
    """A timer that runs the timed steps under torch.profiler and prints the ``top`` operators by their
    own time (share of the whole): where a step's time goes. ``measure`` and the papers' step take it."""
    def timer(steps: Callable[[], Result]) -> Result:
        with torch.profiler.profile() as profile:
            result = steps()
        print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=44))
        return result
    return timer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--option", default="fp32", choices=list(OPTIONS))
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also print the N operators that took most time over the timed steps (torch.profiler; "
                             "the profiler slows the steps, so the images/s of a profiled run read low)")
    parser.add_argument("--malloc", default="retain", choices=MALLOC_CHOICES,
                        help="retain (default): freed memory kept for reuse, as the command line sets "
                             "(core.host_memory); default: glibc's own settings")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a paper-preset setting of DRL, e.g. --set score_width=24, or a training "
                             "option of --option's, e.g. --set compile=true (repeatable)")
    args = parser.parse_args()
    try:
        overrides = parse_overrides(args.overrides, [get_method_class("drl").config_cls, Budget, TrainOptions])
    except SettingError as err:
        parser.error(str(err))  # one line, exit status 2
    option_fields = {f.name for f in dataclasses.fields(TrainOptions)}
    try:  # a training option's value is checked when the options are built
        options = dataclasses.replace(OPTIONS[args.option],
                                      **{k: v for k, v in overrides.items() if k in option_fields})
    except ValueError as err:
        parser.error(str(err))
    overrides = {k: v for k, v in overrides.items() if k not in option_fields}
    if args.profile < 0:
        parser.error(f"--profile {args.profile}: give a number of operators, 1 or more (0: no profile)")
    malloc = malloc_in_effect(args.malloc)
    data = random_cifar_like()
    timer = profiled(args.profile) if args.profile else (lambda f: f())
    history, batch, hours = measure(data, options, args.device, args.steps, timer, **overrides)
    print(throughput_line(history, batch, hours, args.option, args.device, gflop_per_step(data, **overrides),
                          canonical_variant(overrides), options) + f", malloc {malloc}")


if __name__ == "__main__":
    main()
