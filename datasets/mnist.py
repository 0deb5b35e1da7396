"""``mnist``: ``torchvision.datasets.MNIST`` under ``ROOT/MNIST/raw/``."""

from __future__ import annotations

import os
from pathlib import Path

from core.data import DatasetError, ImageData, RawDataset
from datasets.base import READ_ERRORS, download_advice, files_message, register_dataset


@register_dataset("mnist")
def _mnist(root: Path, download: bool) -> RawDataset:
    from torchvision.datasets import MNIST

    raw_dir = root / "MNIST" / "raw"
    try:
        splits = [MNIST(str(root), train=train, download=download) for train in (True, False)]
    except READ_ERRORS as err:
        names = [os.path.splitext(fname)[0] for fname, _ in MNIST.resources]
        raise DatasetError(f"mnist: {files_message(raw_dir, names, download, err)}; "
                           f"{download_advice(download, 'MNIST/raw')}") from err
    train, test = (ImageData(s.data.unsqueeze(1), s.targets) for s in splits)
    return RawDataset(train=train, test=test, classes=tuple(MNIST.classes), name="mnist")
