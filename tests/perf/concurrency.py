"""Fair share of the cores: two concurrent pretraining runs on one machine, against one alone.

    python -m tests.perf.concurrency --steps 40

measures, in this one invocation (so every figure comes from the same machine
and moment): DRL's quick-preset pretraining on digits-sized random images for
``--steps`` steps after a warm-up, (a) alone at every core, (b) two processes
at once, each with ``--threads cores/2`` (what `python -m benchmarks run
--threads N` sets), (c) two at once at torch's default thread count (the
oversubscription the suite's issue measured at about 20x). It prints each
concurrent process's images/s as a fraction of the lone run's, against the
target of at least 0.4. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys

import torch

from core.data import DataSplits, ImageData
from tests.conftest import preset_method

TARGET = 0.4


def _digits_like() -> DataSplits:
    g = torch.Generator().manual_seed(0)
    images = ImageData(torch.randint(0, 256, (2_000, 1, 8, 8), generator=g, dtype=torch.uint8),
                       torch.randint(0, 10, (2_000,), generator=g))
    small = ImageData(images.images[:10], images.labels[:10])
    return DataSplits(name="digits-like", train=images, val=small, test=small, num_classes=10,
                      classes=tuple(map(str, range(10))), mean=(0.5,), std=(0.25,))


def worker(steps: int, threads: int | None) -> float:
    """images/s of ``steps`` pretraining steps (after 5 warm-up steps) in this process."""
    if threads:
        torch.set_num_threads(threads)
    data = _digits_like()
    method, budget = preset_method("drl", data, "quick")
    method.fit(data.train, dataclasses.replace(budget, iterations=5), progress=False)
    return method.fit(data.train, dataclasses.replace(budget, iterations=steps), progress=False).images_per_s


def _spawn(n: int, steps: int, threads: int | None) -> list[float]:
    """Run ``n`` workers at once (separate processes, no OMP_NUM_THREADS inherited); their images/s."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    args = [sys.executable, "-m", "tests.perf.concurrency", "--worker", "--steps", str(steps)]
    if threads:
        args += ["--threads", str(threads)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env) for _ in range(n)]
    return [json.loads(p.communicate()[0])["images_per_s"] for p in procs]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.concurrency", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps({"images_per_s": worker(args.steps, args.threads)}))
        return
    cores = os.cpu_count() or 1
    alone = _spawn(1, args.steps, cores)[0]
    shared = _spawn(2, args.steps, max(cores // 2, 1))
    default = _spawn(2, args.steps, None)
    print(f"one run alone, {cores} threads: {alone:.0f} images/s")
    for label, rates in ((f"two at once, --threads {max(cores // 2, 1)} each", shared),
                         ("two at once, default threads", default)):
        ratios = ", ".join(f"{r / alone:.2f}x" for r in rates)
        verdict = "meets" if min(rates) / alone >= TARGET else "misses"
        print(f"{label}: {ratios} of the lone run each ({verdict} the {TARGET}x target)")


if __name__ == "__main__":
    main()
