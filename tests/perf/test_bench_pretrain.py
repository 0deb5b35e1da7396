"""Pretraining throughput of every method that pretrains: a few steps of ``Method.fit`` on 28x28 images.

The quick preset's settings for MNIST-sized images (its CNN encoder, score net,
batch 64); ``extra_info["images_per_s"]`` is the batch size times the steps over
the fastest round.
"""

import pytest

from methods.base import available_methods, get_method_class
from tests.conftest import make_splits, preset_method

pytestmark = pytest.mark.bench

STEPS = 3
PRETRAINING = [name for name in available_methods() if get_method_class(name).pretrains]


@pytest.fixture(scope="module")
def mnist_like():
    return make_splits(n_train=256, n_val=3, n_test=3, size=28)


@pytest.mark.benchmark(group="pretrain")
@pytest.mark.parametrize("name", PRETRAINING)
def test_pretrain_steps(benchmark, name, mnist_like):
    method, budget = preset_method(name, mnist_like, "quick", iterations=STEPS, warmup=1)
    history = benchmark.pedantic(method.fit, args=(mnist_like.train, budget), kwargs={"progress": False},
                                 rounds=2, warmup_rounds=1)
    assert history.steps == STEPS
    benchmark.extra_info["batch_size"] = budget.batch_size
    if benchmark.stats:  # None under --benchmark-disable
        benchmark.extra_info["images_per_s"] = round(budget.images_seen / benchmark.stats.stats.min, 1)
