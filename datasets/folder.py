"""``folder:PATH``: any class-per-folder set, and the reader (with its pixel cache) other loaders share.

``read_image_folder`` reads ``folder/{train,test}/<class>/*`` (the files
torchvision's ``ImageFolder`` reads) into uint8 tensors and caches the decoded
pixels in ``<folder>/.benchmarks-cache-<hash>.pt`` (the hash covers the
relative file list, sizes and mtimes). The cache is written atomically
(``core.files.atomic_write``) and skipped silently when the folder is read-only.
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

from core.data import DEFAULT_VAL_FRACTION, DatasetError, ImageData, RawDataset
from core.files import atomic_write
from datasets.base import one_line, register_dataset

log = logging.getLogger(__name__)

# What torchvision's ImageFolder reads (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp, any case), so a
# folder that ImageFolder accepts is accepted here.
IMAGE_EXTENSIONS: tuple[str, ...] = tuple(IMG_EXTENSIONS)
_CACHE_VERSION = 1
_CACHE_PREFIX = ".benchmarks-cache-"


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
            raise DatasetError(f"{dataset}: cannot decode {path} ({one_line(err)})") from err

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
        log.warning("ignoring unreadable cache %s (%s)", path, one_line(err))
        return None


def _write_cache(folder: Path, path: Path, blob: dict[str, Any]) -> None:
    """Atomically write ``blob`` to ``path``; silently skip if the folder is not writable."""
    try:
        atomic_write(path, lambda fh: torch.save(blob, fh))
        for old in folder.glob(f"{_CACHE_PREFIX}*.pt"):  # stale caches of an older file list
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as err:
        log.debug("not caching decoded images in %s (%s)", folder, one_line(err))


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
            raise DatasetError(f"{dataset}: cannot list {folder / split} ({one_line(err)})") from err
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


@register_dataset("folder", takes_path=True)
def _folder(root: Path, download: bool, path: str) -> RawDataset:
    folder = Path(path).expanduser().resolve()
    return read_image_folder(folder, dataset=f"folder:{folder}", name=f"folder:{folder}",
                             hint="lay the images out as PATH/train/<class>/* and PATH/test/<class>/*")
