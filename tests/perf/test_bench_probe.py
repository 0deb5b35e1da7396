"""Probe fitting: every (seed, t, lr) head as one batched model vs one head at a time (issue 7: >= 20x)."""

import pytest
import torch

from protocols.batched import fit_select_score_seeds, standardise
from tests.perf.reference import loop_fit_select_score_seeds

pytestmark = pytest.mark.bench

# The probe's settings on digits (batch, hidden, dropout, weight decay) at 15 epochs (the loop is slow,
# and the ratio does not depend on the epoch count), with the learning-rate grid of each preset: 11 t x
# 2 lrs (quick) or 11 t x 6 lrs (paper) heads, and the paper grid with 3 head seeds (198 heads; linear
# heads only, the MLP loop would take minutes). Batching saves per-call overhead, so the ratio grows
# with the number of heads.
SETTINGS = dict(epochs=15, batch_size=256, dropout=0.25, weight_decay=1e-5, seed=0)
PAPER_LRS = (1e-3, 7.5e-4, 5e-4, 2.5e-4, 1e-4, 5e-5)
GRIDS = {"quick": ((1e-3, 3e-3), 1), "paper": (PAPER_LRS, 1), "paper-3-seeds": (PAPER_LRS, 3)}
HIDDEN = {"linear": None, "mlp": 512}
CASES = [(head, grid) for head in HIDDEN for grid in GRIDS if not (head == "mlp" and grid == "paper-3-seeds")]


@pytest.fixture(scope="module")
def probe_inputs(digits, digits_codes):
    feats = standardise(*(digits_codes.features[s] for s in ("train", "val", "test")))
    splits = list(zip(feats, (digits_codes.labels[s] for s in ("train", "val", "test"))))
    return splits, digits.num_classes


# On a CPU the MLP heads are bound by arithmetic, which batching cannot remove; on a GPU the loop
# is bound by kernel launches, which it does. ``tox -e gpu`` runs the cuda pair.
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])]


def _bench(benchmark, fit, probe_inputs, head, grid, device):
    splits, n_classes = probe_inputs
    splits = [(x.to(device), y.to(device)) for x, y in splits]
    lrs, head_seeds = GRIDS[grid]
    kwargs = dict(n_classes=n_classes, hidden=HIDDEN[head], lrs=lrs, head_seeds=head_seeds, **SETTINGS)
    selections = benchmark.pedantic(fit, args=splits, kwargs=kwargs, rounds=3 if head == "linear" else 2)
    benchmark.extra_info["heads"] = len(lrs) * head_seeds * splits[0][0].shape[0]
    for sel in selections:
        assert min(sel.test_accuracy) > 0.5  # digits codes at any t are far above chance (0.1)


@pytest.mark.benchmark(group="probe")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("head", "grid"), CASES)
def test_probe_batched(benchmark, probe_inputs, head, grid, device):
    _bench(benchmark, fit_select_score_seeds, probe_inputs, head, grid, device)


@pytest.mark.benchmark(group="probe")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("head", "grid"), CASES)
def test_probe_loop(benchmark, probe_inputs, head, grid, device):
    _bench(benchmark, loop_fit_select_score_seeds, probe_inputs, head, grid, device)
