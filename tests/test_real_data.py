"""Real-data tests (``pytest -m slow``): the pipeline on MNIST laid out under $BENCHMARKS_DATA_ROOT (default data/)."""

import os
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.store import ResultsStore
from datasets import load_dataset

DATA_ROOT = Path(os.environ.get("BENCHMARKS_DATA_ROOT", "data"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATA_ROOT / "MNIST" / "raw").exists(), reason=f"no MNIST under {DATA_ROOT}"),
]


def test_mnist_loads_with_official_sizes():
    data = load_dataset("mnist", root=DATA_ROOT)
    assert (len(data.train), len(data.val), len(data.test)) == (54_000, 6_000, 10_000)
    assert data.image_shape == (1, 28, 28) and data.num_classes == 10
    assert abs(data.mean[0] - 0.1307) < 2e-3 and abs(data.std[0] - 0.3081) < 2e-3


def test_smoke_pipeline_on_mnist_beats_chance(tmp_path):
    assert main(["run", "--method", "drl", "--protocol", "probe", "--dataset", "mnist", "--preset", "smoke",
                 "--data-root", str(DATA_ROOT), "--results", str(tmp_path / "r"),
                 "--leaderboards", str(tmp_path / "b"), "--no-progress"]) == 0
    frame = ResultsStore(tmp_path / "r").frame()
    accuracy = frame[frame.metric == "accuracy"]["value"]
    assert accuracy.max() > 0.5  # chance is 0.1: even 20 steps of pretraining give a usable code
