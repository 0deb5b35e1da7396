"""``python -m benchmarks export``: a pretrained run's codes from the feature cache, as one .npz file."""

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.__main__ import main
from benchmarks.store import ResultsStore
from core.files import load_verified


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    assert main(["run", "--method", "drl", "--protocol", "silhouette", "--preset", "smoke", "--no-progress",
                 "--results", str(tmp / "results"), "--leaderboards", str(tmp / "boards")]) == 0
    return tmp


def _export(tmp: Path, *extra: str) -> list[str]:
    return ["export", "--method", "drl", "--preset", "smoke", "--no-progress", "--results", str(tmp / "results"),
            *extra]


def test_export_writes_the_cached_codes_of_every_split(pretrained, tmp_path):
    out = tmp_path / "codes.npz"
    assert main(_export(pretrained, "--t", "0,0.5,1", "--out", str(out))) == 0
    arrays = np.load(out)
    assert set(arrays) == {"train", "val", "test", "train_labels", "val_labels", "test_labels", "t"}
    assert arrays["t"].tolist() == [0.0, 0.5, 1.0]
    assert arrays["train"].shape[:2] == (3, len(arrays["train_labels"]))
    assert arrays["val"].shape[0] == arrays["test"].shape[0] == 3 and arrays["test"].shape[2] == 16
    # The silhouette run cached the test codes at t = 0.5: the export holds exactly those numbers.
    checkpoint = ResultsStore(pretrained / "results").frame()["checkpoint"].iloc[0]
    cached = load_verified(pretrained / "results" / "features" / checkpoint / "test_t0.5000.pt")
    torch.testing.assert_close(torch.from_numpy(arrays["test"][1]), cached, rtol=0, atol=0)


def test_export_encodes_a_missing_t_into_the_cache(pretrained, tmp_path):
    out = tmp_path / "codes.npz"
    assert main(_export(pretrained, "--t", "0.25", "--out", str(out))) == 0
    checkpoint = ResultsStore(pretrained / "results").frame()["checkpoint"].iloc[0]
    assert (pretrained / "results" / "features" / checkpoint / "train_t0.2500.pt").exists()
    assert np.load(out)["train"].shape[0] == 1


@pytest.mark.parametrize("extra,message", [
    (["--t", "0,1.5", "--out", "x.npz"], "t must lie in [0, 1]; got 1.5"),
    (["--t", "zero", "--out", "x.npz"], "is not a comma-separated list of numbers"),
    (["--t", "0", "--out", "x.txt"], "--out x.txt: the file name must end in .npz"),
    (["--t", "0", "--out", "x.npz", "--seed", "7"], "no pretrained checkpoint"),
    (["--t", "0", "--out", "x.npz", "--set", "latent_dim=zero"], "--set latent_dim='zero': expected int"),
])
def test_bad_export_arguments_are_one_line_and_exit_2(pretrained, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        main(_export(pretrained, *extra))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_an_unknown_method_is_one_line(pretrained, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--method", "drll", "--t", "0", "--out", "x.npz", "--results", str(pretrained / "results")])
    assert exit_info.value.code == 2 and "unknown method 'drll'; valid: " in capsys.readouterr().err
