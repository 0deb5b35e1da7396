"""Datasets as in-memory uint8 tensors with fixed train / val / test splits.

Every dataset loads into a :class:`DataSplits`: ``uint8`` images ``(N, C, H, W)``,
``int64`` labels, the official test split, and a validation split carved from the
official train split once and for all (stratified, ``random_state=0``, independent
of any run seed, so every method and seed shares it). ``mean`` / ``std`` are the
per-channel statistics of the remaining train images, scaled to [0, 1].

Registered datasets (``available_datasets()``), loaded with
``load_dataset(name, root="data", download=False, val_fraction=None)``:

``digits`` (default, embedded)
    scikit-learn's bundled 8x8 digits, values 0..16 scaled to 0..255. No official
    test split: a fixed stratified 25 % is held out (``random_state=0``).
    Validation fraction 0.2.
``mnist``
    ``torchvision.datasets.MNIST``: ``ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``.
``cifar10`` / ``cifar100``
    ``torchvision.datasets.CIFAR10`` / ``CIFAR100``: ``ROOT/cifar-10-batches-py/`` and
    ``ROOT/cifar-100-python/`` (the official pickles, md5-checked by torchvision).
    For cifar10 only, when none of the pickles is there but
    ``ROOT/cifar10-jpeg/{train,test}/<class>/*.jpg`` is (the offline JPEG copy), that
    folder layout is read instead, with the standard CIFAR-10 class order.
``miniimagenet``
    The 100-class Mini-ImageNet layout LaplaceNet uses, 84x84 RGB images:
    ``ROOT/miniimagenet/train/<class>/*.jpg`` and ``ROOT/miniimagenet/test/<class>/*.jpg``
    (any of png/jpg/jpeg/bmp/webp). It cannot be downloaded automatically.
``folder:PATH``
    Any class-per-folder set: ``PATH/train/<class>/*`` and ``PATH/test/<class>/*``
    (png/jpg/jpeg/bmp/webp, not recursive; a relative PATH is taken from the working
    directory, and the canonical name is ``folder:/absolute/path``). Classes are the sorted folder names of
    ``train``; ``test`` must have the same class set. All images must share one
    height and width; if every image is grayscale (PIL mode ``L``) the set has one
    channel, otherwise every image is converted to RGB.

Folder-based sets cache their decoded tensors in ``<folder>/.benchmarks-cache-<hash>.pt``
(the hash covers the relative file list, sizes and mtimes); the cache is written
atomically and skipped silently when the folder is read-only.

New datasets register with ``@register_dataset("name")`` on a function
``(root: Path, download: bool) -> RawDataset``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.datasets.folder import IMG_EXTENSIONS

from core.data import (
    DEFAULT_VAL_FRACTION,
    DatasetError,
    DataSplits,
    ImageData,
    RawDataset,
    stratified_split,
)
from core.files import atomic_write

__all__ = [
    "DATASETS",
    "CIFAR10_CLASSES",
    "IMAGE_EXTENSIONS",
    "DataSplits",
    "DatasetError",
    "ImageData",
    "RawDataset",
    "available_datasets",
    "load_dataset",
    "read_image_folder",
    "register_dataset",
    "stratified_split",
]

log = logging.getLogger(__name__)

# What torchvision's ImageFolder reads (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp, any case), so a
# folder that ImageFolder accepts is accepted here.
IMAGE_EXTENSIONS: tuple[str, ...] = tuple(IMG_EXTENSIONS)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
_CACHE_VERSION = 1
_CACHE_PREFIX = ".benchmarks-cache-"


# --------------------------------------------------------------------------- registry

DATASETS: dict[str, Callable[..., RawDataset]] = {}


def register_dataset(name: str, *, takes_path: bool = False) -> Callable[[Callable], Callable]:
    """Register a loader ``(root: Path, download: bool[, path: str]) -> RawDataset`` under ``name``.

    With ``takes_path=True`` the dataset is addressed as ``name:PATH`` and the loader
    receives ``path``.
    """
    def deco(fn: Callable[..., RawDataset]) -> Callable[..., RawDataset]:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        fn.takes_path = takes_path  # type: ignore[attr-defined]
        DATASETS[name] = fn
        return fn
    return deco


def available_datasets() -> list[str]:
    """Registered dataset names; parametric ones are shown as ``name:PATH``."""
    return sorted(f"{k}:PATH" if getattr(fn, "takes_path", False) else k for k, fn in DATASETS.items())


def _check_fraction(val_fraction: float) -> float:
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) \
            or not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    return float(val_fraction)


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean / std (population) of uint8 images scaled to [0, 1], via histograms."""
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for ch in range(images.shape[1]):
        counts = torch.bincount(images[:, ch].reshape(-1), minlength=256).to(torch.float64)
        total = counts.sum()
        mean = float((counts * values).sum() / total)
        var = float((counts * (values - mean) ** 2).sum() / total)
        std = round(var ** 0.5, 6)
        means.append(round(mean, 6))
        stds.append(std if std > 0 else 1.0)  # a constant channel: leave it unscaled
    return tuple(means), tuple(stds)


def _resolve(name: str) -> tuple[Callable[..., RawDataset], dict[str, str]]:
    if not isinstance(name, str):
        raise DatasetError(f"dataset name must be a string, got {type(name).__name__}")
    key, sep, arg = name.partition(":")
    fn = DATASETS.get(key.strip().lower())
    takes_path = getattr(fn, "takes_path", False)
    if fn is None or (sep and not takes_path):
        raise DatasetError(f"unknown dataset {name!r}; valid: {', '.join(available_datasets())}")
    if takes_path and not arg.strip():
        raise DatasetError(f"{key}: needs a folder, e.g. '{key}:/data/my-set' holding train/<class>/* "
                           f"and test/<class>/*")
    return fn, ({"path": arg.strip()} if takes_path else {})


def load_dataset(name: str, root: str | Path = "data", download: bool = False,
                 val_fraction: float | None = None) -> DataSplits:
    """Load ``name`` (see ``available_datasets()``) from ``root`` into fixed train / val / test splits.

    ``val_fraction`` (default 0.1, 0.2 for digits) of the official train split becomes
    the stratified validation split, always with ``random_state=0``.
    Raises :class:`DatasetError` for unknown names and missing, partial or malformed files.
    """
    fn, extra = _resolve(name)
    frac = None if val_fraction is None else _check_fraction(val_fraction)
    raw = fn(root=Path(root), download=bool(download), **extra)
    frac = raw.val_fraction if frac is None else frac
    try:
        keep, held = stratified_split(raw.train.labels, frac)
    except ValueError as err:
        raise DatasetError(f"{raw.name}: cannot carve a stratified validation split of {frac} from "
                           f"{len(raw.train)} train images in {len(raw.classes)} classes ({err})") from err
    train, val = raw.train.subset(keep), raw.train.subset(held)
    mean, std = _channel_stats(train.images)
    return DataSplits(name=raw.name, train=train, val=val, test=raw.test,
                      num_classes=len(raw.classes), classes=tuple(raw.classes), mean=mean, std=std)


# --------------------------------------------------------------------------- folder reader


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _list_classes(split_dir: Path) -> list[str]:
    with os.scandir(split_dir) as it:
        return sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))


def _list_images(class_dir: Path) -> list[tuple[str, int, int]]:
    """Sorted ``(file name, size, mtime_ns)`` of the images directly in ``class_dir``."""
    out = []
    with os.scandir(class_dir) as it:
        for e in it:
            if e.name.startswith(".") or os.path.splitext(e.name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            if e.is_file():
                st = e.stat()
                out.append((e.name, st.st_size, st.st_mtime_ns))
    return sorted(out)


@lru_cache(maxsize=1)
def _torchvision_decoder() -> Callable[[torch.Tensor], torch.Tensor] | None:
    """torchvision's libjpeg-turbo / libpng decoder (same pixels as PIL, ~5x faster), if it has one."""
    try:
        from torchvision.io import ImageReadMode, decode_image
    except ImportError:  # decoding was deprecated in torchvision 0.29; PIL does it when it is gone
        return None
    return lambda data: decode_image(data, mode=ImageReadMode.UNCHANGED)


def _decode_image(path: str) -> torch.Tensor:
    """One image file -> uint8 ``(C, H, W)``, C = 1 for grayscale (PIL mode L) else 3 (RGB)."""
    decoder = _torchvision_decoder()
    if decoder is not None and path[path.rfind("."):].lower() in (".png", ".jpg", ".jpeg"):
        try:
            img = decoder(torch.from_numpy(np.fromfile(path, dtype=np.uint8)))
        except RuntimeError:
            img = None  # let PIL have a go (and give its error)
        if img is not None and img.dtype == torch.uint8 and img.dim() == 3 and img.shape[0] in (1, 3):
            return img
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L") if im.mode in ("L", "1") else im.convert("RGB")
        arr = np.array(im)
    return torch.from_numpy(arr.reshape(arr.shape[0], arr.shape[1], -1)).permute(2, 0, 1)


def _decode_all(splits: Sequence[Sequence[str]], dataset: str,
                expected_hw: tuple[int, int] | None) -> list[torch.Tensor]:
    """Decode each list of files into one uint8 ``(N, C, H, W)`` tensor.

    Every image must share the first one's height and width. If every image of every
    list is grayscale, C = 1; otherwise grayscale images are replicated to RGB.
    """
    def decode(path: str) -> np.ndarray:
        try:
            return _decode_image(path).numpy()
        except (OSError, ValueError, RuntimeError) as err:
            raise DatasetError(f"{dataset}: cannot decode {path} ({_one_line(err)})") from err

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*decoding and encoding capabilities of TorchVision",
                                category=DeprecationWarning)
        ref = next(files[0] for files in splits if files)
        first = decode(ref)
        hw = first.shape[1:]
        if expected_hw is not None and hw != tuple(expected_hw):
            raise DatasetError(f"{dataset}: {ref} is {hw[0]}x{hw[1]} (H x W) but this dataset expects "
                               f"{expected_hw[0]}x{expected_hw[1]} images")
        buffers, grays = [], []
        for files in splits:
            out = np.empty((len(files), 3, *hw), dtype=np.uint8)
            gray = np.zeros(len(files), dtype=bool)
            for i, path in enumerate(files):
                img = first if path == ref else decode(path)
                if img.shape[1:] != hw:
                    raise DatasetError(
                        f"{dataset}: {path} has shape {img.shape} (C, H, W) but expected "
                        f"(C, {hw[0]}, {hw[1]}) like {ref}; all images must share one height and width")
                out[i, :img.shape[0]] = img
                gray[i] = img.shape[0] == 1
            buffers.append(out)
            grays.append(gray)
    if all(g.all() for g in grays):
        return [torch.from_numpy(np.ascontiguousarray(out[:, :1])) for out in buffers]
    for out, gray in zip(buffers, grays, strict=True):
        if gray.any():
            out[gray, 1:] = out[gray, :1]
    return [torch.from_numpy(out) for out in buffers]


def _cache_key(listing: dict[str, dict[str, list[tuple[str, int, int]]]]) -> str:
    h = hashlib.sha256(f"benchmarks-image-folder-v{_CACHE_VERSION}\n".encode())
    for split, classes in listing.items():
        for cls, files in classes.items():
            for fname, size, mtime in files:
                h.update(f"{split}/{cls}/{fname}\t{size}\t{mtime}\n".encode())
    return h.hexdigest()[:16]


def _read_cache(path: Path, key: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        needed = ("key", "classes", "train_images", "train_labels", "test_images", "test_labels")
        if not isinstance(blob, dict) or not all(k in blob for k in needed) or blob["key"] != key:
            return None
        return blob
    except Exception as err:  # unreadable cache: decode again
        log.warning("ignoring unreadable cache %s (%s)", path, _one_line(err))
        return None


def _write_cache(folder: Path, path: Path, blob: dict[str, Any]) -> None:
    """Atomically write ``blob`` to ``path``; silently skip if the folder is not writable."""
    try:
        atomic_write(path, lambda fh: torch.save(blob, fh))
        for old in folder.glob(f"{_CACHE_PREFIX}*.pt"):  # stale caches of an older file list
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as err:
        log.debug("not caching decoded images in %s (%s)", folder, _one_line(err))


def read_image_folder(folder: str | Path, *, dataset: str, name: str | None = None,
                      hint: str = "", expected_hw: tuple[int, int] | None = None,
                      val_fraction: float = DEFAULT_VAL_FRACTION) -> RawDataset:
    """Read ``folder/{train,test}/<class>/*`` (cached in ``folder/.benchmarks-cache-<hash>.pt``).

    ``dataset`` prefixes error messages, ``hint`` ends them (how to get the files).
    Classes are the sorted folder names of ``train``.
    """
    folder = Path(folder)
    tail = f"; {hint}" if hint else ""
    layout = f"{folder}/{{train,test}}/<class>/*.{{{','.join(e[1:] for e in IMAGE_EXTENSIONS)}}}"
    for split in ("train", "test"):
        if not (folder / split).is_dir():
            raise DatasetError(f"{dataset}: no folder {folder / split} (expected the layout {layout}){tail}")
    listing: dict[str, dict[str, list[tuple[str, int, int]]]] = {}
    for split in ("train", "test"):
        try:
            classes = _list_classes(folder / split)
            listing[split] = {c: _list_images(folder / split / c) for c in classes}
        except OSError as err:
            raise DatasetError(f"{dataset}: cannot list {folder / split} ({_one_line(err)})") from err
        if not classes:
            raise DatasetError(f"{dataset}: no class folders in {folder / split} (expected {layout}){tail}")
    train_cls, test_cls = list(listing["train"]), list(listing["test"])
    if train_cls != test_cls:
        only_train = sorted(set(train_cls) - set(test_cls))
        only_test = sorted(set(test_cls) - set(train_cls))
        raise DatasetError(f"{dataset}: train and test class folders differ under {folder} "
                           f"(only in train: {only_train or 'none'}; only in test: {only_test or 'none'})")
    empty = [c for c, files in listing["train"].items() if not files]
    if empty:
        raise DatasetError(f"{dataset}: no images in {folder / 'train' / empty[0]} "
                           f"(extensions {', '.join(IMAGE_EXTENSIONS)}){tail}")
    if not any(listing["test"].values()):
        raise DatasetError(f"{dataset}: no images under {folder / 'test'} "
                           f"(extensions {', '.join(IMAGE_EXTENSIONS)}){tail}")

    key = _cache_key(listing)
    cache = folder / f"{_CACHE_PREFIX}{key}.pt"
    blob = _read_cache(cache, key)
    if blob is None or list(blob["classes"]) != train_cls:
        paths: dict[str, list[str]] = {"train": [], "test": []}
        labels: dict[str, list[int]] = {"train": [], "test": []}
        for split in ("train", "test"):
            for label, (cls, files) in enumerate(listing[split].items()):
                base = os.path.join(folder, split, cls)
                paths[split] += [os.path.join(base, f) for f, _, _ in files]
                labels[split] += [label] * len(files)
        log.info("decoding %d images under %s", len(paths["train"]) + len(paths["test"]), folder)
        train_images, test_images = _decode_all([paths["train"], paths["test"]], dataset, expected_hw)
        blob = {"key": key, "classes": train_cls,
                "train_images": train_images, "train_labels": torch.tensor(labels["train"], dtype=torch.int64),
                "test_images": test_images, "test_labels": torch.tensor(labels["test"], dtype=torch.int64)}
        _write_cache(folder, cache, blob)
    return RawDataset(train=ImageData(blob["train_images"], blob["train_labels"]),
                      test=ImageData(blob["test_images"], blob["test_labels"]),
                      classes=tuple(blob["classes"]), name=name or dataset, val_fraction=val_fraction)


def _reorder_classes(raw: RawDataset, order: Sequence[str]) -> RawDataset:
    """The same data with classes renumbered to follow ``order`` (a permutation of ``raw.classes``)."""
    remap = torch.tensor([list(order).index(c) for c in raw.classes], dtype=torch.int64)
    return RawDataset(train=ImageData(raw.train.images, remap[raw.train.labels]),
                      test=ImageData(raw.test.images, remap[raw.test.labels]),
                      classes=tuple(order), name=raw.name, val_fraction=raw.val_fraction)


# --------------------------------------------------------------------------- loaders


@register_dataset("digits")
def _digits(root: Path, download: bool) -> RawDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.rint(bunch.data * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 1, 8, 8))
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    keep, test = stratified_split(labels, 0.25)
    return RawDataset(train=ImageData(images[keep], labels[keep]), test=ImageData(images[test], labels[test]),
                      classes=tuple(str(c) for c in bunch.target_names), name="digits", val_fraction=0.2)


_READ_ERRORS = (RuntimeError, OSError, EOFError, AssertionError, KeyError, TypeError, ValueError)


def _files_message(folder: Path, files: Sequence[str], download: bool,
                   err: BaseException) -> str:
    """What went wrong with the official ``files`` under ``folder`` (no advice)."""
    missing = [f for f in files if not (folder / f).is_file()]
    if download and missing:
        return f"could not download into {folder} ({_one_line(err)}); put {', '.join(files)} there by hand"
    if len(missing) == len(files):
        what = f"no files under {folder} (looked for {', '.join(files)})"
    elif missing:
        what = f"incomplete files under {folder} (missing {', '.join(missing)})"
    elif isinstance(err, RuntimeError) and "corrupted" in str(err):
        return f"files under {folder} fail torchvision's md5 check (corrupted or not the official ones)"
    else:
        return f"cannot read the files under {folder} ({_one_line(err)}); replace them"
    if any((folder / f"{f}.gz").is_file() for f in missing):
        what += " but their .gz archives are there (gunzip them in place)"
    return what


def _advice(download: bool, holds: str) -> str:
    where = f"--data-root DIR pointing at a folder that holds {holds}"
    return f"pass {where}" if download else f"pass --download to fetch them with torchvision, or {where}"


@register_dataset("mnist")
def _mnist(root: Path, download: bool) -> RawDataset:
    from torchvision.datasets import MNIST

    raw_dir = root / "MNIST" / "raw"
    try:
        splits = [MNIST(str(root), train=train, download=download) for train in (True, False)]
    except _READ_ERRORS as err:
        names = [os.path.splitext(fname)[0] for fname, _ in MNIST.resources]
        raise DatasetError(f"mnist: {_files_message(raw_dir, names, download, err)}; "
                           f"{_advice(download, 'MNIST/raw')}") from err
    train, test = (ImageData(s.data.unsqueeze(1), s.targets) for s in splits)
    return RawDataset(train=train, test=test, classes=tuple(MNIST.classes), name="mnist")


def _cifar_files(cls: type) -> list[str]:
    return [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]


def _torchvision_cifar(cls: type, name: str, root: Path, download: bool, holds: str) -> RawDataset:
    import pickle

    try:
        splits = [cls(str(root), train=train, download=download) for train in (True, False)]
    except (*_READ_ERRORS, pickle.UnpicklingError) as err:
        what = _files_message(root / cls.base_folder, _cifar_files(cls), download, err)
        raise DatasetError(f"{name}: {what}; {_advice(download, holds)}") from err
    train, test = (ImageData(torch.from_numpy(np.ascontiguousarray(s.data.transpose(0, 3, 1, 2))),
                             torch.as_tensor(s.targets, dtype=torch.int64)) for s in splits)
    return RawDataset(train=train, test=test, classes=tuple(splits[0].classes), name=name)


@register_dataset("cifar10")
def _cifar10(root: Path, download: bool) -> RawDataset:
    from torchvision.datasets import CIFAR10

    base = root / CIFAR10.base_folder
    files = _cifar_files(CIFAR10)
    jpeg = root / "cifar10-jpeg"
    holds = "cifar-10-batches-py or cifar10-jpeg"
    absent = not any((base / f).is_file() for f in files)
    if absent and (jpeg / "train").is_dir() and (jpeg / "test").is_dir():
        raw = read_image_folder(jpeg, dataset="cifar10", expected_hw=(32, 32),
                                hint=_advice(False, holds).replace("fetch them", "fetch the official pickles"))
        return _reorder_classes(raw, CIFAR10_CLASSES) if set(raw.classes) == set(CIFAR10_CLASSES) else raw
    if absent and not download:
        raise DatasetError(f"cifar10: no files under {base} (looked for {', '.join(files)}) nor "
                           f"{jpeg}/{{train,test}}/<class>/*.jpg; {_advice(False, holds)}")
    return _torchvision_cifar(CIFAR10, "cifar10", root, download, holds)


@register_dataset("cifar100")
def _cifar100(root: Path, download: bool) -> RawDataset:
    from torchvision.datasets import CIFAR100

    return _torchvision_cifar(CIFAR100, "cifar100", root, download, "cifar-100-python")


@register_dataset("miniimagenet")
def _miniimagenet(root: Path, download: bool) -> RawDataset:
    folder = root / "miniimagenet"
    hint = ("Mini-ImageNet cannot be downloaded automatically: lay it out as LaplaceNet does, "
            f"{folder}/{{train,test}}/<class>/*.jpg with 84x84 RGB images (100 classes), "
            "or pass --data-root DIR pointing at a folder that holds miniimagenet/")
    raw = read_image_folder(folder, dataset="miniimagenet", hint=hint, expected_hw=(84, 84))
    if raw.train.images.shape[1] != 3:
        raise DatasetError(f"miniimagenet: images under {folder} are grayscale, expected 84x84 RGB; {hint}")
    return raw


@register_dataset("folder", takes_path=True)
def _folder(root: Path, download: bool, path: str) -> RawDataset:
    folder = Path(path).expanduser().resolve()
    return read_image_folder(folder, dataset=f"folder:{folder}", name=f"folder:{folder}",
                             hint="lay the images out as PATH/train/<class>/* and PATH/test/<class>/*")
