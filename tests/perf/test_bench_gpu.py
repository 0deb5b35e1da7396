"""GPU pretraining throughput (``tox -e gpu``): DRL at the paper preset on CIFAR-10-sized images.

For each training option set (fp32; bf16 autocast + channels-last + fused Adam,
the default on CUDA; the same compiled with CUDA graphs,
``compile_mode="reduce-overhead"``) the run prints images/s, its ratio to issue
18's target of 12,000 images/s, peak memory and the hours the paper's 70k
iterations would take at that speed (``tests/perf/throughput.py``, which also
runs by hand on any device).
"""

import pytest
import torch

from datasets import load_dataset
from tests.perf.conftest import THROUGHPUT_LINES
from tests.perf.throughput import (
    GPU_OPTIONS,
    OPTIONS,
    measure,
    random_cifar_like,
    same_seed_spread,
    throughput_line,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.bench,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

TIMED_STEPS = 50


@pytest.fixture(scope="module")
def cifar_like():
    return random_cifar_like()


@pytest.mark.benchmark(group="gpu-pretrain")
@pytest.mark.parametrize("option", GPU_OPTIONS)
def test_drl_paper_preset_throughput(benchmark, option, cifar_like):
    history, batch, hours = measure(cifar_like, OPTIONS[option], steps=TIMED_STEPS,
                                    timer=lambda f: benchmark.pedantic(f, rounds=1, iterations=1))
    assert history.steps == TIMED_STEPS and all(torch.isfinite(torch.tensor(history.losses)))
    benchmark.extra_info.update(images_per_s=round(history.images_per_s, 1),
                                peak_memory_mb=round(history.peak_memory_mb), paper_hours=round(hours, 2))
    THROUGHPUT_LINES.append(throughput_line(history, batch, hours, option, "cuda"))


@pytest.mark.parametrize("option", ["fp32", "bf16+channels_last+fused"])
def test_same_seed_twice_on_cuda(option):
    """README, Determinism: how much two runs of one seed on one GPU differ (printed, not asserted equal)."""
    spread = same_seed_spread(load_dataset("digits"), OPTIONS[option])
    assert spread["max_relative_code_difference"] < 1.0  # same seed: far closer than two seeds
    THROUGHPUT_LINES.append(
        f"same seed twice, drl quick preset on digits, 200 steps, {option}: codes differ by at most "
        f"{spread['max_relative_code_difference']:.2e} (relative), linear-probe accuracy by "
        f"{100 * spread['accuracy_difference']:.2f} points on {torch.cuda.get_device_name()}")
