"""SimCLR's view augmentation as one batched kornia pipeline, on whatever device the batch is on.

``KorniaSimCLRTransform`` takes lightly's ``SimCLRTransform`` keywords with lightly's defaults and
builds the same steps in the same order: random resized crop (area in ``(min_scale, 1)``, aspect
ratio log-uniform in (3/4, 4/3), as torchvision), horizontal flip, colour jitter applied with
probability ``cj_prob``, random grey scale, Gaussian blur with a sigma uniform in ``sigmas``,
normalisation. Every sample draws its own parameters. Where it knowingly differs from lightly:

- the crop is one batched affine warp (kornia's ``resample`` mode) that maps the crop's corner pixel
  centres onto the output's, where torchvision resizes on the half-pixel grid: a sub-pixel shift of
  the same crop (kornia's ``slice`` mode would match it, but loops over the batch in Python);
- the order of the four colour-jitter steps is drawn once per call, not per image;
- the blur kernel is truncated at 3 of the largest sigma (PIL's box-blur approximation of the
  Gaussian that lightly uses has a comparable support), with PIL's replicated edges;
- pixels stay float between steps (lightly's tensor path rounds to uint8 before the blur).
"""

from __future__ import annotations

import math

import kornia.augmentation as K
import torch
from lightly.transforms.utils import IMAGENET_NORMALIZE
from torch import Tensor, nn


class KorniaSimCLRTransform(nn.Module):
    """Two SimCLR views of a (B, C, H, W) batch, uint8 in [0, 255] or float in [0, 1]."""

    def __init__(
        self,
        input_size: int = 224,
        cj_prob: float = 0.8,
        cj_strength: float = 1.0,
        cj_bright: float = 0.8,
        cj_contrast: float = 0.8,
        cj_sat: float = 0.8,
        cj_hue: float = 0.2,
        min_scale: float = 0.08,
        random_gray_scale: float = 0.2,
        gaussian_blur: float = 0.5,
        sigmas: tuple[float, float] = (0.1, 2),
        hf_prob: float = 0.5,
        normalize: dict[str, list[float]] | None = IMAGENET_NORMALIZE,
    ):
        super().__init__()
        steps: list[nn.Module] = [
            K.RandomResizedCrop((input_size, input_size), scale=(min_scale, 1.0), ratio=(3 / 4, 4 / 3),
                                cropping_mode="resample", align_corners=False),
        ]
        # A step with probability 0 is left out: kornia would still draw its parameters.
        if hf_prob > 0:
            steps.append(K.RandomHorizontalFlip(p=hf_prob))
        if cj_prob > 0:
            steps.append(K.ColorJitter(brightness=cj_strength * cj_bright, contrast=cj_strength * cj_contrast,
                                       saturation=cj_strength * cj_sat, hue=cj_strength * cj_hue, p=cj_prob))
        if random_gray_scale > 0:
            steps.append(K.RandomGrayscale(p=random_gray_scale))
        if gaussian_blur > 0:
            kernel = 2 * math.ceil(3 * sigmas[1]) + 1
            steps.append(K.RandomGaussianBlur(kernel, sigma=tuple(sigmas), border_type="replicate", p=gaussian_blur))
        self.view = nn.Sequential(*steps)
        stats = normalize or {"mean": [0.0], "std": [1.0]}
        self.register_buffer("mean", torch.tensor(stats["mean"]).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(stats["std"]).view(1, -1, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        # Both views in one pass: every sample draws its own parameters, so this is two independent views.
        views = self.view(torch.cat([x, x]))
        views = (views - self.mean) / self.std
        first, second = views.chunk(2)
        return first, second
