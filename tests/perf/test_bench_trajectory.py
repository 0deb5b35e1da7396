"""Encoding a split at every t: all t of a batch in one forward vs one forward per t (issue 7: >= 1.5x on CPU)."""

import pytest
import torch

from benchmarks.cache import ROWS_PER_FORWARD, FeatureCache
from protocols.base import DEFAULT_T_VALUES

pytestmark = pytest.mark.bench

BATCH = ROWS_PER_FORWARD["cpu"]  # the feature cache's rows per forward on a CPU
TS = list(DEFAULT_T_VALUES)


@pytest.mark.benchmark(group="trajectory")
def test_encode_trajectory_batched(benchmark, digits, digits_drl, tmp_path):
    cache = FeatureCache(tmp_path, "bench", digits_drl, digits, batch_size=BATCH)
    # _encode is the computation itself; calling the cache would read its own result back from the 2nd round.
    codes = benchmark.pedantic(cache._encode, args=("train", TS), rounds=3, warmup_rounds=1)
    assert codes.shape == (len(TS), len(digits.train), digits_drl.cfg.latent_dim)


@pytest.mark.benchmark(group="trajectory")
def test_encode_trajectory_loop(benchmark, digits, digits_drl):
    images, chunk = digits.train.images, max(BATCH // len(TS), 1)  # the batched version's batches of images

    def encode_per_t():
        out = []
        for start in range(0, len(images), chunk):
            x = images[start:start + chunk]
            out.append(torch.stack([digits_drl.encode(x, torch.full((len(x),), t)) for t in TS]))
        return torch.cat(out, dim=1)

    codes = benchmark.pedantic(encode_per_t, rounds=3, warmup_rounds=1)
    assert codes.shape == (len(TS), len(digits.train), digits_drl.cfg.latent_dim)


@pytest.mark.benchmark(group="trajectory")
def test_encode_trajectory_loop_at_its_best_batch(benchmark, digits, digits_drl):
    """The loop with the batch it likes best on a CPU (a whole 512-image batch per t): the fair floor
    for the speed-up, printed as its own ratio beside the same-batch pair (no target)."""
    images = digits.train.images

    def encode_per_t():
        return torch.stack([torch.cat([digits_drl.encode(x, torch.full((len(x),), t))
                                       for x in images.split(512)]) for t in TS])

    codes = benchmark.pedantic(encode_per_t, rounds=3, warmup_rounds=1)
    assert codes.shape == (len(TS), len(digits.train), digits_drl.cfg.latent_dim)
