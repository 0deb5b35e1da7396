"""SimCLR's augmentation of one batch of 128 images, lightly per image vs kornia batched, through
``SimCLR.prepare`` (the code path pretraining runs), on the CPU:

    OMP_NUM_THREADS=1 python -m pytest tests/perf/test_augment_perf.py -m bench --benchmark-enable \
        --benchmark-group-by=group,param:shape -p no:cacheprovider
"""

from __future__ import annotations

import pytest
import torch

from methods.base import DataSpec, create_method
from methods.simclr import AUGMENT_BACKENDS, SimCLRConfig

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
