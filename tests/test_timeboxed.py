"""The wall-clock-sized comparison (``python -m benchmarks.timeboxed``), dry-run on the CPU with tiny settings."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from benchmarks import timeboxed
from benchmarks.store import ResultsStore
from datasets.cifar import CIFAR10_CLASSES


def _tiny_cifar10_folder(root, train=20, test=4):
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        for name in CIFAR10_CLASSES:
            folder = root / "cifar10-jpeg" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_the_budget_is_one_iteration_count_that_fits_after_every_runs_evaluation():
    steps = [timeboxed.StepTime("a", 0.1, 100), timeboxed.StepTime("b", 0.3, 100)]
    plan = timeboxed.plan_budget(steps, seconds_left=100, eval_seconds=10)
    assert plan.iterations == 200  # (100 - 2 x 10 s) of pretraining / 0.4 s for one step of each
    assert plan.pretrain_seconds == pytest.approx(80) and plan.reserved_seconds == pytest.approx(20)
    three_seeds = timeboxed.plan_budget(steps, seconds_left=100, eval_seconds=10, seeds=3)
    assert three_seeds.reserved_seconds == pytest.approx(60)  # 2 methods x 3 seeds
    assert three_seeds.iterations == 30  # 40 s / (3 x 0.4 s), rounded down to a multiple of 10
    assert timeboxed.plan_budget(steps, seconds_left=1, eval_seconds=10).iterations == 10  # never zero


def test_a_timeboxed_comparison_stores_every_method_at_the_same_budget(tmp_path, capsys):
    _tiny_cifar10_folder(tmp_path / "data")
    code = timeboxed.main(["--minutes", "0.5", "--preset", "smoke", "--device", "cpu", "--method", "drl,ae",
                           "--measure-steps", "2", "--data-root", str(tmp_path / "data"),
                           "--results", str(tmp_path / "r"), "--leaderboards", str(tmp_path / "b"), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    iterations = int(re.search(r"timeboxed: (\d+) iterations for every method", out).group(1))
    frame = ResultsStore(tmp_path / "r").frame()
    assert set(frame["method"]) == {"drl", "ae"}
    assert {json.loads(c)["budget"]["iterations"] for c in frame["config"]} == {iterations}
    command = frame["command"].iloc[0]
    assert f"--set iterations={iterations}" in command and str(tmp_path / "r") not in command
    assert re.search(r"timeboxed: \d+ s spent of 30 s planned", out)


@pytest.mark.parametrize("argv,message", [
    (["--method", "drll"], "unknown method 'drll'"),
    (["--minutes", "0"], "--minutes 0.0"),
])
def test_bad_timeboxed_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        timeboxed.main([*argv, "--data-root", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
