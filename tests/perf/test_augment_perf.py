"""Augmentation benchmarks (group ``augment``):

- SimCLR's augmentation of one batch of 128 images, lightly per image vs kornia batched, through
  ``SimCLR.prepare`` (the code path pretraining runs), on the CPU;
- LaplaceNet's strong augmentation of one paper-scale step (3 copies of a 100-image batch: 300
  images 32x32x3), torchvision per image (``loop``) vs batched on the batch's device, CPU and CUDA.

    OMP_NUM_THREADS=1 python -m pytest tests/perf/test_augment_perf.py -m bench --benchmark-enable \
        --benchmark-json bench.json -p no:cacheprovider
"""

from __future__ import annotations

import pytest
import torch

from methods.base import DataSpec, create_method
from methods.simclr import AUGMENT_BACKENDS, SimCLRConfig
from protocols.augment import Augmenter, BatchedAugmenter

pytestmark = pytest.mark.bench

BATCH = 128
SHAPES = {"32x32x3": (3, 32, 32), "28x28x1": (1, 28, 28)}


@pytest.mark.benchmark(group="augment")
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("backend", AUGMENT_BACKENDS)
def test_simclr_prepare(benchmark, backend, shape):
    c, h, w = SHAPES[shape]
    spec = DataSpec((c, h, w), mean=(0.5,) * c, std=(0.25,) * c)
    method = create_method("simclr", SimCLRConfig(augment_backend=backend, hflip=c == 3), spec)
    images = torch.randint(0, 256, (BATCH, c, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    first, second = benchmark(method.prepare, images)
    assert first.shape == second.shape == (BATCH, c, h, w)


# -- LaplaceNet ------------------------------------------------------------------------------------

STEP_IMAGES = 300  # one paper-scale step: aug_num 3 x batch 100
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])]


def _bench_laplacenet(benchmark, augmenter, device):
    images = torch.randint(0, 256, (STEP_IMAGES, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0)).to(device)

    def strong():
        out = augmenter.strong(images)
        if out.is_cuda:
            torch.cuda.synchronize()  # time the kernels, not their launch
        return out

    strong()  # warm-up: kernel caches, allocator
    out = benchmark(strong)
    assert out.shape == images.shape and out.device == images.device


@pytest.mark.benchmark(group="augment")
@pytest.mark.parametrize("device", DEVICES)
def test_laplacenet_strong_batched(benchmark, device):
    _bench_laplacenet(benchmark, BatchedAugmenter(32, hflip=True), device)


@pytest.mark.benchmark(group="augment")
@pytest.mark.parametrize("device", DEVICES)
def test_laplacenet_strong_loop(benchmark, device):
    _bench_laplacenet(benchmark, Augmenter(32, hflip=True), device)
