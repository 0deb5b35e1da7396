"""DRL and VDRL: representations learned by conditioning a score network on E(x0, t).

The encoder sees the *clean* image and the diffusion time; its code z
conditions the score network s(x_t, t, z), trained by denoising score matching:

    lambda(t) * || s(x_t, t, z) - grad log p_0t(x_t | x0) ||^2  +  regulariser(z)

DRL's encoder is deterministic with an L1 penalty on z; VDRL's is
probabilistic (mean and log-variance), reparameterised in training, with a KL
to N(0, I), and encodes with its mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution
from torch import Tensor, nn

from core.validation import setting
from methods.base import Method, gaussian_sample_and_kl, register_method
from methods.nets.score_unet import ScoreUNet
from methods.sde import SDE_CHOICE, SDEConfig


def unet_levels(shape: tuple[int, int, int]) -> tuple[int, ...]:
    """U-Net channel multipliers: halve the resolution while it stays >= 4 pixels (at most 4 levels)."""
    levels = 1
    while levels < 4 and shape[1] / 2**levels >= 4:
        levels += 1
    return (1,) + (2,) * (levels - 1)


@dataclass(frozen=True)
class DiffusionConfig(SDEConfig):
    """A forward SDE, how t is drawn, and the conditional U-Net that reads x_t."""

    # Paper: width 20 matches the reference NCSN++-small on CIFAR-10 in cost and size, 235.6 GFLOP
    # per training step of 100 images (encoder included; the reference's 233.5) and a 1.29 M-parameter
    # score network (its 1.3 M), counted by torch's FlopCounterMode (tests.perf.throughput).
    score_width: int = setting(32, smoke=8, quick=16, paper=20)
    score_mults: tuple[int, ...] = setting((1, 2, 2), smoke=lambda shape: unet_levels(shape)[:2],
                                           quick=unet_levels, paper=unet_levels)
    score_blocks: int = setting(1, smoke=1, quick=1, paper=2)
    score_dropout: float = setting(0.1, smoke=0.0, quick=0.1, paper=0.1)
    # resolutions with self-attention (the paper: 16)
    score_attn: tuple[int, ...] = setting((), smoke=(), quick=(), paper=(16,))
    score_z_map: bool = True           # the reference's second path for z: a feature map at the bottleneck


@dataclass(frozen=True)
class DRLConfig(DiffusionConfig):
    reg_weight: float = 1e-5           # L1 on z (DRL) or KL weight (VDRL)


class DiffusionMethod(Method):
    """A method trained on x_t: the encoder E(x0, t) of the clean image and a U-Net that reads
    x_t conditioned on its code, stored under ``unet_name``. Only the U-Net's target differs
    between the methods built on it (DRL's score, CDAE's clean image)."""

    time_conditioned = True
    config_cls = DiffusionConfig
    unet_name = "score"

    def build(self) -> dict[str, nn.Module]:
        cfg: DiffusionConfig = self.cfg
        self.sde = cfg.create_sde()
        c, h, _ = self.spec.image_shape
        encoder = self.build_encoder()  # first: the order of construction fixes each network's initial weights
        unet = ScoreUNet(c, cfg.latent_dim, cfg.score_width, cfg.score_mults, cfg.score_blocks,
                         cfg.score_dropout, cfg.score_attn, image_size=h, z_map=cfg.score_z_map)
        return {"encoder": encoder, self.unet_name: unet}


@register_method
class DRL(DiffusionMethod):
    name = "drl"
    config_cls = DRLConfig

    tuned = {"reg_weight": FloatDistribution(1e-7, 1e-3, log=True),
             "t_sampling": CategoricalDistribution(["uniform", "sigma-uniform"])}

    def _encode_train(self, x0: Tensor, level: Tensor) -> tuple[Tensor, Tensor]:
        """Code used to condition the score net, and the regulariser on it (per sample)."""
        z = self.modules["encoder"](x0, level)
        return z, z.abs().sum(dim=1)

    def loss(self, x0: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        cfg: DRLConfig = self.cfg
        t = self.sde.sample_t(x0.shape[0], cfg.t_sampling, device=x0.device)
        level, std = self.sde.noise_level(t), self.sde.std(t)
        z, reg = self._encode_train(x0, level)
        noise = torch.randn_like(x0)
        x_t = self.sde.marginal(x0, t, noise)
        score = self.modules["score"](x_t, level, z, std)
        # lambda(t) ||s - (-noise/std)||^2 with lambda = std^2 is ||std * s + noise||^2.
        dsm = ((std.view(-1, 1, 1, 1) * score + noise) ** 2).flatten(1).sum(dim=1).mean()
        reg = reg.mean()
        loss = dsm + cfg.reg_weight * reg
        return loss, {"loss": loss.detach(), "dsm": dsm.detach(), "reg": reg.detach()}

    def codes(self, encoder: nn.Module, x: Tensor, t: Tensor) -> Tensor:
        return self.point_code(encoder(x, self.sde.noise_level(t)))

    def codes_times(self, encoder: nn.Module, x: Tensor, ts: Tensor) -> Tensor:
        # The part of the encoder before t enters runs once per image.
        return self.point_code(encoder.forward_times(x, self.sde.noise_level(ts)))


@register_method
class VDRL(DRL):
    name = "vdrl"
    probabilistic = True

    def _encode_train(self, x0: Tensor, level: Tensor) -> tuple[Tensor, Tensor]:
        return gaussian_sample_and_kl(self.modules["encoder"](x0, level))


@dataclass(frozen=True)
class VPConfig(DRLConfig):
    sde: str = setting("vp", SDE_CHOICE)  # a redeclared field keeps its parent's check only if it says so


@register_method
class DRLVP(DRL):
    """DRL on the VP SDE: the paper's ablation (its released code cannot run it)."""

    name = "drl-vp"
    config_cls = VPConfig


@register_method
class VDRLVP(VDRL):
    name = "vdrl-vp"
    config_cls = VPConfig
