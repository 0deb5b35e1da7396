"""``run --dry-run``: the plan of a run, computed from the caches and the store without writing anything.

The fuzz test feeds random argument lists, built from valid and invalid tokens,
through the argument parsing and validation: every one must end in a printed
plan (exit 0, nothing written) or a clean usage error (exit 2, one line).
"""

import functools
import random
from pathlib import Path

import pytest

from benchmarks import runner
from benchmarks.__main__ import main
from datasets import load_dataset
from methods.base import Method, available_methods
from protocols.base import available_protocols
from protocols.probe import Probe


def _snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folders`` with its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns)
            for folder in folders if folder.exists() for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A results folder holding one real smoke run: drl, probe, seed 0."""
    tmp = tmp_path_factory.mktemp("dry")
    assert main(["run", "--method", "drl", "--protocol", "probe", "--preset", "smoke", "--no-progress",
                 "--results", str(tmp / "results"), "--leaderboards", str(tmp / "boards")]) == 0
    return tmp


def test_dry_run_reports_what_is_cached_and_computes_nothing(stored, monkeypatch, capsys):
    def forbidden(*_a, **_k):
        raise AssertionError("a dry run must not pretrain, encode or evaluate")

    for cls, name in ((Method, "fit"), (Method, "encode"), (Probe, "run")):
        monkeypatch.setattr(cls, name, forbidden)
    before = _snapshot(stored)
    capsys.readouterr()
    assert main(["run", "--method", "drl,none", "--protocol", "probe,semisup", "--preset", "smoke",
                 "--seeds", "0,1", "--results", str(stored / "results"),
                 "--leaderboards", str(stored / "boards"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    ckpt = next((stored / "results" / "checkpoints").glob("*.pt")).stem
    assert "plan: 2 methods x 2 protocols x 2 seeds on digits" in out
    assert f"drl seed 0: pretrained checkpoint {ckpt} cached" in out
    assert "drl seed 1: will pretrain 20 steps x 32 images -> checkpoint" in out
    assert "none seed 0: no pretraining" in out
    assert "drl seed 0 probe: stored run will be replaced; codes at 3 t: 9 of 9 (split, t) cached" in out
    assert "drl seed 1 probe: new run; codes at 3 t: 0 of 9 (split, t) cached" in out
    assert "none seed 1 probe: new run; codes at 3 t: 0 of 3 (split, t) cached" in out  # static: one t
    assert "drl seed 0 semisup: new run; fine-tunes a copy of the encoder" in out
    assert ("total: 4 encoders (1 cached, 1 to pretrain, 20 steps in all; 2 without pretraining); "
            "8 evaluations (7 new, 1 replacing stored runs; 0 stored at this commit, skipped); "
            "9 of 24 (split, t) codes cached") in out
    assert _snapshot(stored) == before


def test_dry_run_of_a_fresh_folder_creates_nothing(tmp_path, capsys):
    assert main(["run", "--method", "drl", "--protocol", "probe", "--preset", "smoke",
                 "--results", str(tmp_path / "r"), "--leaderboards", str(tmp_path / "b"), "--dry-run"]) == 0
    assert "0 runs stored" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_dry_run_shares_the_real_runs_checks(tmp_path, capsys):
    """A setting that only the data can refute fails the dry run exactly as it fails the run."""
    args = ["run", "--method", "drl", "--protocol", "svm", "--preset", "smoke", "--set", "svm_labels=5000",
            "--results", str(tmp_path / "r"), "--leaderboards", str(tmp_path / "b")]
    errors = []
    for extra in ([], ["--dry-run"]):
        with pytest.raises(SystemExit) as exit_info:
            main(args + extra)
        assert exit_info.value.code == 2
        errors.append(capsys.readouterr().err)
    assert errors[0] == errors[1] and "svm_labels=5000: cannot draw 5000 labelled images" in errors[0]
    assert not (tmp_path / "r").exists()


# -- fuzzing the argument parsing and validation ------------------------------------------------

# (valid tokens, invalid tokens) for each option; a setting is valid only for the protocols that take it.
# Every registered method and protocol (what discovery found), and a pair of each.
METHODS = ([*available_methods(), "drl,none"], ["drl,drl", "drll", "DRL", "", ",", "drl,"])
PROTOCOLS = ([*available_protocols(), "probe,svm"], ["prob", "", "probe,probe"])
PRESETS = (["smoke", "quick", "paper"], ["fast", ""])
SEEDS = (["0", "0,1", "3", " 1"], ["a,1", "-1", "", "1.5", "0,0", "0,,1", "1e3"])
SETTINGS = (["latent_dim=2", "t_values=0,0.5", "heads=linear", "svm_labels=20", "label_counts=50", "t_init=0.3",
             "iterations=5", "hflip=true", "trajectory_train_images=100", "precision=bf16", "compile=true",
             "compile_mode=reduce-overhead", "checkpoint_every=0", "augment_backend=kornia"],
            ["latent_dim", "latentdim=2", "latent_dim=two", "t_values=0,1.5", "t_values=-1", "t_values=",
             "t_values=nan", "heads=svm", "svm_labels=5000", "label_counts=5", "=3", "t_init=1.0", "lr=abc",
             "hflip=maybe", "trajectory_points=0", "attention_points=1", "semisup_labels=7", "mi_samples=x",
             "trajectory_train_images=5", "iterations=0", "batch_size=-3", "lr=nan", "lr=0", "latent_dim=-1",
             "encoder=vgg", "ema_decay=1", "precision=fp16", "checkpoint_every=-1", "augment_backend=gpu",
             "compile_mode=max-autotune"])


def _datasets(tmp: Path) -> tuple[list[str], list[str]]:
    from PIL import Image

    mixed = tmp / "mixed"
    for split, cls, size in (("train", "a", 8), ("train", "b", 9), ("test", "a", 8), ("test", "b", 8)):
        (mixed / split / cls).mkdir(parents=True)
        Image.new("L", (size, size)).save(mixed / split / cls / "0.png")
    (tmp / "empty" / "train" / "a").mkdir(parents=True)
    (tmp / "empty" / "test" / "a").mkdir(parents=True)
    return (["digits"], ["imagenet", "folder:", f"folder:{tmp / 'missing'}", f"folder:{mixed}",
                         f"folder:{tmp / 'empty'}", "mnist", "cifar10", "miniimagenet", "digits:x"])


def _random_args(rng: random.Random, datasets: tuple[list[str], list[str]], blocker: Path) -> list[str]:
    def pick(tokens: tuple[list[str], list[str]]) -> str:
        return rng.choice(tokens[0] if rng.random() < 0.8 else tokens[1])

    pairs: list[list[str]] = []
    if rng.random() < 0.95:
        pairs.append(["--method", pick(METHODS)])
    if rng.random() < 0.95:
        pairs.append(["--protocol", pick(PROTOCOLS)])
    if rng.random() < 0.5:
        pairs.append(["--dataset", pick(datasets)])
    if rng.random() < 0.6:
        pairs.append(["--preset", pick(PRESETS)])
    if rng.random() < 0.5:
        pairs.append(["--seeds", pick(SEEDS)])
    pairs += [["--set", pick(SETTINGS)] for _ in range(rng.choice((0, 0, 0, 1, 1, 2)))]
    if rng.random() < 0.2:
        pairs.append(rng.choice([["--bogus"], ["--device", "tpu"], ["--device", "cpu"], ["--no-progress"],
                                 ["stray"], ["--results", str(blocker / "r")], ["--leaderboards", str(blocker)],
                                 ["--seeds"], ["--set"], ["--method"]]))
    rng.shuffle(pairs)
    return [token for pair in pairs for token in pair]


def test_random_arguments_give_a_plan_or_one_usage_line(stored, tmp_path, monkeypatch, capsys):
    # Loading a dataset is deterministic: load each once (a second digits load costs 0.1 s).
    monkeypatch.setattr(runner, "load_dataset", functools.lru_cache(load_dataset))
    datasets = _datasets(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    fixed = ["run", "--results", str(stored / "results"), "--leaderboards", str(stored / "boards"),
             "--data-root", str(tmp_path / "no-data")]
    before = _snapshot(stored, tmp_path / "no-data")
    rng = random.Random(8)
    outcomes = {0: 0, 2: 0}
    for case in range(400):
        args = fixed + _random_args(rng, datasets, blocker) + ["--dry-run"]
        capsys.readouterr()
        try:
            code = main(args)
        except SystemExit as exit_info:
            code = exit_info.code
        out, err = capsys.readouterr()
        where = f"case {case}: {args[len(fixed):]}\nstdout: {out}\nstderr: {err}"
        assert code in (0, 2), where
        assert "Traceback" not in out + err, where
        if code == 0:
            assert out.startswith("plan: ") and out.endswith("dry run: nothing computed, nothing written\n"), where
            assert err == "", where
        else:
            assert out == "" and err.count("\n") == 1 and "error: " in err, where
        outcomes[code] += 1
    assert _snapshot(stored, tmp_path / "no-data") == before, "a dry run wrote something"
    assert min(outcomes.values()) >= 50, outcomes  # both outcomes are exercised (99 and 301 now)
