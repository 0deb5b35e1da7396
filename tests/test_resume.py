"""Resumable pretraining: an interrupted run continues from its snapshot and ends where an uninterrupted one ends."""

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmarks.__main__ import main
from core.files import load_verified
from methods.training import TrainOptions
from tests.conftest import assert_same_weights, smoke_method

REPO = Path(__file__).resolve().parents[1]


class Interrupt(Exception):
    pass


def _stop_at(step: int):
    def on_step(done: int) -> None:
        if done == step:
            raise Interrupt
    return on_step


@pytest.mark.parametrize(("name", "layout"), [("drl", "auto"), ("simclr", "auto"), ("vae", "auto"),
                                           ("drl", "channels_last")])
def test_interrupted_fit_resumes_to_the_same_weights(name, layout, toy_data, tmp_path):
    """Stochastic objectives (noise and t, lightly's numpy/random augmentations, reparameterisation),
    and a CPU run in the channels-last layout it asked for (its snapshot holds NHWC weights)."""
    method, budget = smoke_method(name, toy_data)
    budget = dataclasses.replace(budget, iterations=12)
    options = TrainOptions(checkpoint_every=4, layout=layout)
    straight = method.fit(toy_data.train, budget, progress=False, options=TrainOptions(layout=layout))
    expected = method.state_dict()

    snapshot = tmp_path / "run.partial.pt"
    method, _ = smoke_method(name, toy_data)  # reseeds, as a fresh process would
    with pytest.raises(Interrupt):  # killed after step 10: the snapshot of step 8 survives
        method.fit(toy_data.train, budget, progress=False, options=options, snapshot_path=snapshot,
                   on_step=_stop_at(10))
    assert load_verified(snapshot)["step"] == 8

    torch.manual_seed(12345)  # a new process: whatever state the RNGs are in must not matter
    method, _ = smoke_method(name, toy_data)
    torch.manual_seed(999)
    lines = []
    resumed = method.fit(toy_data.train, budget, progress=False, options=options, snapshot_path=snapshot,
                         log=lines.append)
    assert lines == [f"{name}: resuming pretraining from step 8 of 12 ({snapshot})"]
    assert resumed.resumed_from == 8 and resumed.steps == 12
    assert resumed.losses == straight.losses
    assert_same_weights(expected, method.state_dict())


def test_a_corrupt_snapshot_is_set_aside_and_training_starts_over(toy_data, tmp_path, caplog):
    method, budget = smoke_method("drl", toy_data)
    budget = dataclasses.replace(budget, iterations=8)
    method.fit(toy_data.train, budget, progress=False)
    expected = method.state_dict()
    snapshot = tmp_path / "run.partial.pt"
    method, _ = smoke_method("drl", toy_data)
    with pytest.raises(Interrupt):
        method.fit(toy_data.train, budget, progress=False, options=TrainOptions(checkpoint_every=4),
                   snapshot_path=snapshot, on_step=_stop_at(6))
    snapshot.write_bytes(snapshot.read_bytes()[:-100])  # truncated, as by a full disk

    method, _ = smoke_method("drl", toy_data)
    history = method.fit(toy_data.train, budget, progress=False, options=TrainOptions(checkpoint_every=4),
                         snapshot_path=snapshot)
    assert history.resumed_from == 0
    assert "corrupt pretraining snapshot" in caplog.text and "pretraining from step 0" in caplog.text
    assert (tmp_path / "run.partial.pt.corrupt").exists()
    assert_same_weights(expected, method.state_dict())


def _args(results: Path) -> list[str]:
    return ["run", "--method", "drl", "--protocol", "probe", "--preset", "smoke", "--no-progress",
            "--set", "iterations=150", "--set", "checkpoint_every=10",
            "--results", str(results), "--leaderboards", str(results / "boards")]


def _numbers(results: Path) -> list[tuple]:
    with sqlite3.connect(results / "results.sqlite") as db:
        return db.execute("SELECT metric, t, head, value FROM results ORDER BY metric, t, head").fetchall()


def _final_checkpoint(results: Path) -> dict:
    (path,) = [p for p in (results / "checkpoints").glob("*.pt") if not p.name.endswith(".partial.pt")]
    return load_verified(path)["state"]


def test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path, capfd):
    straight = tmp_path / "straight"
    assert main(_args(straight)) == 0

    killed = tmp_path / "killed"
    # The killed process computes with as many threads as this one: identical numbers need both.
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks", *_args(killed)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((killed / "checkpoints").glob("*.partial.pt")):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no snapshot was written"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not [p for p in (killed / "checkpoints").glob("*.pt") if not p.name.endswith(".partial.pt")]

    capfd.readouterr()
    assert main(_args(killed)) == 0  # the same command again
    err = capfd.readouterr().err
    assert "drl: resuming pretraining from step" in err
    step = int(err.split("resuming pretraining from step ")[1].split()[0])
    assert 10 <= step < 150 and step % 10 == 0
    assert not list((killed / "checkpoints").glob("*.partial.pt")), "the snapshot outlived the final checkpoint"
    assert_same_weights(_final_checkpoint(straight), _final_checkpoint(killed))
    assert _numbers(killed) == _numbers(straight)
