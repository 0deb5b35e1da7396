"""GPU pretraining throughput (``tox -e gpu``): DRL at the paper preset on CIFAR-10-sized images.

For each training option set (fp32; bf16 autocast + channels-last + fused Adam,
the default on CUDA; the same with torch.compile) the run prints images/s, peak
memory and the hours the paper's 70k iterations would take at that speed.
Random uint8 images stand in for CIFAR-10: the cost does not depend on pixels.
"""

import dataclasses

import pytest
import torch

from benchmarks.data import DataSplits, ImageData
from benchmarks.presets import preset_settings
from methods.base import Budget, config_from_settings
from methods.training import TrainOptions
from tests.perf.conftest import THROUGHPUT_LINES, quick_method

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.bench,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

SHAPE = (3, 32, 32)
TIMED_STEPS = 50
OPTIONS = {
    "fp32": TrainOptions(precision="fp32", channels_last=False),
    "bf16+channels_last+fused": TrainOptions(),
    "bf16+channels_last+fused+compile": TrainOptions(compile=True),
}


@pytest.fixture(scope="module")
def cifar_like() -> DataSplits:
    return random_cifar_like()


def random_cifar_like() -> DataSplits:
    g = torch.Generator().manual_seed(0)
    images = ImageData(torch.randint(0, 256, (10_000, *SHAPE), generator=g, dtype=torch.uint8),
                       torch.randint(0, 10, (10_000,), generator=g))
    small = ImageData(images.images[:10], images.labels[:10])
    return DataSplits(name="cifar-like", train=images, val=small, test=small, num_classes=10,
                      classes=tuple(map(str, range(10))), mean=(0.5,) * 3, std=(0.25,) * 3)


def measure(data: DataSplits, options: TrainOptions, device: str = "cuda", steps: int = TIMED_STEPS,
            timer=lambda f: f()):
    """Pretrain DRL at the paper preset for ``steps`` after a short warm-up; returns (History, Budget, hours)."""
    settings = preset_settings("paper", SHAPE)
    method = quick_method("drl", data, **settings).to(device)
    budget = config_from_settings(Budget, {**settings, "iterations": steps})
    method.fit(data.train, dataclasses.replace(budget, iterations=5), progress=False,
               options=options)  # warm-up: cuDNN autotuning, compilation
    cuda = device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def timed():
        history = method.fit(data.train, budget, progress=False, options=options)
        if cuda:
            torch.cuda.synchronize()
        return history

    history = timer(timed)
    return history, budget, settings["iterations"] * budget.batch_size / history.images_per_s / 3600


@pytest.mark.benchmark(group="gpu-pretrain")
@pytest.mark.parametrize("option", OPTIONS)
def test_drl_paper_preset_throughput(benchmark, option, cifar_like):
    history, budget, hours = measure(cifar_like, OPTIONS[option],
                                     timer=lambda f: benchmark.pedantic(f, rounds=1, iterations=1))
    assert history.steps == TIMED_STEPS and all(torch.isfinite(torch.tensor(history.losses)))
    benchmark.extra_info.update(images_per_s=round(history.images_per_s, 1),
                                peak_memory_mb=round(history.peak_memory_mb), paper_hours=round(hours, 2))
    THROUGHPUT_LINES.append(
        f"drl paper preset, {SHAPE[1]}x{SHAPE[2]}x{SHAPE[0]}, batch {budget.batch_size}, {option}: "
        f"{history.images_per_s:.0f} images/s, peak {history.peak_memory_mb:.0f} MiB, "
        f"70k iterations = {hours:.1f} h on {torch.cuda.get_device_name()}")


def same_seed_spread(data: DataSplits, options: TrainOptions, device: str = "cuda", steps: int = 200) -> dict:
    """Train the quick preset's DRL twice with one seed on ``device``; how far apart the two end.

    Returns the largest relative difference of their test codes at t = 0.5 and the
    difference of a linear probe's test accuracy on those codes (fit on train, scored once).
    """
    from sklearn.linear_model import LogisticRegression

    codes, accuracies = [], []
    for _ in range(2):
        method = quick_method("drl", data).to(device)  # reseeds: the same initialisation
        budget = config_from_settings(Budget, {**preset_settings("quick", data.image_shape), "iterations": steps})
        method.fit(data.train, budget, progress=False, options=options)
        z = {s: method.encode(data.split(s).images, torch.full((len(data.split(s)),), 0.5)).cpu()
             for s in ("train", "test")}
        probe = LogisticRegression(max_iter=500).fit(z["train"].numpy(), data.train.labels.numpy())
        accuracies.append(probe.score(z["test"].numpy(), data.test.labels.numpy()))
        codes.append(z["test"])
    scale = codes[0].abs().max().item()
    return {"max_relative_code_difference": (codes[0] - codes[1]).abs().max().item() / scale,
            "accuracy_difference": abs(accuracies[0] - accuracies[1])}


@pytest.mark.parametrize("option", ["fp32", "bf16+channels_last+fused"])
def test_same_seed_twice_on_cuda(option):
    """README, Determinism: how much two runs of one seed on one GPU differ (printed, not asserted equal)."""
    from benchmarks.data import load_dataset

    spread = same_seed_spread(load_dataset("digits"), OPTIONS[option])
    assert spread["max_relative_code_difference"] < 1.0  # same seed: far closer than two seeds
    THROUGHPUT_LINES.append(
        f"same seed twice, drl quick preset on digits, 200 steps, {option}: codes differ by at most "
        f"{spread['max_relative_code_difference']:.2e} (relative), linear-probe accuracy by "
        f"{100 * spread['accuracy_difference']:.2f} points on {torch.cuda.get_device_name()}")
