"""LaplaceNet's augmentations, per image (torchvision v2) or batched on the batch's device.

Weak (labelled images): flip (natural images only), reflect-padded random crop
(padding size // 8), RandAugment with 1 op, Cutout. Strong (pseudo-labelled
images): the same with 2 RandAugment ops. Cutout is torchvision's RandomErasing
with a fixed square of a quarter of the image (16x16 on 32x32 images, as in
Cutout) filled with 0.

Two backends (``SEMISUP_AUGMENT_BACKENDS``) draw from the same distribution:

- ``torchvision`` (``Augmenter``): the v2 transforms run per image on the CPU.
- ``batched`` (``BatchedAugmenter``): every random choice is still drawn per
  image (flip, crop offset, each RandAugment op and its sign, the Cutout square's
  place), but the pixels are processed a batch at a time on the batch's device
  (a GPU, where small-image datasets train): one reflect pad and one gather for
  the crops, one mask for the Cutout squares, and for each RandAugment step the
  batch sorted by the (op, sign) it drew, each group passed once through the
  same torchvision functional the per-image path calls. The op table, the
  magnitudes (bin 9 of 31), the sign rule and the op dispatch are read from
  torchvision's own ``RandAugment`` (private members, pinned by the tests), so
  the two backends cannot drift apart. kornia's RandAugment is not used: it
  picks its ops once per batch (a permutation of its policy, without
  replacement) from a different table (Invert and SolarizeAdd, no Identity,
  translations of 10%).

The batched draws come from a CPU generator (the global one unless given): a
few numbers per image, which the host needs anyway to group images by op.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

SEMISUP_AUGMENT_BACKENDS = ("torchvision", "batched")
WEAK_OPS, STRONG_OPS = 1, 2
CUTOUT_AREA = 0.25  # of the image; RandomErasing's scale=(0.25, 0.25), ratio=(1, 1)

_RAND_AUGMENT = v2.RandAugment()  # torchvision's defaults: magnitude 9 of 31 bins, nearest, fill 0
RAND_AUGMENT_OPS: tuple[str, ...] = tuple(_RAND_AUGMENT._AUGMENTATION_SPACE)


def crop_padding(size: int) -> int:
    return max(size // 8, 1)


def laplacenet_transform(size: int, ops: int, hflip: bool) -> v2.Compose:
    steps = [v2.RandomHorizontalFlip()] if hflip else []
    steps += [
        v2.RandomCrop(size, padding=crop_padding(size), padding_mode="reflect"),
        v2.RandAugment(num_ops=ops),
        v2.RandomErasing(p=1.0, scale=(CUTOUT_AREA, CUTOUT_AREA), ratio=(1.0, 1.0), value=0),
    ]
    return v2.Compose(steps)


class Augmenter:
    """``weak(images)`` and ``strong(images)``: uint8 (B, C, H, W) -> augmented uint8 batch."""

    def __init__(self, size: int, hflip: bool):
        self._weak = laplacenet_transform(size, WEAK_OPS, hflip)
        self._strong = laplacenet_transform(size, STRONG_OPS, hflip)

    def weak(self, images: Tensor) -> Tensor:
        return _per_image(self._weak, images)

    def strong(self, images: Tensor) -> Tensor:
        return _per_image(self._strong, images)


def _per_image(transform: v2.Compose, images: Tensor) -> Tensor:
    device = images.device
    return torch.stack([transform(img) for img in images.cpu()]).to(device)


class BatchedAugmenter:
    """``Augmenter``'s weak and strong augmentations, batched on the images' device."""

    def __init__(self, size: int, hflip: bool, generator: torch.Generator | None = None):
        self.size, self.hflip, self.generator = size, hflip, generator

    def weak(self, images: Tensor) -> Tensor:
        return self.augment(images, WEAK_OPS)

    def strong(self, images: Tensor) -> Tensor:
        return self.augment(images, STRONG_OPS)

    def augment(self, images: Tensor, num_ops: int) -> Tensor:
        """Flip, crop, ``num_ops`` RandAugment steps and Cutout, each drawn per image."""
        n, g = len(images), self.generator
        if self.hflip:
            images = flip_rows(images, torch.rand(n, generator=g) < 0.5)
        padding = crop_padding(self.size)
        tops, lefts = (torch.randint(0, images.shape[-k] + 2 * padding - self.size + 1, (n,), generator=g)
                       for k in (2, 1))
        images = crop_windows(images, padding, tops, lefts, self.size)
        for _ in range(num_ops):
            ops = torch.randint(len(RAND_AUGMENT_OPS), (n,), generator=g)
            negative = torch.rand(n, generator=g) <= 0.5  # torchvision's rule; unsigned ops ignore it
            images = rand_augment_step(images, ops, negative)
        side = cutout_side(self.size, self.size)
        if side is None:  # RandomErasing leaves an image whose square does not fit unchanged
            return images
        tops, lefts = (torch.randint(0, self.size - side + 1, (n,), generator=g) for _ in range(2))
        return erase_squares(images, tops, lefts, side)


# -- the batched steps, given their per-image draws (CPU tensors of length B) ---------------------


def flip_rows(images: Tensor, flip: Tensor) -> Tensor:
    """Images ``b`` with ``flip[b]`` mirrored left-right."""
    return torch.where(flip.to(images.device).view(-1, 1, 1, 1), images.flip(-1), images)


def crop_windows(images: Tensor, padding: int, tops: Tensor, lefts: Tensor, size: int) -> Tensor:
    """Reflect-pad the batch once, then image b's ``size`` x ``size`` window at (tops[b], lefts[b])."""
    padded = F.pad(images, [padding], padding_mode="reflect")
    offsets = torch.arange(size)
    rows = (tops.view(-1, 1) + offsets).to(images.device)
    cols = (lefts.view(-1, 1) + offsets).to(images.device)
    batch = torch.arange(len(images), device=images.device).view(-1, 1, 1)
    # Advanced indices split by the channel slice come first: (B, size, size, C).
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def rand_augment_magnitude(op: str, negative: bool, height: int, width: int) -> float:
    """The magnitude torchvision's RandAugment gives ``op`` (0.0 for ops without one)."""
    magnitudes_fn, signed = _RAND_AUGMENT._AUGMENTATION_SPACE[op]
    magnitudes = magnitudes_fn(_RAND_AUGMENT.num_magnitude_bins, height, width)
    if magnitudes is None:
        return 0.0
    magnitude = float(magnitudes[_RAND_AUGMENT.magnitude])
    return -magnitude if signed and negative else magnitude


def apply_rand_augment_op(images: Tensor, op: str, magnitude: float) -> Tensor:
    """torchvision's RandAugment dispatch for one op, on a whole batch."""
    return _RAND_AUGMENT._apply_image_or_video_transform(
        images, op, magnitude, interpolation=_RAND_AUGMENT.interpolation, fill=_RAND_AUGMENT._fill)


def rand_augment_step(images: Tensor, ops: Tensor, negative: Tensor) -> Tensor:
    """One RandAugment step: image b gets op ``RAND_AUGMENT_OPS[ops[b]]``, negated where ``negative[b]``."""
    height, width = images.shape[-2:]
    signed = torch.tensor([_RAND_AUGMENT._AUGMENTATION_SPACE[op][1] for op in RAND_AUGMENT_OPS])
    group = 2 * ops + (negative & signed[ops])  # one group per (op, sign) actually applied
    order = torch.argsort(group, stable=True)
    counts = torch.bincount(group, minlength=2 * len(RAND_AUGMENT_OPS)).tolist()
    order_on_device = order.to(images.device)
    grouped, pieces, start = images[order_on_device], [], 0
    for key, count in enumerate(counts):
        if count:
            op = RAND_AUGMENT_OPS[key // 2]
            piece = grouped[start:start + count]
            pieces.append(apply_rand_augment_op(piece, op, rand_augment_magnitude(op, bool(key % 2), height, width)))
            start += count
    out = torch.empty_like(images)
    out[order_on_device] = torch.cat(pieces)
    return out


def cutout_side(height: int, width: int) -> int | None:
    """RandomErasing's square side for a quarter of the area, or None where it does not fit."""
    side = int(round(math.sqrt(height * width * CUTOUT_AREA)))
    return side if side < height and side < width else None


def erase_squares(images: Tensor, tops: Tensor, lefts: Tensor, side: int) -> Tensor:
    """Image b with its ``side`` x ``side`` square at (tops[b], lefts[b]) set to 0."""
    height, width, device = *images.shape[-2:], images.device
    rows = torch.arange(height, device=device) - tops.to(device).view(-1, 1)
    cols = torch.arange(width, device=device) - lefts.to(device).view(-1, 1)
    inside = ((rows >= 0) & (rows < side))[:, :, None] & ((cols >= 0) & (cols < side))[:, None, :]
    return images.masked_fill(inside[:, None], 0)


def make_augmenter(backend: str, size: int, hflip: bool) -> Augmenter | BatchedAugmenter:
    if backend not in SEMISUP_AUGMENT_BACKENDS:
        raise ValueError(f"unknown semisup_augment_backend {backend!r}; valid: {', '.join(SEMISUP_AUGMENT_BACKENDS)}")
    return BatchedAugmenter(size, hflip) if backend == "batched" else Augmenter(size, hflip)
