"""The batched probe chooses what training each (t, lr) head alone would: the speed-up changes nothing."""

import torch

from protocols.batched import fit_select_score, fit_select_score_seeds
from tests.perf.reference import loop_fit_select_score, loop_fit_select_score_seeds


def _codes(n, seed, n_t=3, d=16, n_classes=4, signal=(0.3, 1.0, 2.5)):
    """Feature set i carries class signal ``signal[i]`` in a few of its d dimensions, the rest noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % n_classes
    x = torch.randn(n_t, n, d, generator=g)
    for i, s in enumerate(signal[:n_t]):
        x[i, :, :n_classes] += s * torch.nn.functional.one_hot(y, n_classes)
    return x, y


SPLITS = [_codes(480, seed=1), _codes(240, seed=2), _codes(240, seed=3)]
ARGS = dict(n_classes=4, lrs=(1e-3, 1e-2), epochs=12, batch_size=64, weight_decay=1e-5, seed=0)


def test_linear_heads_match_the_loop_head_for_head():
    # Same initial weights, same mini-batches, no dropout: the same choices, up to float rounding.
    batched = fit_select_score(*SPLITS, hidden=None, dropout=0.0, **ARGS)
    loop = loop_fit_select_score(*SPLITS, hidden=None, dropout=0.0, **ARGS)
    assert batched.lr == loop.lr and batched.epoch == loop.epoch
    torch.testing.assert_close(torch.tensor(batched.val_accuracy), torch.tensor(loop.val_accuracy),
                               atol=1 / 240, rtol=0)  # one validation image
    torch.testing.assert_close(torch.tensor(batched.test_accuracy), torch.tensor(loop.test_accuracy),
                               atol=1 / 240, rtol=0)


def test_mlp_heads_match_the_loop_within_noise():
    # Dropout masks differ (shared by the batched heads, drawn per head in the loop): equal within noise.
    batched = fit_select_score(*SPLITS, hidden=32, dropout=0.25, **ARGS)
    loop = loop_fit_select_score(*SPLITS, hidden=32, dropout=0.25, **ARGS)
    gap = (torch.tensor(batched.test_accuracy) - torch.tensor(loop.test_accuracy)).abs()
    assert gap.max() <= 0.04, (batched.test_accuracy, loop.test_accuracy)
    assert batched.test_accuracy[0] < batched.test_accuracy[2] and loop.test_accuracy[0] < loop.test_accuracy[2]


def test_every_head_seed_matches_its_loop_head_for_head():
    batched = fit_select_score_seeds(*SPLITS, hidden=None, dropout=0.0, head_seeds=2, **ARGS)
    loop = loop_fit_select_score_seeds(*SPLITS, hidden=None, dropout=0.0, head_seeds=2, **ARGS)
    for one_batch, one_loop in zip(batched, loop, strict=True):
        assert one_batch.lr == one_loop.lr and one_batch.epoch == one_loop.epoch
        torch.testing.assert_close(torch.tensor(one_batch.test_accuracy), torch.tensor(one_loop.test_accuracy),
                                   atol=1 / 240, rtol=0)
