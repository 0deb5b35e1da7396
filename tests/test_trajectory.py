"""Trajectory heads, the trajectory and attention protocols, and the mi protocol on known inputs."""

import re
from types import SimpleNamespace

import pytest
import torch

from protocols.attention import Attention, AttentionConfig, cls_attention
from protocols.base import Encoded
from protocols.mi import MIConfig, MutualInformation
from protocols.sequence_heads import TransformerHead, sinusoidal_time_encoding
from protocols.trajectory import (
    SequenceHeadConfig,
    Trajectory,
    TrajectoryConfig,
    make_head,
    trajectory_times,
)
from tests.test_protocol_contract import FakeFeatures, _splits


def test_trajectory_grids():
    assert trajectory_times(1) == (0.5,)
    assert trajectory_times(2) == (0.0, 1.0)
    assert trajectory_times(3) == (0.0, 0.5, 1.0)
    assert trajectory_times(11)[3] == 0.3
    assert len(trajectory_times(21)) == 21 and trajectory_times(21)[1] == 0.05
    # Finer grids contain the coarser ones that divide them, so their cached codes are shared.
    assert set(trajectory_times(6)) <= set(trajectory_times(11)) <= set(trajectory_times(21))


@pytest.mark.parametrize("head", ["mlp", "gru", "transformer"])
@pytest.mark.parametrize("points", [1, 4])
def test_heads_map_a_sequence_to_logits(head, points):
    cfg = SequenceHeadConfig(trajectory_width=8, transformer_heads=2)
    module = make_head(head, points, 5, 3, cfg)
    out = module(torch.randn(7, points, 5), torch.linspace(0, 1, points))
    assert out.shape == (7, 3)


def test_gru_reads_the_order_of_t():
    torch.manual_seed(0)
    module = make_head("gru", 3, 4, 2, SequenceHeadConfig(trajectory_width=8, transformer_heads=2)).eval()
    codes = torch.randn(5, 3, 4)
    ts = torch.tensor([0.0, 0.5, 1.0])
    assert not torch.allclose(module(codes, ts), module(codes.flip(1), ts))


def test_transformer_attention_is_a_distribution_over_tokens():
    torch.manual_seed(0)
    head = TransformerHead(4, 3, width=8, dropout=0.0, layers=2, heads=2)
    codes, ts = torch.randn(6, 5, 4), torch.linspace(0, 1, 5)
    logits, weights = head.forward_with_attention(codes, ts, need_weights=True)
    assert weights.shape == (6, 6)  # 5 time tokens + CLS
    assert torch.allclose(weights.sum(1), torch.ones(6), atol=1e-5)
    assert torch.allclose(logits, head(codes, ts))
    mean = cls_attention(head, codes, ts, chunk=4)
    assert mean.shape == (6,) and mean.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_time_encoding_depends_on_t_not_on_position():
    a = sinusoidal_time_encoding(torch.tensor([0.0, 0.5, 1.0]), 8)
    b = sinusoidal_time_encoding(torch.tensor([0.5]), 8)
    assert torch.allclose(a[1], b[0]) and not torch.allclose(a[0], a[2])


def test_shared_transformer_has_one_block():
    shared = TransformerHead(4, 3, width=8, dropout=0.0, layers=2, heads=2, shared=True)
    separate = TransformerHead(4, 3, width=8, dropout=0.0, layers=2, heads=2, shared=False)
    assert len(shared.blocks) == 1 and len(separate.blocks) == 2


def _encoded(data, time_conditioned=True, artifacts=None):
    method = SimpleNamespace(time_conditioned=time_conditioned)
    return Encoded(method, data, FakeFeatures(data), 0, torch.device("cpu"), artifacts)


def _small_cfg(cls, **kw):
    base = dict(trajectory_lrs=(1e-2,), trajectory_epochs=8, trajectory_batch_size=16, trajectory_width=8,
                transformer_heads=2)
    return cls(**{**base, **kw})


def test_trajectory_records_every_head_and_k():
    cfg = _small_cfg(TrajectoryConfig, trajectory_points=(1, 3))
    records = Trajectory().run(_encoded(_splits()), cfg)
    got = {(r.head, r.points) for r in records}
    assert got == {(h, k) for h in ("mlp", "gru", "transformer", "mlp-best-t") for k in (1, 3)}
    best = [r for r in records if r.head == "mlp-best-t"]
    assert all(r.extra["t"] in trajectory_times(r.points) for r in best)
    # The fake codes carry more class signal at larger t: the best single point is t = 1 for K = 3.
    assert next(r for r in best if r.points == 3).extra["t"] == 1.0
    assert max(r.value for r in records) > 0.8


def test_static_methods_are_evaluated_once_and_reported_at_every_k():
    data = _splits()
    encoded = _encoded(data, time_conditioned=False)
    cfg = _small_cfg(TrajectoryConfig, trajectory_points=(1, 2, 6), trajectory_heads=("gru",))
    records = Trajectory().run(encoded, cfg)
    assert [r.points for r in records] == [1, 2, 6]
    assert len({r.value for r in records}) == 1 and all(r.extra["evaluated_points"] == 1 for r in records)
    assert encoded.features.calls == [("train", (0.5,)), ("val", (0.5,)), ("test", (0.5,))]


def test_trajectory_subset_of_labelled_images_is_saved(tmp_path):
    cfg = _small_cfg(TrajectoryConfig, trajectory_points=(2,), trajectory_heads=("mlp",),
                     trajectory_train_images=30)
    records = Trajectory().run(_encoded(_splits(), artifacts=tmp_path), cfg)
    assert [r.labels for r in records] == [30]
    assert (tmp_path / "splits" / "toy-train-30-seed0.json").exists()
    assert "split_sha256" in records[0].extra


def test_bad_trajectory_settings_name_the_valid_ones():
    with pytest.raises(ValueError, match="trajectory_heads=lstm is not allowed; valid: non-empty lists drawn from mlp, gru, transformer, mlp-best-t"):
        TrajectoryConfig(trajectory_heads=("lstm",))
    with pytest.raises(ValueError, match="trajectory_points=0 is not allowed; valid: non-empty lists of integers >= 1"):
        TrajectoryConfig(trajectory_points=(0,))
    with pytest.raises(ValueError, match=re.escape("trajectory_width=10 is not allowed; valid: multiples of transformer_heads (4)")):
        TrajectoryConfig(trajectory_width=10, transformer_heads=4)


def test_attention_weights_and_accuracy():
    records = Attention().run(_encoded(_splits()), _small_cfg(AttentionConfig, attention_points=3))
    weights = [r for r in records if r.metric == "attention"]
    assert [r.t for r in weights] == [0.0, 0.5, 1.0]
    cls_weight = next(r.value for r in records if r.metric == "attention_cls")
    assert sum(r.value for r in weights) + cls_weight == pytest.approx(1.0, abs=1e-5)
    assert next(r for r in records if r.metric == "accuracy").value > 0.6


def test_mi_protocol_matrix_is_symmetric_with_unit_diagonal():
    cfg = MIConfig(t_values=(0.0, 0.5, 1.0), mi_samples=45)
    records = MutualInformation().run(_encoded(_splits()), cfg)
    nmi = {(r.t, r.t2): r.value for r in records if r.metric == "nmi"}
    assert len(nmi) == 9
    for (a, b), v in nmi.items():
        assert v == pytest.approx(nmi[(b, a)])
        if a == b:
            assert v == pytest.approx(1.0)
    label = {r.t: r.value for r in records if r.metric == "label_nmi"}
    # The fake codes' class signal grows with t.
    assert label[1.0] > label[0.0]


def test_mi_of_a_static_method_is_one_everywhere():
    cfg = MIConfig(t_values=(0.0, 1.0), mi_samples=45)
    records = MutualInformation().run(_encoded(_splits(), time_conditioned=False), cfg)
    assert all(r.value == pytest.approx(1.0) for r in records if r.metric == "nmi")


def test_a_head_stops_once_validation_stalls_for_patience_epochs(monkeypatch):
    from protocols import trajectory

    calls = []
    real = trajectory.accuracy
    monkeypatch.setattr(trajectory, "accuracy", lambda *a, **k: calls.append(1) or real(*a, **k))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 2, 4, generator=g), torch.arange(60) % 3
    x[torch.arange(60), :, y] += 4.0  # separable: validation accuracy peaks within a few epochs
    ts = torch.tensor([0.0, 1.0])
    cfg = TrajectoryConfig(trajectory_lrs=(1e-2,), trajectory_epochs=200, trajectory_patience=3,
                           trajectory_width=8, transformer_heads=2)
    fitted = trajectory.fit_select_head(lambda: make_head("mlp", 2, 4, 3, cfg), ts, (x, y), (x, y),
                                        (x, y), cfg, seed=0)
    epochs_run = len(calls) - 1  # one validation pass per epoch, one test pass
    assert epochs_run == fitted.epoch + 3 < 200, "stopped 3 epochs after its best one"
