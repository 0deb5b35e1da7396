"""Which training images are labelled, and which join the pool, in a semi-supervised run."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from protocols.labels import REFERENCE_TRAIN_SIZE

# A dataset without published label counts (its registration's semisup_labels) gets CIFAR-10's
# fractions of its 50000 training images, in whole images per class.
REFERENCE_LADDER = (100, 500, 1000, 2000, 4000)


def semisup_ladder(published: tuple[int, ...], n_train: int, n_classes: int,
                   counts: tuple[int, ...] = ()) -> tuple[int, ...]:
    """``counts`` if given; the papers' ladder for the dataset (``published``); else CIFAR-10's, in proportion."""
    if counts:
        return counts
    if published:
        return published
    per_class = {max(1, round(k * n_train / REFERENCE_TRAIN_SIZE / n_classes)) for k in REFERENCE_LADDER}
    return tuple(p * n_classes for p in sorted(per_class))


def balanced_subset(labels: Tensor, n: int, seed: int) -> Tensor:
    """``n / classes`` indices of every class, drawn from (labels, n, seed) alone: shared by every init."""
    n_classes = int(labels.max()) + 1
    per_class, rest = divmod(n, n_classes)
    sizes = torch.bincount(labels, minlength=n_classes)
    if rest or per_class < 1 or per_class > int(sizes.min()):
        raise ValueError(f"cannot draw a balanced set of {n} labels from {n_classes} classes with "
                         f"{int(sizes.min())} to {int(sizes.max())} images each; valid: multiples of "
                         f"{n_classes} up to {n_classes * int(sizes.min())}")
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(labels.numpy() == c), per_class, replace=False) for c in range(n_classes)]
    return torch.from_numpy(np.sort(np.concatenate(picked)))


def training_pool(n_train: int, labelled: Tensor, size: int, seed: int) -> Tensor:
    """The labelled images plus random others, ``size`` in all (0 or >= n_train: every image)."""
    if size == 0 or size >= n_train:
        return torch.arange(n_train)
    if size < len(labelled):
        raise ValueError(f"semisup_train_images={size} is smaller than the {len(labelled)} labelled images")
    others = np.setdiff1d(np.arange(n_train), labelled.numpy())
    extra = np.random.default_rng(seed + 1).choice(others, size - len(labelled), replace=False)
    return torch.from_numpy(np.sort(np.concatenate([labelled.numpy(), extra])))
