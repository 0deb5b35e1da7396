"""Time embeddings shared by encoders and score networks."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class GaussianFourierProjection(nn.Module):
    """Random Fourier features of a scalar: [sin(2 pi w x), cos(2 pi w x)], w ~ N(0, scale^2), fixed."""

    def __init__(self, num_frequencies: int = 16, scale: float = 16.0):
        super().__init__()
        self.register_buffer("freqs", torch.randn(num_frequencies) * scale)

    @property
    def out_dim(self) -> int:
        return 2 * self.freqs.numel()

    def forward(self, x: Tensor) -> Tensor:
        angles = 2 * math.pi * x[:, None] * self.freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class TimeEmbedding(nn.Sequential):
    """Fourier features of the noise level -> Linear -> SiLU -> Linear, as in the reference encoder."""

    def __init__(self, dim: int, num_frequencies: int = 16, scale: float = 16.0):
        fourier = GaussianFourierProjection(num_frequencies, scale)
        super().__init__(fourier, nn.Linear(fourier.out_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.dim = dim


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with the most groups (<= 32) that leave at least 4 channels per group."""
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0 and channels // g >= 4 or g == 1)
    return nn.GroupNorm(groups, channels)
