"""``cifar10`` / ``cifar100``: torchvision's official pickles; cifar10 also reads an offline JPEG copy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from core.data import DatasetError, ImageData, RawDataset
from datasets.base import READ_ERRORS, download_advice, files_message, register_dataset
from datasets.folder import read_image_folder

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


def _reorder_classes(raw: RawDataset, order: Sequence[str]) -> RawDataset:
    """The same data with classes renumbered to follow ``order`` (a permutation of ``raw.classes``)."""
    remap = torch.tensor([list(order).index(c) for c in raw.classes], dtype=torch.int64)
    return RawDataset(train=ImageData(raw.train.images, remap[raw.train.labels]),
                      test=ImageData(raw.test.images, remap[raw.test.labels]),
                      classes=tuple(order), name=raw.name, val_fraction=raw.val_fraction)


def _cifar_files(cls: type) -> list[str]:
    return [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]


def _torchvision_cifar(cls: type, name: str, root: Path, download: bool, holds: str) -> RawDataset:
    import pickle

    try:
        splits = [cls(str(root), train=train, download=download) for train in (True, False)]
    except (*READ_ERRORS, pickle.UnpicklingError) as err:
        what = files_message(root / cls.base_folder, _cifar_files(cls), download, err)
        raise DatasetError(f"{name}: {what}; {download_advice(download, holds)}") from err
    train, test = (ImageData(torch.from_numpy(np.ascontiguousarray(s.data.transpose(0, 3, 1, 2))),
                             torch.as_tensor(s.targets, dtype=torch.int64)) for s in splits)
    return RawDataset(train=train, test=test, classes=tuple(splits[0].classes), name=name)


@register_dataset("cifar10", semisup_labels=(100, 500, 1000, 2000, 4000))  # DRL Table 1, LaplaceNet
def _cifar10(root: Path, download: bool) -> RawDataset:
    from torchvision.datasets import CIFAR10

    base = root / CIFAR10.base_folder
    files = _cifar_files(CIFAR10)
    jpeg = root / "cifar10-jpeg"
    holds = "cifar-10-batches-py or cifar10-jpeg"
    absent = not any((base / f).is_file() for f in files)
    if absent and (jpeg / "train").is_dir() and (jpeg / "test").is_dir():
        raw = read_image_folder(jpeg, dataset="cifar10", expected_hw=(32, 32),
                                hint=download_advice(False, holds).replace("fetch them", "fetch the official pickles"))
        return _reorder_classes(raw, CIFAR10_CLASSES) if set(raw.classes) == set(CIFAR10_CLASSES) else raw
    if absent and not download:
        raise DatasetError(f"cifar10: no files under {base} (looked for {', '.join(files)}) nor "
                           f"{jpeg}/{{train,test}}/<class>/*.jpg; {download_advice(False, holds)}")
    return _torchvision_cifar(CIFAR10, "cifar10", root, download, holds)


@register_dataset("cifar100", semisup_labels=(1000, 4000, 10000, 20000))  # LaplaceNet
def _cifar100(root: Path, download: bool) -> RawDataset:
    from torchvision.datasets import CIFAR100

    return _torchvision_cifar(CIFAR100, "cifar100", root, download, "cifar-100-python")
