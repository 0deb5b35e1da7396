"""The dataset registry and ``load_dataset``: a registered loader's official splits -> fixed train / val / test.

A loader is a function ``(root: Path, download: bool[, path: str]) -> RawDataset``
registered with ``@register_dataset("name")`` in any module of this package; the
registry imports every module of the package the first time a name is looked up.
``load_dataset`` carves the validation split from the loader's train split
(stratified, ``random_state=0``) and computes the train statistics.
The helpers at the end are shared by the loaders (one-line error messages).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from core.data import DatasetError, DataSplits, RawDataset, stratified_split
from core.registry import Registry

__all__ = [
    "DATASETS",
    "READ_ERRORS",
    "available_datasets",
    "channel_stats",
    "download_advice",
    "files_message",
    "load_dataset",
    "one_line",
    "register_dataset",
]

# Every module of ``datasets`` is imported on the first look-up; their ``@register_dataset`` fill it.
DATASETS: Registry[Callable[..., RawDataset]] = Registry("dataset", package="datasets")


def register_dataset(name: str, *, takes_path: bool = False,
                     semisup_labels: tuple[int, ...] = ()) -> Callable[[Callable], Callable]:
    """Register a loader ``(root: Path, download: bool[, path: str]) -> RawDataset`` under ``name``.

    With ``takes_path=True`` the dataset is addressed as ``name:PATH`` and the loader
    receives ``path``. ``semisup_labels``: the label counts the papers' semi-supervised
    tables report for this dataset (the ``semisup`` protocol's default ladder).
    """
    def deco(fn: Callable[..., RawDataset]) -> Callable[..., RawDataset]:
        fn.takes_path = takes_path  # type: ignore[attr-defined]
        fn.semisup_labels = tuple(semisup_labels)  # type: ignore[attr-defined]
        return DATASETS.add(name, fn)
    return deco


def available_datasets() -> list[str]:
    """Registered dataset names; parametric ones are shown as ``name:PATH``."""
    return sorted(f"{k}:PATH" if getattr(fn, "takes_path", False) else k for k, fn in DATASETS.items())


def dataset_module(name: str) -> str:
    """The module that defines dataset ``name`` (``folder:PATH`` and ``folder`` alike)."""
    return DATASETS.module_of(name.partition(":")[0])


def _check_fraction(val_fraction: float) -> float:
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) \
            or not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    return float(val_fraction)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
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
    key_name = key.strip().lower()
    fn = DATASETS.get(key_name) if key_name in DATASETS else None
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
    mean, std = channel_stats(train.images)
    return DataSplits(name=raw.name, train=train, val=val, test=raw.test, num_classes=len(raw.classes),
                      classes=tuple(raw.classes), mean=mean, std=std, semisup_labels=fn.semisup_labels)


# --------------------------------------------------------------------------- helpers for loaders


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


READ_ERRORS = (RuntimeError, OSError, EOFError, AssertionError, KeyError, TypeError, ValueError)


def files_message(folder: Path, files: Sequence[str], download: bool,
                   err: BaseException) -> str:
    """What went wrong with the official ``files`` under ``folder`` (no advice)."""
    missing = [f for f in files if not (folder / f).is_file()]
    if download and missing:
        return f"could not download into {folder} ({one_line(err)}); put {', '.join(files)} there by hand"
    if len(missing) == len(files):
        what = f"no files under {folder} (looked for {', '.join(files)})"
    elif missing:
        what = f"incomplete files under {folder} (missing {', '.join(missing)})"
    elif isinstance(err, RuntimeError) and "corrupted" in str(err):
        return f"files under {folder} fail torchvision's md5 check (corrupted or not the official ones)"
    else:
        return f"cannot read the files under {folder} ({one_line(err)}); replace them"
    if any((folder / f"{f}.gz").is_file() for f in missing):
        what += " but their .gz archives are there (gunzip them in place)"
    return what


def download_advice(download: bool, holds: str) -> str:
    where = f"--data-root DIR pointing at a folder that holds {holds}"
    return f"pass {where}" if download else f"pass --download to fetch them with torchvision, or {where}"
