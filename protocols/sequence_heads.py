"""Classification heads that read a trajectory of codes: (B, K, d) codes at K times t -> (B, C) logits.

``mlp`` concatenates the K codes; ``gru`` runs a GRU over them in order of t
and classifies its last state; ``transformer`` embeds each code, adds a
sinusoidal encoding of its t, appends a learned CLS token and classifies the
CLS output of a post-norm attention block (the follow-up paper's code: one
block applied twice with shared weights). The Transformer can return the CLS
query's attention over the time tokens, which the ``attention`` protocol reads.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

SEQUENCE_HEADS = ("mlp", "gru", "transformer")


class ConcatMLP(nn.Module):
    """Linear(K d, hidden) - ReLU - Dropout - Linear on the concatenated codes."""

    def __init__(self, points: int, in_dim: int, n_classes: int, hidden: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(points * in_dim, hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, codes: Tensor, ts: Tensor) -> Tensor:
        return self.net(codes)


class GRUHead(nn.Module):
    """A GRU over the codes ordered by t; dropout and a Linear on its last hidden state."""

    def __init__(self, in_dim: int, n_classes: int, width: int, dropout: float):
        super().__init__()
        self.gru = nn.GRU(in_dim, width, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(width, n_classes)

    def forward(self, codes: Tensor, ts: Tensor) -> Tensor:
        _, last = self.gru(codes)  # (1, B, width)
        return self.out(self.dropout(last[0]))


def sinusoidal_time_encoding(ts: Tensor, width: int, scale: float = 1000.0) -> Tensor:
    """(K,) times in [0, 1] -> (K, width): the Transformer's sine/cosine code of position ``scale * t``.

    Encoding t itself (not the index in the sequence) gives a time the same code at every K.
    """
    half = width // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=ts.device) / max(half, 1))
    angles = scale * ts[:, None].float() * freqs[None]
    enc = torch.cat([angles.sin(), angles.cos()], dim=1)
    return nn.functional.pad(enc, (0, width - 2 * half))


class PostNormBlock(nn.Module):
    """Self-attention then feed-forward, each added to its input and layer-normed (post-norm)."""

    def __init__(self, width: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(width, ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn, width))
        self.norm_attn, self.norm_ffn = nn.LayerNorm(width), nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        mixed, weights = self.attn(x, x, x, need_weights=need_weights, average_attn_weights=True)
        x = self.norm_attn(x + self.dropout(mixed))
        return self.norm_ffn(x + self.dropout(self.ffn(x))), weights


class TransformerHead(nn.Module):
    """Linear embedding + encoding of t, a CLS token appended last, ``layers`` post-norm blocks."""

    def __init__(self, in_dim: int, n_classes: int, width: int, dropout: float, layers: int = 2,
                 heads: int = 4, shared: bool = True):
        super().__init__()
        if width % heads:
            raise ValueError(f"trajectory_width {width} must be divisible by transformer_heads {heads}")
        self.embed = nn.Sequential(nn.Linear(in_dim, width), nn.Dropout(dropout))
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        nn.init.normal_(self.cls, std=0.02)
        n_blocks = 1 if shared else layers
        self.blocks = nn.ModuleList(PostNormBlock(width, heads, 2 * width, dropout) for _ in range(n_blocks))
        self.layers = layers
        self.out = nn.Linear(width, n_classes)

    def forward(self, codes: Tensor, ts: Tensor) -> Tensor:
        return self.forward_with_attention(codes, ts)[0]

    def forward_with_attention(self, codes: Tensor, ts: Tensor, need_weights: bool = False
                               ) -> tuple[Tensor, Tensor | None]:
        """Logits and, if asked, the CLS query's attention (B, K + 1) in the last block (CLS itself last)."""
        x = self.embed(codes) + sinusoidal_time_encoding(ts, self.cls.shape[-1])[None]
        x = torch.cat([x, self.cls.expand(len(x), -1, -1)], dim=1)
        weights = None
        for i in range(self.layers):
            block = self.blocks[0 if len(self.blocks) == 1 else i]
            last = i == self.layers - 1
            x, w = block(x, need_weights=need_weights and last)
            if w is not None:
                weights = w[:, -1, :]  # the CLS row, averaged over attention heads
        return self.out(x[:, -1]), weights
