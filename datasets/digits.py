"""``digits``: scikit-learn's bundled 8x8 digits (embedded: no files, no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.data import ImageData, RawDataset, stratified_split
from datasets.base import register_dataset


@register_dataset("digits")
def _digits(root: Path, download: bool) -> RawDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.rint(bunch.data * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 1, 8, 8))
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    keep, test = stratified_split(labels, 0.25)
    return RawDataset(train=ImageData(images[keep], labels[keep]), test=ImageData(images[test], labels[test]),
                      classes=tuple(str(c) for c in bunch.target_names), name="digits", val_fraction=0.2)
