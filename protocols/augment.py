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
few numbers per image, which the host needs anyway to group images by op. The
rest of a call's draws (flips, offsets, the grouping orders) reach the device in
one transfer that does not wait for the GPU.

A training step asks for ``views(images, strong, copies)``: ``copies`` augmented
copies of its batch, copy after copy (the order of ``labels.repeat(copies)``),
weak on the labelled rows and strong on the rows ``strong`` marks.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

WEAK_OPS, STRONG_OPS = 1, 2
CUTOUT_AREA = 0.25  # of the image; RandomErasing's scale=(0.25, 0.25), ratio=(1, 1)

_RAND_AUGMENT = v2.RandAugment()  # torchvision's defaults: magnitude 9 of 31 bins, nearest, fill 0
RAND_AUGMENT_OPS: tuple[str, ...] = tuple(_RAND_AUGMENT._AUGMENTATION_SPACE)
_SIGNED = torch.tensor([signed for _, signed in _RAND_AUGMENT._AUGMENTATION_SPACE.values()])
NO_OP = -1  # a row's op id in a RandAugment step it does not take (a weak row's second step)


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
    """Per image on the CPU (torchvision v2): ``weak(images)``, ``strong(images)`` and a step's ``views``."""

    runs_on_device: ClassVar[bool] = False  # reads its batches from host memory

    def __init__(self, size: int, hflip: bool):
        self._weak = laplacenet_transform(size, WEAK_OPS, hflip)
        self._strong = laplacenet_transform(size, STRONG_OPS, hflip)

    def weak(self, images: Tensor) -> Tensor:
        return _per_image(self._weak, images)

    def strong(self, images: Tensor) -> Tensor:
        return _per_image(self._strong, images)

    def views(self, images: Tensor, strong: Tensor, copies: int) -> Tensor:
        """(copies * B, C, H, W): per copy the weak rows, then the ``strong`` ones, image by image. This call
        order fixes the global generator's draws, which the committed results were drawn with."""
        out, weak = images.new_empty((copies, *images.shape)), ~strong
        for view in out:
            if weak.any():
                view[weak] = self.weak(images[weak])
            if strong.any():
                view[strong] = self.strong(images[strong])
        return out.flatten(0, 1)


def _per_image(transform: v2.Compose, images: Tensor) -> Tensor:
    device = images.device
    return torch.stack([transform(img) for img in images.cpu()]).to(device)


class BatchedAugmenter:
    """``Augmenter``'s augmentations, every choice drawn per image, the pixels batched on the images' device."""

    runs_on_device: ClassVar[bool] = True  # its images belong on the run's device

    def __init__(self, size: int, hflip: bool, generator: torch.Generator | None = None):
        self.size, self.hflip, self.generator = size, hflip, generator
        self.magnitudes = rand_augment_magnitudes(size, size)

    def weak(self, images: Tensor) -> Tensor:
        return self.augment(images, WEAK_OPS)

    def strong(self, images: Tensor) -> Tensor:
        return self.augment(images, STRONG_OPS)

    def views(self, images: Tensor, strong: Tensor, copies: int) -> Tensor:
        """``Augmenter.views`` in one call over every copy (``strong``: a host mask, read for the op counts)."""
        ops_per_row = torch.where(strong, STRONG_OPS, WEAK_OPS).repeat(copies)
        return self.augment(images.repeat(copies, 1, 1, 1), ops_per_row)

    def augment(self, images: Tensor, num_ops: int | Tensor) -> Tensor:
        """Flip, crop, ``num_ops`` RandAugment steps (a count per row if a tensor) and Cutout, drawn per image."""
        n, g = len(images), self.generator
        num_ops = torch.full((n,), num_ops) if isinstance(num_ops, int) else num_ops
        draws: dict[str, Tensor] = {}  # on the host until one transfer below
        if self.hflip:
            draws["flip"] = torch.rand(n, generator=g) < 0.5
        padding = crop_padding(self.size)
        draws["top"], draws["left"] = (
            torch.randint(0, images.shape[-k] + 2 * padding - self.size + 1, (n,), generator=g) for k in (2, 1))
        runs = []
        for step in range(int(num_ops.max()) if n else 0):
            ops = torch.randint(len(RAND_AUGMENT_OPS), (n,), generator=g)
            negative = torch.rand(n, generator=g) <= 0.5  # torchvision's rule; unsigned ops ignore it
            draws[f"order{step}"], step_runs = rand_augment_groups(torch.where(num_ops > step, ops, NO_OP), negative)
            runs.append(step_runs)
        side = cutout_side(self.size, self.size)
        if side is not None:  # RandomErasing leaves an image whose square does not fit unchanged
            draws["erase_top"], draws["erase_left"] = (
                torch.randint(0, self.size - side + 1, (n,), generator=g) for _ in range(2))
        sent = send_draws(draws, images.device)
        if self.hflip:
            images = flip_rows(images, sent["flip"].bool())
        images = crop_windows(images, padding, sent["top"], sent["left"], self.size)
        for step, step_runs in enumerate(runs):
            images = apply_rand_augment_groups(images, sent[f"order{step}"], step_runs, self.magnitudes)
        return images if side is None else erase_squares(images, sent["erase_top"], sent["erase_left"], side)


# -- the batched steps, given their per-image draws (tensors of length B) ---------------------------


def send_draws(draws: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    """The host's draws on ``device`` in one copy. non_blocking: the copy waits for none of the GPU's queued
    work (a blocking one synchronises the stream), so the host goes on to the next step."""
    if not draws:
        return {}
    stacked = torch.stack([d.long() for d in draws.values()]).to(device, non_blocking=True)
    return dict(zip(draws, stacked.unbind()))


def flip_rows(images: Tensor, flip: Tensor) -> Tensor:
    """Images ``b`` with ``flip[b]`` mirrored left-right."""
    return torch.where(flip.to(images.device).view(-1, 1, 1, 1), images.flip(-1), images)


def crop_windows(images: Tensor, padding: int, tops: Tensor, lefts: Tensor, size: int) -> Tensor:
    """Reflect-pad the batch once, then image b's ``size`` x ``size`` window at (tops[b], lefts[b])."""
    device = images.device
    padded = F.pad(images, [padding], padding_mode="reflect")
    offsets = torch.arange(size, device=device)
    rows = tops.to(device).view(-1, 1) + offsets
    cols = lefts.to(device).view(-1, 1) + offsets
    batch = torch.arange(len(images), device=device).view(-1, 1, 1)
    # Advanced indices split by the channel slice come first: (B, size, size, C).
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def rand_augment_magnitudes(height: int, width: int) -> list[float]:
    """Per group ``2 * op + negative``: the magnitude torchvision's RandAugment gives the op on such images
    (0.0 for ops without one; an unsigned op's odd group is never drawn)."""
    table = []
    for magnitudes_fn, signed in _RAND_AUGMENT._AUGMENTATION_SPACE.values():
        magnitudes = magnitudes_fn(_RAND_AUGMENT.num_magnitude_bins, height, width)
        magnitude = 0.0 if magnitudes is None else float(magnitudes[_RAND_AUGMENT.magnitude])
        table += [magnitude, -magnitude if signed else magnitude]
    return table


def apply_rand_augment_op(images: Tensor, op: str, magnitude: float) -> Tensor:
    """torchvision's RandAugment dispatch for one op, on a whole batch."""
    return _RAND_AUGMENT._apply_image_or_video_transform(
        images, op, magnitude, interpolation=_RAND_AUGMENT.interpolation, fill=_RAND_AUGMENT._fill)


def rand_augment_groups(ops: Tensor, negative: Tensor) -> tuple[Tensor, list[tuple[int, int]]]:
    """The host's half of a RandAugment step: the order that sorts the rows by the (op, sign) they apply, and
    that order's runs as (group ``2 * op + negative``, length); rows at ``NO_OP`` come last, in a run of their own."""
    skipped = 2 * len(RAND_AUGMENT_OPS)
    group = 2 * ops + (negative & _SIGNED[ops.clamp(min=0)])  # one group per (op, sign) actually applied
    group = torch.where(ops == NO_OP, skipped, group)
    order = torch.argsort(group, stable=True)
    counts = torch.bincount(group, minlength=skipped + 1).tolist()
    return order, [(key, count) for key, count in enumerate(counts) if count]


def apply_rand_augment_groups(images: Tensor, order: Tensor, runs: list[tuple[int, int]],
                              magnitudes: list[float]) -> Tensor:
    """The device's half: the rows gathered in ``order`` (on the images' device), each run of one (op, sign)
    passed once through torchvision's dispatch (``magnitudes``: ``rand_augment_magnitudes``), put back."""
    grouped, pieces, start = images[order], [], 0
    for key, count in runs:
        piece, op = grouped[start:start + count], key // 2
        pieces.append(piece if op == len(RAND_AUGMENT_OPS) else
                      apply_rand_augment_op(piece, RAND_AUGMENT_OPS[op], magnitudes[key]))
        start += count
    out = torch.empty_like(images)
    out[order] = torch.cat(pieces)
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


# The backends by name (SemisupConfig checks the name).
SEMISUP_AUGMENTERS: dict[str, type[Augmenter] | type[BatchedAugmenter]] = {
    "torchvision": Augmenter, "batched": BatchedAugmenter}
SEMISUP_AUGMENT_BACKENDS = tuple(SEMISUP_AUGMENTERS)
