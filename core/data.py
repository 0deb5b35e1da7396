"""Image and split containers: what every dataset loads into and every method and protocol reads.

:class:`ImageData` holds ``uint8`` images ``(N, C, H, W)`` with ``int64`` labels;
:class:`DataSplits` a dataset's fixed train / val / test splits, class names and
per-channel train statistics (scaled to [0, 1]); :class:`RawDataset` what a
dataset loader returns (official train / test, before validation is carved);
``stratified_split`` the fixed, seed-independent split that carves it.
The loaders themselves live in the ``datasets`` package.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

__all__ = [
    "DEFAULT_VAL_FRACTION",
    "SPLIT_NAMES",
    "DataSplits",
    "DatasetError",
    "ImageData",
    "RawDataset",
    "stratified_split",
]

DEFAULT_VAL_FRACTION = 0.1
SPLIT_NAMES = ("train", "val", "test")
_FINGERPRINT_SAMPLES = 1 << 16


class DatasetError(ValueError):
    """A dataset is unknown, missing, partial or malformed (one-line message)."""


def _as_index(index: Any, n: int) -> torch.Tensor:
    """A 1-D int64 CPU index tensor from a tensor / array / list of ints, a bool mask or a slice."""
    if isinstance(index, slice):
        return torch.arange(n)[index]
    idx = index.detach().cpu() if isinstance(index, torch.Tensor) else torch.as_tensor(np.asarray(index))
    if idx.numel() == 0:
        return torch.empty(0, dtype=torch.int64)
    if idx.dtype == torch.bool:
        if idx.shape != (n,):
            raise ValueError(f"boolean mask has shape {tuple(idx.shape)}, expected ({n},)")
        return idx.nonzero().flatten()
    if idx.dtype.is_floating_point or idx.dtype.is_complex:
        raise TypeError(f"index must hold integers, got dtype {idx.dtype}")
    return idx.to(torch.int64).reshape(-1)


@dataclass(frozen=True, eq=False)
class ImageData:
    """Images ``uint8 (N, C, H, W)`` (contiguous, CPU) with ``int64 (N,)`` labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            desc = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
            raise TypeError(f"images must be a uint8 tensor (N, C, H, W), got {desc}")
        labels = torch.as_tensor(labels)
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels have shape {tuple(labels.shape)}, expected ({images.shape[0]},) to match images")
        object.__setattr__(self, "images", images.contiguous())
        object.__setattr__(self, "labels", labels.to(torch.int64).contiguous())

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        return f"ImageData(n={len(self)}, shape={tuple(self.images.shape[1:])})"

    def subset(self, index: Any) -> ImageData:
        """The images at ``index`` (tensor / array / list of ints, a bool mask, or a slice)."""
        idx = _as_index(index, len(self))
        return ImageData(self.images[idx], self.labels[idx])


@lru_cache(maxsize=32)
def _stats_tensors(mean: tuple[float, ...], std: tuple[float, ...],
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1)
    return m, s


@dataclass(frozen=True, eq=False)
class DataSplits:
    """A dataset's fixed splits, class names and train statistics."""

    name: str
    train: ImageData
    val: ImageData
    test: ImageData
    num_classes: int
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # the label counts of the papers' semi-supervised tables for this dataset (its registration's)
    semisup_labels: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.classes) != self.num_classes:
            raise ValueError(f"{self.name}: {len(self.classes)} class names for num_classes={self.num_classes}")
        shape = self.image_shape
        for split in ("val", "test"):
            other = tuple(self.split(split).images.shape[1:])
            if other != shape:
                raise ValueError(f"{self.name}: {split} images are {other}, train images are {shape}")
        if len(self.mean) != shape[0] or len(self.std) != shape[0]:
            raise ValueError(f"{self.name}: mean/std need {shape[0]} channels, "
                             f"got {len(self.mean)}/{len(self.std)}")

    def __repr__(self) -> str:
        return (f"DataSplits(name={self.name!r}, train={len(self.train)}, val={len(self.val)}, "
                f"test={len(self.test)}, image_shape={self.image_shape}, num_classes={self.num_classes})")

    def split(self, name: str) -> ImageData:
        """The ``"train"``, ``"val"`` or ``"test"`` split."""
        if name not in SPLIT_NAMES:
            raise ValueError(f"unknown split {name!r}; valid: {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.images.shape[1:]
        return int(c), int(h), int(w)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8`` images (any device) -> ``float32 (x / 255 - mean) / std`` on the same device."""
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
            raise TypeError(f"normalise expects uint8 images, got {got}")
        c = len(self.mean)
        if images.dim() < 3 or images.shape[-3] != c:
            raise ValueError(f"normalise expects (..., {c}, H, W) images, got {tuple(images.shape)}")
        mean, std = _stats_tensors(self.mean, self.std, images.device)
        return images.to(torch.float32).div_(255.0).sub_(mean).div_(std)

    def fingerprint(self) -> str:
        """Short stable hex hash of the name, split sizes and shapes, labels and sampled image bytes."""
        h = hashlib.sha256()
        h.update(f"{self.name}|{self.num_classes}|{','.join(self.classes)}".encode())
        for split in SPLIT_NAMES:
            data = self.split(split)
            h.update(f"|{split}:{tuple(data.images.shape)}|".encode())
            h.update(data.labels.cpu().numpy().astype("<i8").tobytes())
            flat = data.images.reshape(-1)
            step = max(1, flat.numel() // _FINGERPRINT_SAMPLES) | 1
            h.update(flat[::step].cpu().numpy().tobytes())
        return h.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class RawDataset:
    """What a registered loader returns: official train / test splits before val is carved."""

    train: ImageData
    test: ImageData
    classes: tuple[str, ...]
    name: str
    val_fraction: float = DEFAULT_VAL_FRACTION


def stratified_split(labels: torch.Tensor | np.ndarray, fraction: float,
                     random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sorted index arrays ``(keep, held_out)``, ``held_out`` a stratified ``fraction``."""
    from sklearn.model_selection import train_test_split

    y = np.asarray(labels)
    keep, held = train_test_split(np.arange(len(y)), test_size=fraction, stratify=y,
                                  random_state=random_state)
    return np.sort(keep), np.sort(held)
