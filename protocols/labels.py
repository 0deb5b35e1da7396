"""Labelled subsets for the few-label protocols: stratified, seeded, the same for every method."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from core.files import safe_name

STANDARD_LADDER = (1000, 5000, 10000)  # the DRL paper's label counts, for a 50k-image train set
REFERENCE_TRAIN_SIZE = 50_000


def label_ladder(n_train: int, n_classes: int, counts: tuple[int, ...] = ()) -> tuple[int, ...]:
    """``counts`` if given; else the standard ladder, scaled down in proportion for smaller sets."""
    if counts:
        return counts
    if n_train >= max(STANDARD_LADDER):
        return STANDARD_LADDER
    return tuple(max(n_classes, round(k * n_train / REFERENCE_TRAIN_SIZE)) for k in STANDARD_LADDER)


def stratified_subset(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """``n`` indices with the class proportions of ``labels``; depends only on (labels, n, seed)."""
    total, n_classes = len(labels), int(labels.max()) + 1
    largest = total - n_classes  # the images left out must hold every class too (a stratified split)
    if not (n == total or n_classes <= n <= largest):
        raise ValueError(f"cannot draw {n} labelled images from a split of {total} "
                         f"with {n_classes} classes; valid: {n_classes} to {largest}, or all {total}")
    if n == total:
        return torch.arange(total)
    index, _ = train_test_split(np.arange(total), train_size=n, stratify=labels.numpy(), random_state=seed)
    return torch.from_numpy(np.sort(index))


def check_label_counts(labels: torch.Tensor, counts: tuple[int, ...], setting: str) -> None:
    """Raise a one-line ValueError naming ``setting`` if a count cannot be drawn from ``labels``."""
    for n in counts:  # feasibility does not depend on the seed
        try:
            stratified_subset(labels, n, seed=0)
        except ValueError as err:
            raise ValueError(f"{setting}={n}: {err}") from None


def save_subset(index: torch.Tensor, folder: Path | None, name: str) -> dict[str, str]:
    """Write the indices (JSON, under a file-safe form of ``name``) so every method's numbers can be
    traced to the same labels."""
    values = index.tolist()
    digest = hashlib.sha256(json.dumps(values).encode()).hexdigest()[:16]
    info = {"split_sha256": digest}
    if folder is not None:
        path = Path(folder) / "splits" / f"{safe_name(name)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(json.dumps({"indices": values, "sha256": digest}))
        info["split_file"] = f"{path.parent.parent.name}/splits/{path.name}"  # relative to the results folder
    return info
