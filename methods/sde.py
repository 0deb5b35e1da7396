"""Forward SDEs of score-based diffusion: the marginals p_0t(x_t | x_0) and how t is drawn.

Both SDEs have Gaussian marginals ``x_t = mean_coef(t) * x_0 + std(t) * eps``, so
denoising score matching has the closed-form target
``grad log p_0t(x_t | x_0) = -eps / std(t)`` and the weighting
``lambda(t) = std(t)**2`` turns the loss into ``||std * s + eps||^2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from core.validation import Choice, Interval, NonNegative, Positive, setting, violation
from methods.base import MethodConfig

T_SAMPLINGS = ("uniform", "sigma-uniform")


@dataclass(frozen=True)
class SDE:
    name: ClassVar[str]
    eps: float = 1e-5  # smallest t drawn in training: std(0) = 0 would make the target infinite

    def mean_coef(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def std(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def noise_level(self, t: Tensor) -> Tensor:
        """The scalar the networks' time embeddings see (log sigma for VE, as the reference code)."""
        raise NotImplementedError

    def marginal(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Sample x_t given x_0 for per-sample times ``t`` of shape (B,)."""
        return _bcast(self.mean_coef(t), x0) * x0 + _bcast(self.std(t), x0) * noise

    def weighting(self, t: Tensor) -> Tensor:
        """lambda(t) = std(t)**2 (sigma(t)**2 for VE, as in the DRL paper)."""
        return self.std(t) ** 2

    def score_target(self, noise: Tensor, t: Tensor) -> Tensor:
        """grad_x log p_0t(x_t | x_0) for x_t built with ``noise``."""
        return -noise / _bcast(self.std(t), noise)

    def sample_t(self, n: int, sampling: str, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> Tensor:
        if sampling not in T_SAMPLINGS:
            raise ValueError(f"unknown t sampling {sampling!r}; valid: {', '.join(T_SAMPLINGS)}")
        u = torch.rand(n, generator=generator, device=device)
        if sampling == "uniform":
            return self.eps + (1.0 - self.eps) * u
        return self.t_from_uniform_std(u)

    def t_from_uniform_std(self, u: Tensor) -> Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class VESDE(SDE):
    """Variance exploding: dx = sqrt(d sigma^2/dt) dw, sigma(t) = sigma_min (sigma_max/sigma_min)^t."""

    name: ClassVar[str] = "ve"
    sigma_min: float = 0.01
    sigma_max: float = 50.0

    def mean_coef(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def std(self, t: Tensor) -> Tensor:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def noise_level(self, t: Tensor) -> Tensor:
        return torch.log(self.std(t))

    def t_from_uniform_std(self, u: Tensor) -> Tensor:
        # sigma ~ U(sigma_min, sigma_max): most draws land at high noise, the paper's focus.
        sigma = self.sigma_min + (self.sigma_max - self.sigma_min) * u
        t = torch.log(sigma / self.sigma_min) / math.log(self.sigma_max / self.sigma_min)
        return t.clamp(min=self.eps, max=1.0)


@dataclass(frozen=True)
class VPSDE(SDE):
    """Variance preserving: dx = -1/2 beta(t) x dt + sqrt(beta(t)) dw, beta linear in t."""

    name: ClassVar[str] = "vp"
    beta_min: float = 0.1
    beta_max: float = 20.0

    def _log_mean_coef(self, t: Tensor) -> Tensor:
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def mean_coef(self, t: Tensor) -> Tensor:
        return torch.exp(self._log_mean_coef(t))

    def std(self, t: Tensor) -> Tensor:
        return torch.sqrt(-torch.expm1(2.0 * self._log_mean_coef(t)))

    def noise_level(self, t: Tensor) -> Tensor:
        return torch.log(self.std(t).clamp(min=1e-5))

    def t_from_uniform_std(self, u: Tensor) -> Tensor:
        # std ~ U(std(eps), std(1)), inverted through the quadratic in t.
        lo, hi = self.std(torch.tensor(self.eps)), self.std(torch.tensor(1.0))
        s = lo + (hi - lo) * u
        log_mean = 0.5 * torch.log1p(-(s**2))  # log mean_coef = -1/4 t^2 db - 1/2 t bmin
        a, b = 0.25 * (self.beta_max - self.beta_min), 0.5 * self.beta_min
        t = (-b + torch.sqrt(b * b - 4 * a * log_mean)) / (2 * a)
        return t.clamp(min=self.eps, max=1.0)


SDES: dict[str, type[SDE]] = {"ve": VESDE, "vp": VPSDE}


def create_sde(name: str, sigma_min: float = 0.01, sigma_max: float = 50.0, beta_min: float = 0.1,
               beta_max: float = 20.0) -> SDE:
    """The named SDE with its constants (each SDE takes its own two; the paper's by default)."""
    if name not in SDES:
        raise ValueError(f"unknown sde {name!r}; valid: {', '.join(SDES)}")
    if name == "ve":
        return VESDE(sigma_min=sigma_min, sigma_max=sigma_max)
    return VPSDE(beta_min=beta_min, beta_max=beta_max)


SDE_CHOICE = Choice(SDES)


@dataclass(frozen=True)
class SDEConfig(MethodConfig):
    """The forward SDE of a method that draws t, its constants, and how t is drawn."""

    sde: str = setting("ve", SDE_CHOICE)
    t_sampling: str = setting("uniform", Choice(T_SAMPLINGS))  # sigma-uniform: more weight on high noise
    sigma_min: float = setting(0.01, Positive())   # VE: sigma(t) = sigma_min (sigma_max / sigma_min)^t
    sigma_max: float = setting(50.0, Interval())   # and > sigma_min
    beta_min: float = setting(0.1, NonNegative())  # VP: beta(t) linear from beta_min to beta_max
    beta_max: float = setting(20.0, Interval())    # and > beta_min

    def __post_init__(self):
        super().__post_init__()
        # Each upper constant must exceed its lower one: a check of two fields, so written here.
        for high, low in (("sigma_max", "sigma_min"), ("beta_max", "beta_min")):
            if not getattr(self, high) > getattr(self, low):
                raise violation(high, getattr(self, high), f"finite numbers > {low} ({getattr(self, low)})")

    def create_sde(self) -> SDE:
        return create_sde(self.sde, self.sigma_min, self.sigma_max, self.beta_min, self.beta_max)


def _bcast(v: Tensor, like: Tensor) -> Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))
