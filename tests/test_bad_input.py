"""Bad input to ``run``, one case per kind the issue lists: one stderr line naming the bad value and what
is expected, exit status 2, no traceback, nothing computed, and nothing already stored lost.

The simple cases (unknown names, malformed ``--set``, bad seeds, t out of range...) are in
test_cli.py's BAD_INPUT; these need files laid out on disk or a failure partway through a run.
"""

import dataclasses
import errno
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import cache
from benchmarks.__main__ import main
from benchmarks.store import ResultsStore
from core.validation import constraint_of
from datasets.folder import IMAGE_EXTENSIONS
from methods.base import available_methods, get_method_class
from methods.training import Budget, TrainOptions
from protocols.base import available_protocols, create_protocol
from tests.conftest import usage_error


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "--method", "drl", "--protocol", "probe", "--preset", "smoke", "--no-progress",
            "--results", str(tmp_path / "results"), "--leaderboards", str(tmp_path / "boards"), *extra]


def _image_folder(root: Path, sizes: dict[str, dict[str, list[int]]]) -> Path:
    """``root/split/class/i.png``, one grayscale square image of each listed size."""
    rng = np.random.default_rng(0)
    for split, classes in sizes.items():
        for cls, side in classes.items():
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i, s in enumerate(side):
                Image.fromarray(rng.integers(0, 255, (s, s), dtype=np.uint8)).save(root / split / cls / f"{i}.png")
    return root


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_mnist_folder_with_only_the_train_files(tmp_path, capsys, dry_run):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"")
    err = usage_error(_args(tmp_path, "--dataset", "mnist", "--data-root", str(tmp_path / "data"),
                             *(["--dry-run"] if dry_run else [])), capsys)
    assert f"mnist: incomplete files under {raw} (missing t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)" in err
    assert not (tmp_path / "results").exists()


def test_cifar_folder_missing_a_batch(tmp_path, capsys):
    base = tmp_path / "data" / "cifar-10-batches-py"
    base.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "test_batch", "batches.meta"):
        (base / name).write_bytes(b"")
    err = usage_error(_args(tmp_path, "--dataset", "cifar10", "--data-root", str(tmp_path / "data")), capsys)
    assert f"cifar10: incomplete files under {base} (missing data_batch_5)" in err


def test_folder_dataset_with_an_empty_class_folder(tmp_path, capsys):
    folder = _image_folder(tmp_path / "set", {"train": {"a": [8] * 3}, "test": {"a": [8], "b": [8]}})
    (folder / "train" / "b").mkdir()
    err = usage_error(_args(tmp_path, "--dataset", f"folder:{folder}", "--dry-run"), capsys)
    assert f"no images in {folder / 'train' / 'b'} (extensions {', '.join(IMAGE_EXTENSIONS)})" in err


def test_folder_dataset_without_a_test_split(tmp_path, capsys):
    folder = _image_folder(tmp_path / "set", {"train": {"a": [8] * 3}})
    err = usage_error(_args(tmp_path, "--dataset", f"folder:{folder}", "--dry-run"), capsys)
    assert f"no folder {folder / 'test'} (expected the layout {folder}/{{train,test}}/<class>/*" in err


def test_folder_dataset_with_images_of_mixed_shapes(tmp_path, capsys):
    folder = _image_folder(tmp_path / "set", {"train": {"a": [8, 8], "b": [8, 9]}, "test": {"a": [8], "b": [8]}})
    err = usage_error(_args(tmp_path, "--dataset", f"folder:{folder}"), capsys)
    assert f"{folder / 'train' / 'b' / '1.png'} has shape (1, 9, 9) (C, H, W) but expected (C, 8, 8)" in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("protocol,setting,message", [
    ("svm", "svm_labels=5000", "svm_labels=5000: cannot draw 5000 labelled images from a split of 1077 with "
                               "10 classes; valid: 10 to 1067, or all 1077"),
    ("svm", "svm_labels=1075", "svm_labels=1075: cannot draw 1075"),
    ("lowlabel", "label_counts=5", "label_counts=5: cannot draw 5 labelled images"),
    ("trajectory", "trajectory_train_images=5", "trajectory_train_images=5: cannot draw 5 labelled images"),
    ("attention", "trajectory_train_images=1070", "trajectory_train_images=1070: cannot draw 1070"),
])
def test_label_counts_the_dataset_cannot_give(tmp_path, capsys, protocol, setting, message):
    err = usage_error(_args(tmp_path, "--protocol", protocol, "--set", setting), capsys)
    assert message in err
    assert not (tmp_path / "results" / "checkpoints").exists(), "validated before pretraining"


@pytest.mark.parametrize("flag,value,message", [
    ("--seeds", "0,1,0", "seed 0 is given twice in 0,1,0; give each seed once"),
    ("--method", "drl,ae,drl", "method 'drl' is given twice in drl,ae,drl; give each method once"),
    ("--protocol", "probe,probe", "protocol 'probe' is given twice"),
])
def test_a_name_or_seed_given_twice(tmp_path, capsys, flag, value, message):
    assert message in usage_error(_args(tmp_path, flag, value), capsys)


@pytest.mark.parametrize("flag,where", [
    ("--results", "{file}/results"), ("--leaderboards", "{file}"), ("--results", "{results_with_file}"),
])
def test_unwritable_folders_are_found_before_pretraining(tmp_path, capsys, flag, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    results_with_file = tmp_path / "r2"  # a results folder whose checkpoints/ is a file
    results_with_file.mkdir()
    (results_with_file / "checkpoints").write_text("")
    folder = where.format(file=blocker, results_with_file=results_with_file)
    err = usage_error(_args(tmp_path, flag, folder), capsys)
    assert f"{flag} {folder}: " in err and "is a file, not a folder; valid: a folder this user can write to" in err
    assert not (tmp_path / "results" / "checkpoints").exists()


def test_a_folder_that_becomes_unwritable_midway_keeps_the_stored_runs(tmp_path, capsys, monkeypatch):
    """Seed 0 is stored; caching seed 1's codes then fails: one line, exit 2, seed 0's numbers remain."""
    stored = []
    write, save = ResultsStore.write, cache.save_verified

    def write_and_count(self, info, records):
        stored.append(info.seed)
        return write(self, info, records)

    def save_until_a_run_is_stored(obj, path):
        if stored:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return save(obj, path)

    monkeypatch.setattr(ResultsStore, "write", write_and_count)
    monkeypatch.setattr(cache, "save_verified", save_until_a_run_is_stored)
    args = _args(tmp_path, "--seeds", "0,1")
    args[args.index("drl")] = "none"  # no pretraining: seconds
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    progress, last = err.splitlines()[:-1], err.splitlines()[-1]  # the run's progress log, then the error
    assert "Traceback" not in err and not any("error:" in line for line in progress), err
    assert "Permission denied" in last and "the runs stored before this are kept" in last
    frame = ResultsStore(tmp_path / "results").frame()
    assert set(frame.seed) == {0} and len(frame) > 0


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_a_thread_count_that_is_not_positive(tmp_path, capsys, value):
    err = usage_error(_args(tmp_path, "--threads", value), capsys)
    assert f"'{value}' is not a positive number of threads" in err


# -- declared settings, fuzzed ------------------------------------------------------------------
# Every config of every registered method and protocol, the budget and the training options declare
# their fields' constraints (core.validation); each constraint names values it refuses. Every such
# value of every declared field must be refused in one line naming the field. A new setting is
# fuzzed by being declared.

def _config_owners() -> dict[type, tuple[str, str]]:
    """Each config class -> a (method, protocol) whose run reads it."""
    owners: dict[type, tuple[str, str]] = {Budget: ("none", "probe"), TrainOptions: ("none", "probe")}
    for m in available_methods():
        owners.setdefault(get_method_class(m).config_cls, (m, "probe"))
    for p in available_protocols():
        owners.setdefault(create_protocol(p).config_cls, ("none", p))
    return owners


CONFIG_OWNERS = _config_owners()
FUZZ_CASES = [(cls, f.name, bad) for cls in CONFIG_OWNERS for f in dataclasses.fields(cls)
              if (check := constraint_of(f)) is not None for bad in check.bad_values()]


def _cli_value(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _cli_sample() -> list[tuple[type, str, object]]:
    """The CLI path for a sample (the config path, below, for all): the first bad value of the first
    field each config declares in its own body, and every bad value of the first field of each kind
    of constraint."""
    sample, first_of_kind, classes_seen = [], {}, set()
    for cls, name, bad in FUZZ_CASES:
        check = constraint_of({f.name: f for f in dataclasses.fields(cls)}[name])
        item = getattr(check, "item", check)
        kind = (type(check), type(item), getattr(item, "integer", None), getattr(check, "nonempty", None))
        first_of_kind.setdefault(kind, (cls, name))
        own = name in vars(cls).get("__annotations__", {})
        if first_of_kind[kind] == (cls, name) or (own and cls not in classes_seen):
            sample.append((cls, name, bad))
            classes_seen.add(cls) if own else None
    return sample


CLI_SAMPLE = _cli_sample()


@pytest.mark.parametrize("cls,name,bad", CLI_SAMPLE, ids=[f"{n}={_cli_value(b)}" for _, n, b in CLI_SAMPLE])
def test_a_declared_bad_value_is_one_line_and_exit_2(tmp_path, capsys, cls, name, bad):
    method, protocol = CONFIG_OWNERS[cls]
    args = _args(tmp_path, "--set", f"{name}={_cli_value(bad)}", "--dry-run")
    args[args.index("drl")], args[args.index("probe")] = method, protocol
    err = usage_error(args, capsys)
    assert f"error: {name}=" in err and " is not allowed; valid: " in err, err
    assert not (tmp_path / "results").exists()


def test_every_config_declares_checks_and_the_fuzz_covers_them():
    declared = {cls: [f.name for f in dataclasses.fields(cls) if constraint_of(f)] for cls in CONFIG_OWNERS}
    assert all(declared.values()), {cls.__name__ for cls, names in declared.items() if not names}
    assert {name for _, name, _ in FUZZ_CASES} == {n for names in declared.values() for n in names}


@pytest.mark.parametrize("cls", list(CONFIG_OWNERS), ids=lambda c: c.__name__)
def test_a_redeclared_field_keeps_its_check(cls):
    """A subclass that gives a field a new default must declare its check again (``setting``)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for base in cls.__mro__[1:]:
        if dataclasses.is_dataclass(base):
            for f in dataclasses.fields(base):
                if constraint_of(f) is not None:
                    assert constraint_of(fields[f.name]) is not None, f"{cls.__name__}.{f.name} lost its check"


def test_every_declared_bad_value_is_refused_by_its_config():
    for cls, name, bad in FUZZ_CASES:
        with pytest.raises(ValueError) as err:
            cls(**{name: bad})
        message = str(err.value)
        assert message.startswith(f"{name}=") and " is not allowed; valid: " in message, (cls, message)
        assert "\n" not in message
    assert len(FUZZ_CASES) > 150, len(FUZZ_CASES)
