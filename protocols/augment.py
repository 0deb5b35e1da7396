"""LaplaceNet's augmentations, built from torchvision's v2 transforms.

Weak (labelled images): flip (natural images only), reflect-padded random crop,
RandAugment with 1 op, Cutout. Strong (pseudo-labelled images): the same with
2 RandAugment ops. Cutout is torchvision's RandomErasing with a fixed square of
a quarter of the image (16x16 on 32x32 images, as in Cutout) filled with 0.
Transforms run per image on uint8 tensors, so each image draws its own ops.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.transforms import v2


def laplacenet_transform(size: int, ops: int, hflip: bool) -> v2.Compose:
    steps = [v2.RandomHorizontalFlip()] if hflip else []
    steps += [
        v2.RandomCrop(size, padding=max(size // 8, 1), padding_mode="reflect"),
        v2.RandAugment(num_ops=ops),
        v2.RandomErasing(p=1.0, scale=(0.25, 0.25), ratio=(1.0, 1.0), value=0),
    ]
    return v2.Compose(steps)


class Augmenter:
    """``weak(images)`` and ``strong(images)``: uint8 (B, C, H, W) -> augmented uint8 batch."""

    def __init__(self, size: int, hflip: bool):
        self._weak = laplacenet_transform(size, 1, hflip)
        self._strong = laplacenet_transform(size, 2, hflip)

    def weak(self, images: Tensor) -> Tensor:
        return _per_image(self._weak, images)

    def strong(self, images: Tensor) -> Tensor:
        return _per_image(self._strong, images)


def _per_image(transform: v2.Compose, images: Tensor) -> Tensor:
    device = images.device
    return torch.stack([transform(img) for img in images.cpu()]).to(device)
