"""Conditional score U-Net s(x_t, t, z).

An NCSN++-style U-Net (GroupNorm, SiLU, residual blocks, optional attention)
whose width, channel multipliers and depth come from the preset. The code z
enters along the reference implementation's two paths. (1) z is mapped to the
embedding size and concatenated to the noise embedding, and every residual
block adds a projection of that joint embedding as a per-channel bias. (2)
With ``z_map`` (the default), the joint embedding also goes through three
dense layers with SiLU to a (2 * width, r, r) feature map at the lowest
resolution r, concatenated to the bottleneck activations (the middle blocks
run at the wider width): the only spatial route from z into the network;
without it z can only shift channels uniformly. The output is divided by
the marginal std, so the network predicts the (scaled) noise; CDAE uses the raw
output as its one-step estimate of x0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods.nets.embeddings import TimeEmbedding, group_norm


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, cond_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = group_norm(c_in), nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.cond = nn.Linear(cond_dim, c_out)
        self.norm2, self.conv2 = group_norm(c_out), nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.cond(cond)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        attended = F.scaled_dot_product_attention(q, k, v)  # (b, hw, c)
        return x + self.out(attended.transpose(-1, -2).reshape(b, c, h, w))


class ScoreUNet(nn.Module):
    def __init__(
        self,
        in_channels: int,
        code_dim: int,
        width: int = 32,
        mults: Sequence[int] = (1, 2, 2),
        blocks_per_level: int = 1,
        dropout: float = 0.1,
        attn_resolutions: Sequence[int] = (),
        image_size: int = 32,
        embed_dim: int = 64,
        z_map: bool = True,
    ):
        super().__init__()
        self.time_embed = TimeEmbedding(embed_dim)
        self.code_embed = nn.Linear(code_dim, embed_dim)
        cond_dim = 2 * embed_dim
        self.conv_in = nn.Conv2d(in_channels, width, 3, 1, 1)

        self.down, skips, c, size = nn.ModuleList(), [width], width, image_size
        for level, mult in enumerate(mults):
            for _ in range(blocks_per_level):
                self.down.append(ResBlock(c, width * mult, cond_dim, dropout))
                c = width * mult
                if size in attn_resolutions:
                    self.down.append(SelfAttention(c))
                skips.append(c)
            if level < len(mults) - 1:
                self.down.append(nn.Conv2d(c, c, 3, 2, 1))  # downsample
                skips.append(c)
                size = (size + 1) // 2

        self.z_map = ZMap(cond_dim, 2 * width, size) if z_map else None
        c += self.z_map.channels if z_map else 0
        self.mid = nn.ModuleList([ResBlock(c, c, cond_dim, dropout), SelfAttention(c),
                                  ResBlock(c, c, cond_dim, dropout)])

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            for _ in range(blocks_per_level + 1):
                self.up.append(ResBlock(c + skips.pop(), width * mult, cond_dim, dropout))
                c = width * mult
                if size in attn_resolutions:
                    self.up.append(SelfAttention(c))
            if level > 0:
                self.up.append(_Upsample(c))
                size = size * 2
        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv2d(c, in_channels, 3, 1, 1)

    def forward(self, x: Tensor, noise_level: Tensor, code: Tensor, std: Tensor | None) -> Tensor:
        """The score (output / std); with ``std=None``, the raw output (e.g. a one-step x0 estimate)."""
        joint = torch.cat([self.time_embed(noise_level), self.code_embed(code)], dim=-1)
        cond = F.silu(joint)
        h = self.conv_in(x)
        skips = [h]
        for layer in self.down:
            h = _apply(layer, h, cond)
            if not isinstance(layer, SelfAttention):
                skips.append(h)
        if self.z_map is not None:
            h = torch.cat([h, self.z_map(joint)], dim=1)
        for layer in self.mid:
            h = _apply(layer, h, cond)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, skips.pop()], dim=1), cond)
            elif isinstance(layer, _Upsample):
                h = layer(h, skips[-1].shape[-2:])
            else:
                h = layer(h)
        out = self.conv_out(F.silu(self.norm_out(h)))
        return out if std is None else out / std.view(-1, 1, 1, 1)


class ZMap(nn.Module):
    """The joint (noise, code) embedding -> three dense layers with SiLU -> a (channels, r, r) map."""

    def __init__(self, embed_dim: int, channels: int, resolution: int):
        super().__init__()
        self.channels, self.resolution = channels, resolution
        hidden = channels * resolution  # the reference's widths: 2 nf r, 2 nf r, then 2 nf r r
        self.dense = nn.Sequential(nn.Linear(embed_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                   nn.Linear(hidden, channels * resolution * resolution), nn.SiLU())

    def forward(self, joint: Tensor) -> Tensor:
        return self.dense(joint).view(-1, self.channels, self.resolution, self.resolution)


class _Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: Tensor, size: torch.Size) -> Tensor:
        # Upsample to the skip's size, so odd resolutions (7x7 MNIST, 21x21 Mini-ImageNet) work.
        return self.conv(F.interpolate(x, size=tuple(size), mode="nearest"))


def _apply(layer: nn.Module, h: Tensor, cond: Tensor) -> Tensor:
    return layer(h, cond) if isinstance(layer, ResBlock) else layer(h)
