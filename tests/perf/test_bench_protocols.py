"""Protocols that are not batched/loop pairs: the few-shot SVM on cached codes, one LaplaceNet round."""

import pytest
import torch

from benchmarks.presets import preset_settings
from core.seeding import seed_everything
from methods.base import config_from_settings
from protocols.base import Encoded
from protocols.semisup import (
    LaplaceNet,
    SemisupConfig,
    balanced_subset,
    semisup_ladder,
    training_pool,
)
from protocols.svm import SVMConfig, SVMFewShot

pytestmark = pytest.mark.bench


@pytest.mark.benchmark(group="svm")
def test_svm_fit(benchmark, digits, digits_drl, digits_codes):
    """SVC() at 11 t, 100 and 1000 labels, the default draws: the protocol's whole run on digits codes."""
    encoded = Encoded(digits_drl, digits, lambda split, ts: digits_codes.features[split], 0, torch.device("cpu"))
    cfg = SVMConfig(t_values=tuple(digits_codes.ts))
    records = benchmark.pedantic(SVMFewShot().run, args=(encoded, cfg), rounds=2)
    benchmark.extra_info["fits"] = len(cfg.svm_labels) * cfg.svm_draws * len(cfg.t_values)
    assert len(records) == len(cfg.svm_labels) * len(cfg.t_values)


@pytest.mark.benchmark(group="semisup")
def test_laplacenet_round(benchmark, digits, digits_drl):
    """One round (pool codes, label spreading, one epoch) at the quick preset on digits' whole training pool."""
    cfg = config_from_settings(SemisupConfig, preset_settings("quick", digits.image_shape))
    labels = digits.train.labels
    n = semisup_ladder(digits.semisup_labels, len(labels), digits.num_classes)[-1]
    labelled = balanced_subset(labels, n, seed=0)
    pool = training_pool(len(labels), labelled, cfg.semisup_train_images, seed=0)
    seed_everything(0)
    net = LaplaceNet(digits_drl, digits, cfg, labelled, pool, torch.device("cpu"))

    def one_round():
        pseudo, accuracy = net.assign_pseudo_labels()
        net.round_epoch(pseudo)
        return accuracy

    accuracy = benchmark.pedantic(one_round, rounds=3, warmup_rounds=1)
    benchmark.extra_info.update(pool=len(pool), labelled=n)
    assert 0.0 <= accuracy <= 1.0
