"""The classifier LaplaceNet trains: a copy of the method's encoder, a learnable t, a Linear head."""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from methods.base import Method


class SemisupClassifier(nn.Module):
    """A trainable copy of the method's encoder at a learnable t, and a Linear layer on its code."""

    def __init__(self, method: Method, num_classes: int, t_init: float = 0.5, learn_t: bool = True):
        super().__init__()
        self.encoder = copy.deepcopy(method.ema.module).train()
        for p in self.encoder.parameters():
            p.requires_grad_(True)
        self._codes = method.codes  # the method's own reading of its encoder (noise level of t, mean code...)
        self.time_conditioned = method.time_conditioned
        logit = torch.logit(torch.tensor(float(t_init)))
        self.t_logit = nn.Parameter(logit, requires_grad=learn_t and method.time_conditioned)
        self.head = nn.Linear(method.cfg.latent_dim, num_classes)

    @property
    def t(self) -> float | None:
        return float(torch.sigmoid(self.t_logit.detach())) if self.time_conditioned else None

    def set_t(self, t: float) -> None:
        t = min(max(t, 1e-4), 1.0 - 1e-4)  # sigmoid reaches neither 0 nor 1: the scan's t = 1 is 0.9999
        with torch.no_grad():
            self.t_logit.fill_(math.log(t / (1.0 - t)))

    def features(self, x: Tensor) -> Tensor:
        """Normalised images -> the code the graph is built on (the 128-d pooled vector in WRN-28-2)."""
        t = torch.sigmoid(self.t_logit).expand(x.shape[0])
        return self._codes(self.encoder, x, t)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
