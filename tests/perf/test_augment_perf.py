"""Augmentation benchmarks, two batched/loop pairs whose speed-ups ``tests/perf/ratios.py`` prints:

- group ``simclr-augment``: SimCLR's augmentation of one batch of 128 images, through ``SimCLR.prepare``
  (the code path pretraining runs), kornia batched (``batched``) vs lightly per image (``loop``), on the CPU;
- group ``laplacenet-augment``: the augmentation of one step at the paper preset (3 copies of a batch of
  100 images 32x32x3, 16 labelled with the weak augmentation, 84 pseudo-labelled with the strong one),
  through ``views`` as the step calls it: batched on the device (``batched``) vs torchvision per image on the
  CPU, then copied to the device (``loop``), on the CPU and CUDA.

    OMP_NUM_THREADS=1 python -m pytest tests/perf/test_augment_perf.py -m bench --benchmark-enable \
        --benchmark-json bench.json -p no:cacheprovider
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.presets import preset_settings
from methods.base import DataSpec, config_from_settings, create_method
from methods.simclr import SimCLRConfig
from protocols.augment import Augmenter, BatchedAugmenter
from protocols.semisup import SemisupConfig

pytestmark = pytest.mark.bench

BATCH = 128
SHAPES = {"32x32x3": (3, 32, 32), "28x28x1": (1, 28, 28)}


def _bench_simclr_prepare(benchmark, backend, shape):
    c, h, w = SHAPES[shape]
    spec = DataSpec((c, h, w), mean=(0.5,) * c, std=(0.25,) * c)
    method = create_method("simclr", SimCLRConfig(augment_backend=backend, hflip=c == 3), spec)
    images = torch.randint(0, 256, (BATCH, c, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    first, second = benchmark(method.prepare, images)
    assert first.shape == second.shape == (BATCH, c, h, w)


@pytest.mark.benchmark(group="simclr-augment")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_simclr_prepare_batched(benchmark, shape):
    _bench_simclr_prepare(benchmark, "kornia", shape)


@pytest.mark.benchmark(group="simclr-augment")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_simclr_prepare_loop(benchmark, shape):
    _bench_simclr_prepare(benchmark, "lightly", shape)


# -- LaplaceNet ------------------------------------------------------------------------------------

PAPER = config_from_settings(SemisupConfig, preset_settings("paper", (3, 32, 32)))  # batch 100, 16 labelled, 3 copies
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])]


def _bench_laplacenet_views(benchmark, augmenter, device):
    home = device if augmenter.runs_on_device else "cpu"  # where LaplaceNet keeps its training images
    batch, copies = PAPER.semisup_batch_size, PAPER.semisup_aug_num
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0)).to(home)
    strong = torch.arange(batch) >= PAPER.semisup_labelled_batch  # the labelled rows come first, weak

    def step_views():
        out = augmenter.views(images, strong, copies).to(device)  # the step goes on on the device
        if out.is_cuda:
            torch.cuda.synchronize()  # time the kernels, not their launch
        return out

    step_views()  # warm-up: kernel caches, allocator
    out = benchmark(step_views)
    assert out.shape == (copies * batch, 3, 32, 32) and out.device.type == device


@pytest.mark.benchmark(group="laplacenet-augment")
@pytest.mark.parametrize("device", DEVICES)
def test_laplacenet_views_batched(benchmark, device):
    _bench_laplacenet_views(benchmark, BatchedAugmenter(32, hflip=True), device)


@pytest.mark.benchmark(group="laplacenet-augment")
@pytest.mark.parametrize("device", DEVICES)
def test_laplacenet_views_loop(benchmark, device):
    _bench_laplacenet_views(benchmark, Augmenter(32, hflip=True), device)
