"""Tests of the datasets package: every loader on small files written here in the real formats, and a
contract every registered (discovered) dataset keeps."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import datasets
from core.data import DatasetError, DataSplits, ImageData, stratified_split
from datasets import DATASETS, available_datasets, dataset_module, load_dataset, register_dataset
from datasets import folder as folder_reader
from datasets.cifar import CIFAR10_CLASSES

REGISTERED = available_datasets()  # what discovery found: the contract tests below run for each
VALID = ", ".join(REGISTERED)


@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return load_dataset("digits")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- registry, containers


def test_available_datasets() -> None:
    assert REGISTERED == sorted(REGISTERED) and len(set(REGISTERED)) == len(REGISTERED)
    assert {name.partition(":")[0] for name in REGISTERED} == set(DATASETS.names())
    for name in REGISTERED:  # parametric ones, and only they, are listed as name:PATH
        assert name.endswith(":PATH") == DATASETS.get(name.partition(":")[0]).takes_path


@pytest.mark.parametrize("name", ["imagenet", "digits:foo", ""])
def test_unknown_name(name: str) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(name)
    assert str(info.value) == f"unknown dataset {name!r}; valid: {VALID}"


def test_folder_needs_a_path() -> None:
    for name in ("folder", "folder:", "folder:  "):
        with pytest.raises(DatasetError, match="folder:/data/my-set"):
            load_dataset(name)


def test_register_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="dataset 'digits' is already registered \\(by datasets.digits\\)"):
        register_dataset("digits")(lambda root, download: None)
    assert DATASETS.module_of("digits") == "datasets.digits"


# --------------------------------------------------------------------------- the contract of every dataset


def _check_splits(d: DataSplits) -> None:
    """What every loaded dataset holds, whatever its source."""
    shape = d.image_shape
    for split in ("train", "val", "test"):
        part = d.split(split)
        assert part.images.dtype == torch.uint8 and part.images.is_contiguous() and len(part) > 0
        assert part.labels.dtype == torch.int64 and tuple(part.images.shape[1:]) == shape
        assert 0 <= int(part.labels.min()) and int(part.labels.max()) < d.num_classes
    assert len(d.classes) == d.num_classes and len(d.mean) == len(d.std) == shape[0]
    assert set(d.val.labels.tolist()) <= set(d.train.labels.tolist())


@pytest.mark.parametrize("name", REGISTERED)
def test_contract_defined_in_its_own_module_and_documented(name: str) -> None:
    module = dataset_module(name)
    assert module.startswith("datasets.") and module != "datasets.base", module
    key = name.partition(":")[0]
    assert f"``{key}" in datasets.__doc__, f"{name} is not described in the datasets package docstring"


@pytest.mark.parametrize("name", REGISTERED)
def test_contract_without_files_loads_or_says_where_it_looked(name: str, tmp_path) -> None:
    """Pointed at an empty folder without --download: its splits (an embedded set), or one line that
    names the dataset and the folder it looked in. Never another exception, never a download."""
    empty = tmp_path / "empty"
    empty.mkdir()
    key, _, _ = name.partition(":")
    try:
        d = load_dataset(name.replace(":PATH", f":{empty}"), root=empty)
    except DatasetError as err:
        msg = str(err)
        assert "\n" not in msg and msg.startswith(key) and str(empty) in msg, msg
        assert list(empty.iterdir()) == []  # nothing written, nothing downloaded
    else:
        _check_splits(d)
        assert d.name == name and d.fingerprint() == load_dataset(name, root=empty).fingerprint()


@pytest.mark.parametrize("name", REGISTERED)
def test_contract_names_are_case_and_space_insensitive_and_take_a_path_only_if_declared(name: str,
                                                                                       tmp_path) -> None:
    key = name.partition(":")[0]
    if DATASETS.get(key).takes_path:
        with pytest.raises(DatasetError, match="needs a folder"):
            load_dataset(f" {key.upper()} ")
    else:
        with pytest.raises(DatasetError, match=f"unknown dataset '{key}:x'"):
            load_dataset(f"{key}:x")
        spelled = f" {key.upper()} "
        try:
            load_dataset(spelled, root=tmp_path)
        except DatasetError as err:
            assert "unknown dataset" not in str(err)


def test_image_data_validation_and_subset() -> None:
    images = torch.arange(5 * 2 * 3 * 3, dtype=torch.uint8).reshape(5, 2, 3, 3)
    d = ImageData(images, torch.tensor([0, 1, 0, 1, 2], dtype=torch.int32))
    assert len(d) == 5 and d.labels.dtype == torch.int64
    for index in ([4, 0], np.array([4, 0]), torch.tensor([4, 0]), (4, 0)):
        sub = d.subset(index)
        assert torch.equal(sub.images, images[[4, 0]]) and sub.labels.tolist() == [2, 0]
        assert sub.images.is_contiguous()
    assert d.subset([]).images.shape == (0, 2, 3, 3)
    assert d.subset(np.array([True, False, False, False, True])).labels.tolist() == [0, 2]
    assert d.subset(slice(1, 3)).labels.tolist() == [1, 0]
    with pytest.raises(TypeError, match="integers"):
        d.subset([0.5])
    with pytest.raises(TypeError, match="uint8"):
        ImageData(images.float(), d.labels)
    with pytest.raises(ValueError, match="expected \\(5,\\)"):
        ImageData(images, torch.zeros(4, dtype=torch.int64))
    assert "n=5" in repr(d)
    # non-contiguous input is made contiguous
    assert ImageData(images.transpose(2, 3), d.labels).images.is_contiguous()


# --------------------------------------------------------------------------- digits


def test_digits_shapes_and_splits(digits: DataSplits) -> None:
    assert digits.name == "digits" and digits.image_shape == (1, 8, 8)
    assert digits.num_classes == 10 and digits.classes == tuple(str(i) for i in range(10))
    for split in ("train", "val", "test"):
        d = digits.split(split)
        assert d.images.dtype == torch.uint8 and d.labels.dtype == torch.int64
        assert d.images.is_contiguous() and d.images.shape[1:] == (1, 8, 8)
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    assert len(digits.test) == 450 and len(digits.val) == 270
    assert int(digits.train.images.max()) == 255 and int(digits.train.images.min()) == 0
    with pytest.raises(ValueError, match="train, val, test"):
        digits.split("validation")


def test_digits_values_are_scaled_sklearn_digits(digits: DataSplits) -> None:
    from sklearn.datasets import load_digits

    x = load_digits().data
    expected = {tuple(np.rint(row * 255 / 16).astype(np.uint8)) for row in x}
    got = {tuple(row) for row in digits.test.images.reshape(-1, 64).numpy()}
    assert got <= expected


def test_digits_val_is_fixed_and_stratified(digits: DataSplits) -> None:
    again = load_dataset("digits")
    for split in ("train", "val", "test"):
        assert torch.equal(digits.split(split).images, again.split(split).images)
        assert torch.equal(digits.split(split).labels, again.split(split).labels)
    counts = torch.bincount(digits.val.labels, minlength=10).float()
    train_counts = torch.bincount(digits.train.labels, minlength=10).float()
    assert torch.allclose(counts / counts.sum(), train_counts / train_counts.sum(), atol=0.01)
    assert (counts >= 25).all()


def test_val_fraction_override(digits: DataSplits) -> None:
    d = load_dataset("digits", val_fraction=0.5)
    assert abs(len(d.val) - len(d.train)) <= 1
    assert len(d.train) + len(d.val) == len(digits.train) + len(digits.val)
    assert torch.equal(d.test.labels, digits.test.labels)
    for bad in (0, 1, 1.5, -0.1, "0.1", True):
        with pytest.raises(ValueError, match="val_fraction"):
            load_dataset("digits", val_fraction=bad)


def test_normalise_and_stats(digits: DataSplits) -> None:
    x = digits.normalise(digits.train.images)
    assert x.dtype == torch.float32 and x.device == digits.train.images.device
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std(unbiased=False)) - 1) < 1e-4
    ref = digits.train.images.double() / 255
    assert digits.mean == (round(float(ref.mean()), 6),)
    assert digits.std == (round(float(ref.std(unbiased=False)), 6),)
    assert all(isinstance(v, float) for v in digits.mean + digits.std)
    assert digits.normalise(digits.val.images[0]).shape == (1, 8, 8)
    with pytest.raises(TypeError, match="uint8"):
        digits.normalise(x)
    with pytest.raises(ValueError, match="\\(..., 1, H, W\\)"):
        digits.normalise(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_normalise_on_gpu(digits: DataSplits) -> None:
    x = digits.normalise(digits.val.images.cuda())
    assert x.is_cuda and torch.allclose(x.cpu(), digits.normalise(digits.val.images), atol=1e-6)


def test_fingerprint(digits: DataSplits) -> None:
    fp = digits.fingerprint()
    assert fp == load_dataset("digits").fingerprint()
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert load_dataset("digits", val_fraction=0.3).fingerprint() != fp
    flipped = DataSplits(name="digits", train=digits.train,
                         val=ImageData(255 - digits.val.images, digits.val.labels), test=digits.test,
                         num_classes=10, classes=digits.classes, mean=digits.mean, std=digits.std)
    assert flipped.fingerprint() != fp
    relabelled = DataSplits(name="digits", train=digits.train, val=digits.val,
                            test=ImageData(digits.test.images, (digits.test.labels + 1) % 10),
                            num_classes=10, classes=digits.classes, mean=digits.mean, std=digits.std)
    assert relabelled.fingerprint() != fp


def test_stratified_split_is_sorted_and_disjoint() -> None:
    y = np.repeat(np.arange(4), 10)
    keep, held = stratified_split(y, 0.25)
    assert (np.diff(keep) > 0).all() and (np.diff(held) > 0).all()
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(40))
    assert sorted(np.bincount(y[held]).tolist()) == [2, 2, 3, 3]


# --------------------------------------------------------------------------- mnist


def _write_idx(path, array: np.ndarray) -> None:
    magic = 2051 if array.ndim == 3 else 2049
    with open(path, "wb") as fh:
        fh.write(struct.pack(">I", magic))
        fh.write(struct.pack(f">{array.ndim}I", *array.shape))
        fh.write(array.astype(np.uint8).tobytes())


def _write_mnist(root, n_train: int = 100, n_test: int = 20) -> dict[str, np.ndarray]:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = _rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.permutation(np.arange(n_test, dtype=np.uint8) % 10),
    }
    for name, array in arrays.items():
        _write_idx(raw / name, array)
    return arrays


def test_mnist_round_trip(tmp_path) -> None:
    arrays = _write_mnist(tmp_path)
    d = load_dataset("mnist", root=tmp_path)
    assert d.name == "mnist" and d.image_shape == (1, 28, 28) and d.num_classes == 10
    assert (len(d.train), len(d.val), len(d.test)) == (90, 10, 20)
    assert np.array_equal(d.test.images[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    assert np.array_equal(d.test.labels.numpy(), arrays["t10k-labels-idx1-ubyte"])
    keep, held = stratified_split(arrays["train-labels-idx1-ubyte"], 0.1)
    for part, idx in ((d.train, keep), (d.val, held)):
        assert np.array_equal(part.images[:, 0].numpy(), arrays["train-images-idx3-ubyte"][idx])
        assert np.array_equal(part.labels.numpy(), arrays["train-labels-idx1-ubyte"][idx])
    assert sorted(d.val.labels.tolist()) == list(range(10))


def test_mnist_missing_and_partial(tmp_path) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", root=tmp_path / "data")
    msg = str(info.value)
    assert "\n" not in msg and str(tmp_path / "data" / "MNIST" / "raw") in msg
    assert "train-images-idx3-ubyte" in msg and "--download" in msg and "--data-root" in msg
    _write_mnist(tmp_path)
    os.remove(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte")
    with pytest.raises(DatasetError, match="missing t10k-labels-idx1-ubyte"):
        load_dataset("mnist", root=tmp_path)


def test_mnist_corrupt_file(tmp_path) -> None:
    _write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x00")
    with pytest.raises(DatasetError, match="cannot read the files under .*MNIST.raw"):
        load_dataset("mnist", root=tmp_path)


# --------------------------------------------------------------------------- cifar


@pytest.fixture
def no_md5(monkeypatch):
    """Tiny test pickles cannot match torchvision's md5s: check existence only (tests only)."""
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


def _pickle(path, obj) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


def _write_cifar10(root, per_batch: int = 10, n_test: int = 10) -> dict[str, np.ndarray]:
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = _rng(2)
    rows, labels = [], []
    for b in range(1, 6):
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = [(b * per_batch + i) % 10 for i in range(per_batch)]
        _pickle(base / f"data_batch_{b}", {"batch_label": f"training batch {b} of 5", "data": x,
                                           "labels": y, "filenames": [f"{b}_{i}.png" for i in range(per_batch)]})
        rows.append(x)
        labels += y
    xt = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    yt = [i % 10 for i in range(n_test)]
    _pickle(base / "test_batch", {"batch_label": "testing batch 1 of 1", "data": xt, "labels": yt})
    _pickle(base / "batches.meta", {"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": per_batch})
    return {"train_x": np.concatenate(rows).reshape(-1, 3, 32, 32), "train_y": np.array(labels),
            "test_x": xt.reshape(-1, 3, 32, 32), "test_y": np.array(yt)}


def test_cifar10_pickles_round_trip(tmp_path, no_md5) -> None:
    ref = _write_cifar10(tmp_path)
    d = load_dataset("cifar10", root=tmp_path, val_fraction=0.2)
    assert d.name == "cifar10" and d.image_shape == (3, 32, 32) and d.classes == CIFAR10_CLASSES
    assert (len(d.train), len(d.val), len(d.test)) == (40, 10, 10)
    assert np.array_equal(d.test.images.numpy(), ref["test_x"]) and d.test.images.is_contiguous()
    assert np.array_equal(d.test.labels.numpy(), ref["test_y"])
    keep, held = stratified_split(ref["train_y"], 0.2)
    assert np.array_equal(d.train.images.numpy(), ref["train_x"][keep])
    assert np.array_equal(d.val.labels.numpy(), ref["train_y"][held])
    assert len(d.mean) == len(d.std) == 3


def test_cifar10_partial_and_corrupt(tmp_path, monkeypatch) -> None:
    _write_cifar10(tmp_path)
    with pytest.raises(DatasetError, match="md5"):  # real torchvision check: tiny files are not official
        load_dataset("cifar10", root=tmp_path)
    os.remove(tmp_path / "cifar-10-batches-py" / "test_batch")
    with pytest.raises(DatasetError, match="missing test_batch"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar_missing(tmp_path) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset("cifar10", root=tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in msg and str(tmp_path / "cifar10-jpeg") in msg
    assert "--download" in msg and "\n" not in msg
    with pytest.raises(DatasetError, match="cifar-100-python.*--download"):
        load_dataset("cifar100", root=tmp_path)


def test_cifar100_round_trip(tmp_path, no_md5) -> None:
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    rng = _rng(3)
    x, y = rng.integers(0, 256, (200, 3072), dtype=np.uint8), [i % 100 for i in range(200)]
    xt, yt = rng.integers(0, 256, (50, 3072), dtype=np.uint8), [(7 * i) % 100 for i in range(50)]
    names = [f"class_{i:02d}" for i in range(100)]
    _pickle(base / "train", {"data": x, "fine_labels": y, "coarse_labels": [i // 5 for i in y]})
    _pickle(base / "test", {"data": xt, "fine_labels": yt, "coarse_labels": [i // 5 for i in yt]})
    _pickle(base / "meta", {"fine_label_names": names, "coarse_label_names": [f"s{i}" for i in range(20)]})
    d = load_dataset("cifar100", root=tmp_path, val_fraction=0.5)
    assert d.name == "cifar100" and d.num_classes == 100 and d.classes == tuple(names)
    assert (len(d.train), len(d.val), len(d.test)) == (100, 100, 50)
    assert np.array_equal(d.test.images.numpy(), xt.reshape(-1, 3, 32, 32))
    assert d.test.labels.tolist() == yt
    assert sorted(d.val.labels.tolist()) == list(range(100))


# --------------------------------------------------------------------------- image folders


def _save(path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": 95} if path.suffix == ".jpg" else {"lossless": True} if path.suffix == ".webp" else {}
    Image.fromarray(array).save(path, **options)


def _write_folder(root, classes, per_class: dict[str, int], shape=(12, 10), gray=False,
                  ext=".png", seed: int = 4) -> dict[str, list[np.ndarray]]:
    rng = _rng(seed)
    out: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    for split, n in per_class.items():
        for cls in classes:
            for i in range(n):
                size = shape if gray else (*shape, 3)
                arr = rng.integers(0, 256, size, dtype=np.uint8)
                _save(root / split / cls / f"{i:03d}{ext}", arr)
                out[split].append(arr)
    return out


def test_folder_grayscale_round_trip(tmp_path) -> None:
    ref = _write_folder(tmp_path / "set", ["b", "a"], {"train": 3, "test": 2}, gray=True)
    d = load_dataset(f"folder:{tmp_path / 'set'}", val_fraction=0.3)
    assert d.name == f"folder:{(tmp_path / 'set').resolve()}"
    assert d.classes == ("a", "b") and d.image_shape == (1, 12, 10)
    assert (len(d.train), len(d.val), len(d.test)) == (4, 2, 4)
    # written order: class b then a; loaded order: sorted classes, sorted files
    expected_test = np.stack(ref["test"][2:] + ref["test"][:2])
    assert np.array_equal(d.test.images[:, 0].numpy(), expected_test)
    assert d.test.labels.tolist() == [0, 0, 1, 1]


def test_folder_rgb_formats(tmp_path) -> None:
    root = tmp_path / "rgb"
    rng = _rng(5)
    written = {}
    for split, cls, name in [("train", "cat", "0.png"), ("train", "cat", "1.bmp"), ("train", "dog", "0.webp"),
                             ("train", "dog", "1.PNG"), ("test", "cat", "0.png"), ("test", "dog", "0.bmp")]:
        arr = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
        _save(root / split / cls / name, arr)
        written[(split, cls, name)] = arr
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    d = load_dataset(f"folder:{root}", val_fraction=0.5)
    assert d.image_shape == (3, 6, 7) and d.classes == ("cat", "dog")
    assert np.array_equal(d.test.images[0].permute(1, 2, 0).numpy(), written[("test", "cat", "0.png")])
    assert np.array_equal(d.test.images[1].permute(1, 2, 0).numpy(), written[("test", "dog", "0.bmp")])
    everything = torch.cat([d.train.images, d.val.images]).permute(0, 2, 3, 1).numpy()
    for key in [k for k in written if k[0] == "train"]:
        assert any(np.array_equal(img, written[key]) for img in everything), key


def test_folder_reads_every_format_torchvisions_image_folder_reads(tmp_path) -> None:
    from torchvision.datasets import ImageFolder
    from torchvision.datasets.folder import IMG_EXTENSIONS

    root = tmp_path / "formats"
    rng = _rng(6)
    written = {}
    for i, ext in enumerate(IMG_EXTENSIONS):
        for split in ("train", "test"):
            arr = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
            path = root / split / ("a" if i % 2 else "b") / f"{i}{ext.upper() if i % 3 == 0 else ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(path, **({"lossless": True} if ext == ".webp" else {"quality": 100}
                                               if ext in (".jpg", ".jpeg") else {}))
            written[(split, path.name)] = np.array(Image.open(path).convert("RGB"))  # what the file holds
    d = load_dataset(f"folder:{root}", val_fraction=0.5)
    theirs = ImageFolder(str(root / "test"))
    assert len(d.test) == len(theirs) == len(IMG_EXTENSIONS), "every extension ImageFolder accepts, any case"
    for ours, (path, _) in zip(d.test.images, theirs.samples, strict=True):
        expected = written[("test", Path(path).name)].astype(int)
        lossy = Path(path).suffix.lower() in (".jpg", ".jpeg")  # two JPEG decoders may differ by a grey level
        assert np.abs(ours.permute(1, 2, 0).numpy().astype(int) - expected).max() <= (2 if lossy else 0), path
    assert d.test.labels.tolist() == [label for _, label in theirs.samples]


def test_folder_mixed_gray_and_rgb_becomes_rgb(tmp_path) -> None:
    root = tmp_path / "mix"
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    rgb = np.full((4, 5, 3), 7, dtype=np.uint8)
    for split in ("train", "test"):
        _save(root / split / "x" / "0.png", gray)
        _save(root / split / "x" / "1.png", rgb)
        _save(root / split / "y" / "0.png", gray)
        _save(root / split / "y" / "1.png", gray)
    d = load_dataset(f"folder:{root}", val_fraction=0.5)
    assert d.image_shape == (3, 4, 5)
    assert torch.equal(d.test.images[0], torch.from_numpy(gray).expand(3, 4, 5))
    assert torch.equal(d.test.images[1], torch.full((3, 4, 5), 7, dtype=torch.uint8))


def test_folder_mixed_shapes(tmp_path) -> None:
    root = tmp_path / "shapes"
    _write_folder(root, ["a", "b"], {"train": 2, "test": 1}, shape=(8, 8))
    _save(root / "test" / "b" / "999.png", np.zeros((9, 8, 3), dtype=np.uint8))
    with pytest.raises(DatasetError) as info:
        load_dataset(f"folder:{root}")
    msg = str(info.value)
    assert str(root / "test" / "b" / "999.png") in msg and "(3, 9, 8)" in msg and "8, 8" in msg


def test_folder_missing_and_malformed(tmp_path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=str(missing / "train")):
        load_dataset(f"folder:{missing}")
    root = tmp_path / "bad"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        load_dataset(f"folder:{root}")
    _write_folder(root, ["a", "b"], {"train": 2})
    _write_folder(root, ["a", "c"], {"test": 1})
    with pytest.raises(DatasetError, match=r"only in train: \['b'\]; only in test: \['c'\]"):
        load_dataset(f"folder:{root}")
    root2 = tmp_path / "empty_class"
    _write_folder(root2, ["a"], {"train": 2, "test": 1})
    (root2 / "train" / "b").mkdir()
    (root2 / "test" / "b").mkdir()
    with pytest.raises(DatasetError, match="no images in .*b"):
        load_dataset(f"folder:{root2}")
    root3 = tmp_path / "corrupt"
    _write_folder(root3, ["a", "b"], {"train": 2, "test": 1})
    (root3 / "train" / "a" / "001.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot decode .*001.png"):
        load_dataset(f"folder:{root3}")


def test_pil_fallback_gives_the_same_pixels(tmp_path, monkeypatch) -> None:
    root = tmp_path / "jpg"
    _write_folder(root, ["a", "b"], {"train": 2, "test": 1}, shape=(16, 16), ext=".jpg")
    fast = load_dataset(f"folder:{root}", val_fraction=0.5)
    for f in root.glob(".benchmarks-cache-*"):
        f.unlink()
    monkeypatch.setattr(folder_reader, "_torchvision_decoder", lambda: None)
    slow = load_dataset(f"folder:{root}", val_fraction=0.5)
    assert torch.equal(fast.train.images, slow.train.images)
    assert torch.equal(fast.test.images, slow.test.images)
    pil = np.asarray(Image.open(root / "test" / "a" / "000.jpg").convert("RGB"))
    assert np.array_equal(fast.test.images[0].permute(1, 2, 0).numpy(), pil)


def test_folder_cache_is_reused_and_invalidated(tmp_path, monkeypatch) -> None:
    root = tmp_path / "cached"
    _write_folder(root, ["a", "b"], {"train": 2, "test": 1})
    first = load_dataset(f"folder:{root}", val_fraction=0.5)
    caches = list(root.glob(".benchmarks-cache-*.pt"))
    assert len(caches) == 1 and not list(root.glob("*.tmp"))

    def fail(*args, **kwargs):
        raise AssertionError("decoded although cached")

    with monkeypatch.context() as m:
        m.setattr(folder_reader, "_decode_image", fail)
        m.setattr(Image, "open", fail)
        second = load_dataset(f"folder:{root}", val_fraction=0.5)
    assert torch.equal(first.train.images, second.train.images)
    assert first.fingerprint() == second.fingerprint()

    _save(root / "train" / "a" / "100.png", np.zeros((12, 10, 3), dtype=np.uint8))
    third = load_dataset(f"folder:{root}", val_fraction=0.5)
    assert len(third.train) + len(third.val) == 5
    assert third.fingerprint() != first.fingerprint()
    new_caches = list(root.glob(".benchmarks-cache-*.pt"))
    assert len(new_caches) == 1 and new_caches != caches


def test_folder_read_only_skips_cache(tmp_path, monkeypatch) -> None:
    root = tmp_path / "ro"
    _write_folder(root, ["a", "b"], {"train": 2, "test": 1})

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(os, "replace", refuse)
    d = load_dataset(f"folder:{root}", val_fraction=0.5)
    assert len(d.test) == 2
    assert not [p for p in root.iterdir() if p.name.startswith(".benchmarks-cache-")]


def test_cifar10_jpeg_fallback(tmp_path) -> None:
    jpeg = tmp_path / "cifar10-jpeg"
    classes = list(reversed(CIFAR10_CLASSES))  # written order must not matter
    _write_folder(jpeg, classes, {"train": 2, "test": 1}, shape=(32, 32), ext=".jpg")
    d = load_dataset("cifar10", root=tmp_path, val_fraction=0.5)
    assert d.name == "cifar10" and d.classes == CIFAR10_CLASSES and d.image_shape == (3, 32, 32)
    assert (len(d.train), len(d.val), len(d.test)) == (10, 10, 10)
    assert d.test.labels.tolist() == list(range(10))
    pil = np.asarray(Image.open(jpeg / "test" / "truck" / "000.jpg").convert("RGB"))
    assert np.array_equal(d.test.images[9].permute(1, 2, 0).numpy(), pil)
    assert list(jpeg.glob(".benchmarks-cache-*.pt"))


def test_cifar10_jpeg_unknown_class_names_are_sorted(tmp_path) -> None:
    _write_folder(tmp_path / "cifar10-jpeg", ["zeta", "alpha"], {"train": 2, "test": 1},
                  shape=(32, 32), ext=".jpg")
    d = load_dataset("cifar10", root=tmp_path, val_fraction=0.5)
    assert d.classes == ("alpha", "zeta")


def test_miniimagenet(tmp_path) -> None:
    folder = tmp_path / "miniimagenet"
    _write_folder(folder, ["n01532829", "n01558993", "n01704323"], {"train": 2, "test": 1},
                  shape=(84, 84), ext=".jpg")
    _save(folder / "train" / "n01532829" / "extra.png", np.zeros((84, 84, 3), dtype=np.uint8))
    d = load_dataset("miniimagenet", root=tmp_path, val_fraction=0.4)
    assert d.name == "miniimagenet" and d.image_shape == (3, 84, 84)
    assert d.classes == ("n01532829", "n01558993", "n01704323")
    assert (len(d.train), len(d.val), len(d.test)) == (4, 3, 3)


def test_miniimagenet_errors(tmp_path) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset("miniimagenet", root=tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "miniimagenet" / "train") in msg and "84x84" in msg and "--data-root" in msg
    _write_folder(tmp_path / "miniimagenet", ["a", "b"], {"train": 2, "test": 1}, shape=(32, 32))
    with pytest.raises(DatasetError, match="expects 84x84"):
        load_dataset("miniimagenet", root=tmp_path)
