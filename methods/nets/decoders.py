"""Decoder z -> image, the mirror of the encoders: for the autoencoder baselines."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class ConvDecoder(nn.Module):
    """Linear to the encoder's last feature map, then one upsampling stage per encoder stage."""

    def __init__(self, code_dim: int, out_channels: int, image_size: int, widths: Sequence[int]):
        super().__init__()
        widths = list(widths)[::-1]  # deepest stage first
        # The encoders keep stage 0 at full size and halve (rounding up) at each later stage.
        self.sizes = [math.ceil(image_size / 2**i) for i in range(len(widths))][::-1]
        self.start = nn.Linear(code_dim, widths[0] * self.sizes[0] ** 2)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 3, 1, 1))
            for c_in, c_out in zip(widths, widths[1:] + widths[-1:])
        )
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(), nn.Conv2d(widths[-1], out_channels, 3, 1, 1))
        self.first_width = widths[0]

    def forward(self, z: Tensor) -> Tensor:
        h = self.start(z).view(-1, self.first_width, self.sizes[0], self.sizes[0])
        for stage, size in zip(self.stages, self.sizes[1:] + self.sizes[-1:]):
            h = stage(h)
            if h.shape[-1] != size:
                h = F.interpolate(h, size=(size, size), mode="nearest")
        return self.out(h)
