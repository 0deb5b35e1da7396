"""The batched probe: one model for every (lr, t), selection on validation, test scored once."""

import pytest
import torch

from protocols.batched import BatchedHeads, fit_select_score, fit_select_score_seeds, standardise


def _blobs(n, n_t=3, d=5, seed=0, separation=(0.0, 1.0, 4.0)):
    """Feature set i has class separation ``separation[i]``: accuracy must grow with it."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n_t, n, d, generator=g)
    for i, s in enumerate(separation[:n_t]):
        x[i, :, 0] += s * (2 * y.float() - 1)
    return x, y


def _fit(**kw):
    args = dict(n_classes=2, lrs=(1e-3, 1e-2), epochs=15, batch_size=64, hidden=None, dropout=0.0,
                weight_decay=0.0, seed=0)
    args.update(kw)
    return fit_select_score(_blobs(400, seed=1), _blobs(200, seed=2), _blobs(200, seed=3), **args)


def test_batched_heads_are_independent():
    g = torch.Generator().manual_seed(0)
    heads = BatchedHeads(3, 4, 2, hidden=8, dropout=0.0, generator=g)
    x = torch.randn(3, 5, 4)
    base = heads(x)
    x2 = x.clone()
    x2[1] += 10.0  # perturb only the features of head 1
    out = heads(x2)
    torch.testing.assert_close(out[0], base[0])
    torch.testing.assert_close(out[2], base[2])
    assert not torch.allclose(out[1], base[1])


def test_additive_dropout_mask_is_inverted_dropout():
    # The mask rides on the bias and the 1 / (1 - p) on the output weights: the logits and every
    # gradient are those of relu(x W1 + b1) * keep / (1 - p) W2 + b2, keep shared within a group.
    g = torch.Generator().manual_seed(0)
    heads = BatchedHeads(4, 5, 3, hidden=16, dropout=0.25, generator=g)
    x = torch.randn(4, 7, 5)
    drop = heads.dropout_mask([torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)], 7, x.device)
    assert drop.shape == (4, 16, 7)
    torch.testing.assert_close(drop[0], drop[1])  # heads 0, 1: group 0; heads 2, 3: group 1
    torch.testing.assert_close(drop[2], drop[3])
    assert not torch.equal(drop[0], drop[2])
    keep = drop.isfinite().float() / 0.75
    w1, w2 = heads.weights
    b1, b2 = heads.biases
    expected = (torch.relu(x @ w1 + b1) * keep.transpose(1, 2)) @ w2 + b2  # (T, B, C)
    got = heads.scores(x, drop).transpose(1, 2)
    torch.testing.assert_close(got, expected)
    grads = torch.autograd.grad(got.square().sum(), list(heads.parameters()))
    expected_grads = torch.autograd.grad(expected.square().sum(), list(heads.parameters()))
    for a, b in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b)


def test_accuracy_follows_the_signal_in_each_feature_set():
    for hidden in (None, 16):
        sel = _fit(hidden=hidden)
        chance, weak, strong = sel.test_accuracy
        assert chance < 0.65 and strong > 0.95 and weak > chance
        assert all(lr in (1e-3, 1e-2) for lr in sel.lr)
        assert all(1 <= e <= 15 for e in sel.epoch)


def test_batched_training_matches_training_each_head_alone():
    # The same heads trained one t at a time reach the same chosen accuracies.
    splits = [_blobs(400, seed=1), _blobs(200, seed=2), _blobs(200, seed=3)]
    together = _fit(lrs=(1e-2,))
    for i in range(3):
        only_t = [(x[i:i + 1], y) for x, y in splits]
        alone = fit_select_score(*only_t, n_classes=2, lrs=(1e-2,), epochs=15, batch_size=64,
                                 hidden=None, dropout=0.0, weight_decay=0.0, seed=0)
        if i == 0:  # no signal: both at chance, within its noise
            assert max(alone.test_accuracy[0], together.test_accuracy[0]) < 0.6
        else:
            assert abs(alone.test_accuracy[0] - together.test_accuracy[i]) <= 0.03


def test_selection_ignores_test_labels():
    x_te, y_te = _blobs(200, seed=3)
    args = dict(n_classes=2, lrs=(1e-3, 3e-3, 1e-2), epochs=8, batch_size=64, hidden=16, dropout=0.1,
                weight_decay=1e-5, seed=0)
    a = fit_select_score(_blobs(400, seed=1), _blobs(200, seed=2), (x_te, y_te), **args)
    b = fit_select_score(_blobs(400, seed=1), _blobs(200, seed=2), (x_te, y_te.flip(0)), **args)
    assert (a.lr, a.epoch, a.val_accuracy) == (b.lr, b.epoch, b.val_accuracy)


def test_standardise_uses_train_statistics():
    train, other = torch.randn(2, 100, 3) * 5 + 2, torch.randn(2, 10, 3)
    s_train, s_other = standardise(train, other)
    torch.testing.assert_close(s_train.mean(dim=1), torch.zeros(2, 3), atol=1e-5, rtol=0)
    mean, std = train.mean(dim=1, keepdim=True), train.std(dim=1, keepdim=True)
    torch.testing.assert_close(s_other, (other - mean) / std)


def test_static_method_gets_one_head_reported_at_every_t():
    from types import SimpleNamespace

    from protocols.base import Encoded
    from protocols.probe import Probe, ProbeConfig
    from tests.test_protocol_contract import FakeFeatures, _splits

    data = _splits()
    features = FakeFeatures(data)
    static = SimpleNamespace(time_conditioned=False)
    cfg = ProbeConfig(t_values=(0.0, 0.5, 1.0), heads=("linear",), probe_lrs=(1e-2,), probe_epochs=5)
    records = Probe().run(Encoded(static, data, features, 0, torch.device("cpu")), cfg)
    assert all(ts == (0.0,) for _, ts in features.calls)  # encoded and trained once
    accuracy = [r for r in records if r.metric == "accuracy"]
    assert [r.t for r in accuracy] == [0.0, 0.5, 1.0] and len({r.value for r in accuracy}) == 1
    assert not [r for r in records if r.metric == "best_t"]


@pytest.mark.parametrize(("hidden", "dropout"), [(None, 0.0), (8, 0.25)])
def test_head_seeds_are_independent_draws_and_seed_0_is_the_single_draw(hidden, dropout):
    args = dict(n_classes=2, lrs=(1e-3, 1e-2), epochs=6, batch_size=64, hidden=hidden, dropout=dropout,
                weight_decay=0.0, seed=4)
    splits = (_blobs(400, seed=1), _blobs(200, seed=2), _blobs(200, seed=3))
    single = fit_select_score(*splits, **args)
    two, three = (fit_select_score_seeds(*splits, head_seeds=n, **args) for n in (2, 3))
    assert len(three) == 3 and three[0] == single
    # A head seed's result does not depend on which other seeds train beside it.
    assert three[1].lr == two[1].lr and three[1].epoch == two[1].epoch
    torch.testing.assert_close(torch.tensor(three[1].test_accuracy), torch.tensor(two[1].test_accuracy),
                               atol=1 / 200, rtol=0)
    # ... and it is another draw: its own initialisation and mini-batch order.
    assert three[1] != three[0] and three[2] != three[1]


def test_the_probe_reports_the_mean_over_head_seeds():
    from types import SimpleNamespace

    from protocols.base import Encoded
    from protocols.probe import Probe, ProbeConfig
    from tests.test_protocol_contract import FakeFeatures, _splits

    data = _splits()
    encoded = Encoded(SimpleNamespace(time_conditioned=True), data, FakeFeatures(data), 0, torch.device("cpu"))
    cfg = ProbeConfig(t_values=(0.0, 1.0), heads=("linear-sgd",), probe_epochs=3, probe_head_seeds=3)
    records = Probe().run(encoded, cfg)
    acc = [r for r in records if r.metric == "accuracy"]
    assert len(acc) == 2
    for r in acc:
        draws = r.extra["head_seed_test_accuracy"]
        assert len(draws) == 3 and r.value == pytest.approx(sum(draws) / 3)
    with pytest.raises(ValueError, match="probe_head_seeds=0 is not allowed; valid: integers >= 1"):
        ProbeConfig(probe_head_seeds=0)


def test_the_one_standard_error_rule_takes_the_grid_centre_among_equals():
    from protocols.batched import one_standard_error_choice

    # Columns: all equal; the end clearly best; the end best by less than one standard error (n=100).
    val = torch.tensor([[0.90, 0.50, 0.90], [0.90, 0.60, 0.92], [0.90, 0.99, 0.91]])
    assert one_standard_error_choice(val, n_val=100).tolist() == [1, 2, 1]
    # Two values, both within: the first (no centre to prefer).
    assert one_standard_error_choice(torch.tensor([[0.9], [0.91]]), n_val=100).tolist() == [0]


def test_sgd_heads_stop_early_and_flag_edges():
    args = dict(n_classes=2, batch_size=64, hidden=None, dropout=0.0, weight_decay=0.0, seed=0)
    splits = (_blobs(400, seed=1), _blobs(200, seed=2), _blobs(200, seed=3))
    stopped = fit_select_score(*splits, lrs=(1e-3, 1e-2, 1e-1), epochs=400, patience=5, **args)
    assert max(stopped.epochs_run) < 400, "every head stalled long before the limit"
    assert all(e <= run for e, run in zip(stopped.epoch, stopped.epochs_run))
    assert stopped.at_edge == [lr in (1e-3, 1e-1) for lr in stopped.lr]
    # Stopped by the limit while still improving (a tiny learning rate): the epoch is at the edge.
    slow = fit_select_score(*splits, lrs=(1e-6, 2e-6, 3e-6), epochs=3, patience=5, **args)
    assert slow.epochs_run == [3, 3, 3] and all(slow.at_edge)
    assert all(type(edge) is bool for edge in stopped.at_edge + slow.at_edge), "stored as JSON booleans"


def test_each_learning_rate_stops_on_its_own(monkeypatch):
    # Validation passes counted per lr's heads: an lr that stalls first is trained and validated no more.
    import protocols.batched as batched

    passes: dict[int, int] = {}
    accuracy = batched._accuracy
    def counting(heads, *args):
        passes[id(heads)] = passes.get(id(heads), 0) + 1
        return accuracy(heads, *args)
    monkeypatch.setattr(batched, "_accuracy", counting)
    splits = (_blobs(400, seed=1), _blobs(200, seed=2), _blobs(200, seed=3))
    fit_select_score(*splits, lrs=(3e-1, 3e-3), epochs=300, patience=5, n_classes=2, batch_size=64,
                     hidden=None, dropout=0.0, weight_decay=0.0, seed=0)
    per_lr = sorted(n for n in passes.values() if n > 1)  # the chosen heads' one test pass aside
    assert len(per_lr) == 2 and per_lr[0] < per_lr[1] < 300


def test_a_cosine_schedule_runs_every_epoch_and_flags_only_grid_ends():
    args = dict(n_classes=2, batch_size=64, hidden=None, dropout=0.0, weight_decay=0.0, seed=0)
    splits = (_blobs(400, seed=1), _blobs(200, seed=2), _blobs(200, seed=3))
    annealed = fit_select_score(*splits, lrs=(1e-3, 1e-2, 1e-1), epochs=30, schedule="cosine", **args)
    assert annealed.epochs_run == [30, 30, 30]
    assert annealed.at_edge == [lr in (1e-3, 1e-1) for lr in annealed.lr]
    assert annealed.test_accuracy[2] > 0.9, "the separable feature set is learnt"
    with pytest.raises(ValueError, match="schedule='step' is not allowed; valid: constant, cosine"):
        fit_select_score(*splits, lrs=(1e-2,), epochs=3, schedule="step", **args)
    with pytest.raises(ValueError, match="patience=None"):
        fit_select_score(*splits, lrs=(1e-2,), epochs=3, schedule="cosine", patience=5, **args)
