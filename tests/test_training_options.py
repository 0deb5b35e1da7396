"""The pretraining options: precision, layout and compilation change speed, not the interface or a run's identity."""

import dataclasses

import pytest
import torch

from benchmarks.__main__ import main
from benchmarks.plan import checkpoint_key
from benchmarks.store import ResultsStore
from core.files import load_verified
from methods.base import Budget, MethodConfig
from methods.training import TrainOptions
from tests.conftest import assert_same_weights, smoke_method


def test_bf16_autocast_trains_fp32_weights_and_codes(toy_data):
    method, budget = smoke_method("drl", toy_data)
    history = method.fit(toy_data.train, dataclasses.replace(budget, iterations=6), progress=False,
                         options=TrainOptions(precision="bf16"))
    assert all(torch.isfinite(torch.tensor(history.losses)))
    assert all(p.dtype == torch.float32 for p in method.modules.parameters())
    z = method.encode(toy_data.test.images, torch.full((len(toy_data.test),), 0.5))
    assert z.dtype == torch.float32 and torch.isfinite(z).all()


def test_the_auto_layout_is_contiguous_on_a_cpu(toy_data):
    """CPU reruns of the stored (contiguous) rows reproduce them bit for bit: channels-last would draw
    other noise for the same seed (randn_like and dropout fill NHWC memory in order)."""
    weights = []
    for layout in ("contiguous", "auto"):
        method, budget = smoke_method("drl", toy_data)  # reseeds: the same start
        method.fit(toy_data.train, dataclasses.replace(budget, iterations=3), progress=False,
                   options=TrainOptions(precision="fp32", layout=layout))
        weights.append(method.state_dict())
    assert_same_weights(*weights)
    assert TrainOptions().resolved_channels_last(torch.device("cuda"))


def test_channels_last_on_a_cpu_when_asked(toy_data):
    """The layout a run asks for is the one it trains in; its modules end contiguous for encoding."""
    method, budget = smoke_method("drl", toy_data)
    seen, real_loss = [], method.loss

    def recording_loss(batch):
        seen.append(batch.is_contiguous(memory_format=torch.channels_last))
        return real_loss(batch)

    method.loss = recording_loss
    history = method.fit(toy_data.train, dataclasses.replace(budget, iterations=3), progress=False,
                         options=TrainOptions(precision="fp32", layout="channels_last"))
    assert seen == [True] * 3 and all(torch.isfinite(torch.tensor(history.losses)))
    assert all(p.is_contiguous() for p in method.modules.parameters())


def test_auto_precision_is_bf16_on_cuda_only():
    assert TrainOptions().resolved_precision(torch.device("cpu")) == "fp32"
    assert TrainOptions().resolved_precision(torch.device("cuda")) == "bf16"
    assert TrainOptions(precision="fp32").resolved_precision(torch.device("cuda")) == "fp32"


def test_reduced_precision_has_its_own_checkpoint_and_fp32_keeps_the_old_key():
    args = ("drl", MethodConfig(), Budget(), "fingerprint", 0)
    fp32, fields = checkpoint_key(*args)
    assert "precision" not in fields and checkpoint_key(*args, "fp32")[0] == fp32
    assert checkpoint_key(*args, "bf16")[0] != fp32


@pytest.mark.parametrize("bad", [dict(precision="fp16"), dict(layout="nhwc"), dict(checkpoint_every=-1),
                                 dict(compile_mode="max-autotune")])
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError, match=str(next(iter(bad.values())))):
        TrainOptions(**bad)


def test_speed_settings_do_not_make_a_new_leaderboard_entry(tmp_path):
    assert main(["run", "--method", "ae", "--protocol", "probe", "--preset", "smoke", "--no-progress",
                 "--set", "checkpoint_every=7", "--set", "compile=false", "--set", "layout=contiguous",
                 "--set", "compile_mode=reduce-overhead",
                 "--results", str(tmp_path / "r"), "--leaderboards", str(tmp_path / "b")]) == 0
    assert set(ResultsStore(tmp_path / "r").frame().variant) == {""}


def test_cuda_graphs_need_compile_in_reduce_overhead_mode_on_cuda():
    graphs = TrainOptions(compile=True, compile_mode="reduce-overhead")
    assert graphs.uses_cuda_graphs(torch.device("cuda"))
    assert not graphs.uses_cuda_graphs(torch.device("cpu"))  # a CPU compiles in that mode without graphs
    assert not TrainOptions(compile=True).uses_cuda_graphs(torch.device("cuda"))
    assert not TrainOptions(compile_mode="reduce-overhead").uses_cuda_graphs(torch.device("cuda"))


def test_each_trained_module_is_compiled_once_in_the_mode_asked(toy_data, monkeypatch):
    """A second fit in the same mode reuses the compiled modules; another mode compiles them anew.
    (Recorded, not compiled: compiling takes minutes on a CPU; tox -e gpu trains compiled on CUDA.)"""
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda module, **kwargs: compiled.append((module, kwargs)))
    method, budget = smoke_method("drl", toy_data)
    budget = dataclasses.replace(budget, iterations=2)
    for mode in ("reduce-overhead", "reduce-overhead", "default"):
        method.fit(toy_data.train, budget, progress=False, options=TrainOptions(compile=True, compile_mode=mode))
    trained = list(method.modules.values())
    assert [(module, kwargs["mode"]) for module, kwargs in compiled] == (
        [(m, "reduce-overhead") for m in trained] + [(m, "default") for m in trained])


def test_the_old_layout_setting_names_its_replacement(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--method", "ae", "--protocol", "probe", "--preset", "smoke", "--set", "channels_last=false",
              "--results", str(tmp_path / "r"), "--leaderboards", str(tmp_path / "b")])
    assert exit_.value.code == 2 and "layout=channels_last, contiguous or auto" in capsys.readouterr().err


def test_a_divergence_is_caught_at_its_step_and_never_snapshot(toy_data, tmp_path, monkeypatch):
    """Losses are read once per log window (no device sync per step), yet the error names the exact
    step and terms, and a snapshot is never written of weights trained past a non-finite loss."""
    method, budget = smoke_method("ae", toy_data)
    real_loss, calls = type(method).loss, []

    def diverging_at_step_6(self, batch):
        loss, terms = real_loss(self, batch)
        calls.append(len(calls))
        return (loss * float("nan"), terms) if len(calls) > 6 else (loss, terms)

    monkeypatch.setattr(type(method), "loss", diverging_at_step_6)
    snapshot = tmp_path / "run.partial.pt"
    with pytest.raises(FloatingPointError, match=r"ae: non-finite loss nan at step 6; loss terms \{'loss': "):
        method.fit(toy_data.train, dataclasses.replace(budget, iterations=12), progress=False,
                   options=TrainOptions(checkpoint_every=4), snapshot_path=snapshot)
    assert load_verified(snapshot)["step"] == 4  # the step-8 snapshot would hold diverged weights
