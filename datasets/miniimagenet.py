"""``miniimagenet``: the 100-class, 84x84 layout LaplaceNet uses (read as a class-per-folder set)."""

from __future__ import annotations

from pathlib import Path

from core.data import DatasetError, RawDataset
from datasets.base import register_dataset
from datasets.folder import read_image_folder


@register_dataset("miniimagenet", semisup_labels=(4000, 10000))  # LaplaceNet
def _miniimagenet(root: Path, download: bool) -> RawDataset:
    folder = root / "miniimagenet"
    hint = ("Mini-ImageNet cannot be downloaded automatically: lay it out as LaplaceNet does, "
            f"{folder}/{{train,test}}/<class>/*.jpg with 84x84 RGB images (100 classes), "
            "or pass --data-root DIR pointing at a folder that holds miniimagenet/")
    raw = read_image_folder(folder, dataset="miniimagenet", hint=hint, expected_hw=(84, 84))
    if raw.train.images.shape[1] != 3:
        raise DatasetError(f"miniimagenet: images under {folder} are grayscale, expected 84x84 RGB; {hint}")
    return raw
