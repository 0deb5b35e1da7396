"""Encoders E(x0, t): pre-activation residual networks whose every block adds a
learned embedding of t as a per-channel bias after its first convolution.

``wrn28_2`` is the DRL paper's WRN-28-2 (widths 16/32/64/128, 4 blocks per
stage, 128-d pooled output); ``resnet18`` is LaplaceNet's Mini-ImageNet network
in the same pre-activation form (512-d pooled output); ``cnn`` is the same design shrunk to one block per
stage for 8x8 digits and 28x28 MNIST on a CPU. A static encoder
(``time_conditioned=False``) has no time path at all, so its codes cannot
depend on t.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from methods.nets.embeddings import TimeEmbedding

TIME_DIM = 64


class TimeBiasBlock(nn.Module):
    """BN-ReLU-conv, + per-channel bias from the time embedding, BN-ReLU-conv, residual."""

    def __init__(self, c_in: int, c_out: int, stride: int, time_dim: int | None, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.time_bias = nn.Linear(time_dim, c_out) if time_dim else None
        self.bn2 = nn.BatchNorm2d(c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = (
            nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None
        )

    def forward(self, x: Tensor, temb: Tensor | None) -> Tensor:
        pre = self.bn1(x).relu()
        h = self.conv1(pre)
        if self.time_bias is not None:
            h = h + self.time_bias(temb)[:, :, None, None]
        h = self.conv2(self.dropout(self.bn2(h).relu()))
        skip = x if self.shortcut is None else self.shortcut(pre)
        return h + skip

    def forward_times(self, x: Tensor, temb: Tensor) -> Tensor:
        """(B, ...) inputs at each of the K times in ``temb`` -> (K * B, ...), time-major.

        Everything before the time bias (BN, first conv, shortcut) is computed
        once for the B inputs, then repeated over the K times.
        """
        pre = self.bn1(x).relu()
        h = self.conv1(pre).unsqueeze(0) + self.time_bias(temb)[:, None, :, None, None]
        h = self.conv2(self.dropout(self.bn2(h.flatten(0, 1)).relu()))
        skip = x if self.shortcut is None else self.shortcut(pre)
        return (h.unflatten(0, (len(temb), -1)) + skip).flatten(0, 1)  # skip broadcast over the K times


class TimeConditionedResNet(nn.Module):
    """Stem conv, stages of ``TimeBiasBlock``, BN-ReLU, global average pool, optional projection."""

    def __init__(
        self,
        in_channels: int,
        stem_width: int,
        widths: Sequence[int],
        blocks_per_stage: int,
        out_dim: int,
        time_conditioned: bool = True,
        dropout: float = 0.0,
        always_project: bool = False,
    ):
        super().__init__()
        self.time_conditioned = time_conditioned
        self.time_embed = TimeEmbedding(TIME_DIM) if time_conditioned else None
        time_dim = TIME_DIM if time_conditioned else None
        self.stem = nn.Conv2d(in_channels, stem_width, 3, 1, 1, bias=False)
        blocks, c = [], stem_width
        for stage, width in enumerate(widths):
            for i in range(blocks_per_stage):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(TimeBiasBlock(c, width, stride, time_dim, dropout))
                c = width
        self.blocks = nn.ModuleList(blocks)
        self.stage_widths = tuple(widths)
        self.final_bn = nn.BatchNorm2d(c)
        self.feature_dim = c
        # The pooled code is the representation; project only when another size is asked for, or
        # always (a probabilistic encoder: its log-variance must be free to go negative, and the
        # pooled features are non-negative after the final ReLU).
        self.project = nn.Identity() if out_dim == c and not always_project else nn.Linear(c, out_dim)
        self.out_dim = out_dim

    def forward(self, x: Tensor, noise_level: Tensor | None = None) -> Tensor:
        temb = self.time_embed(noise_level) if self.time_embed is not None else None
        return self._blocks_and_pool(self.stem(x), temb, self.blocks)

    def forward_times(self, x: Tensor, noise_levels: Tensor) -> Tensor:
        """(B, C, H, W) inputs at each of K noise levels -> (K * B, out_dim), time-major: ``forward``
        of the inputs repeated K times, with the stem and the first block's t-free part run once."""
        if self.time_embed is None:
            raise ValueError("forward_times needs a time-conditioned encoder")
        temb = self.time_embed(noise_levels)  # (K, TIME_DIM)
        h = self.blocks[0].forward_times(self.stem(x), temb)
        return self._blocks_and_pool(h, temb.repeat_interleave(len(x), dim=0), self.blocks[1:])

    def _blocks_and_pool(self, h: Tensor, temb: Tensor | None, blocks: Sequence[nn.Module]) -> Tensor:
        for block in blocks:
            h = block(h, temb)
        pooled = self.final_bn(h).relu().mean(dim=(2, 3))
        return self.project(pooled)


def cnn(in_channels: int, out_dim: int, width: int = 32, **kw) -> TimeConditionedResNet:
    return TimeConditionedResNet(in_channels, width, (width, 2 * width, 4 * width), 1, out_dim, **kw)


def wrn28_2(in_channels: int, out_dim: int, width: int = 16, **kw) -> TimeConditionedResNet:
    # WRN-28-k: depth 28 = 6 * 4 + 4, widen factor 2 -> widths 32/64/128 after a 16-wide stem.
    return TimeConditionedResNet(in_channels, width, (2 * width, 4 * width, 8 * width), 4, out_dim, **kw)


def resnet18(in_channels: int, out_dim: int, width: int = 64, **kw) -> TimeConditionedResNet:
    # LaplaceNet's Mini-ImageNet classifier, in the same pre-activation, time-biased form:
    # 2 blocks per stage, widths 64/128/256/512 (width=64), a 3x3 stem, 512-d pooled code.
    return TimeConditionedResNet(in_channels, width, (width, 2 * width, 4 * width, 8 * width), 2, out_dim, **kw)


ENCODERS: dict[str, Callable[..., TimeConditionedResNet]] = {"cnn": cnn, "wrn28_2": wrn28_2, "resnet18": resnet18}


def create_encoder(name: str, in_channels: int, out_dim: int, width: int, time_conditioned: bool = True,
                   dropout: float = 0.0, always_project: bool = False) -> TimeConditionedResNet:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; valid: {', '.join(ENCODERS)}")
    return ENCODERS[name](in_channels, out_dim, width=width, time_conditioned=time_conditioned,
                          dropout=dropout, always_project=always_project)
