"""Probe fitting: every (t, lr) head as one batched model vs one head at a time (issue 7: >= 20x)."""

import pytest
import torch

from protocols.batched import fit_select_score, standardise
from tests.perf.reference import loop_fit_select_score

pytestmark = pytest.mark.bench

# The quick preset's probe on digits (lrs, batch, hidden, dropout, weight decay) at 15 of its 30 epochs:
# the loop is slow, and the ratio does not depend on the epoch count.
SETTINGS = dict(lrs=(1e-3, 3e-3), epochs=15, batch_size=256, dropout=0.25, weight_decay=1e-5, seed=0)
HIDDEN = {"linear": None, "mlp": 512}


@pytest.fixture(scope="module")
def probe_inputs(digits, digits_codes):
    feats = standardise(*(digits_codes.features[s] for s in ("train", "val", "test")))
    splits = list(zip(feats, (digits_codes.labels[s] for s in ("train", "val", "test"))))
    return splits, digits.num_classes


# On a CPU the MLP heads are bound by arithmetic, which batching cannot remove; on a GPU the loop
# is bound by kernel launches, which it does. ``tox -e gpu`` runs the cuda pair.
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])]


def _bench(benchmark, fit, probe_inputs, head, device):
    splits, n_classes = probe_inputs
    splits = [(x.to(device), y.to(device)) for x, y in splits]
    sel = benchmark.pedantic(fit, args=splits, kwargs=dict(n_classes=n_classes, hidden=HIDDEN[head], **SETTINGS),
                             rounds=3 if head == "linear" else 2)
    benchmark.extra_info["heads"] = len(SETTINGS["lrs"]) * splits[0][0].shape[0]
    assert min(sel.test_accuracy) > 0.5  # digits codes at any t are far above chance (0.1)


@pytest.mark.benchmark(group="probe")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("head", HIDDEN)
def test_probe_batched(benchmark, probe_inputs, head, device):
    _bench(benchmark, fit_select_score, probe_inputs, head, device)


@pytest.mark.benchmark(group="probe")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("head", HIDDEN)
def test_probe_loop(benchmark, probe_inputs, head, device):
    _bench(benchmark, loop_fit_select_score, probe_inputs, head, device)
