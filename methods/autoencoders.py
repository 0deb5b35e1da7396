"""Autoencoder baselines of the DRL paper: AE, VAE, DAE and CDAE.

All four use the dataset's encoder family and latent size, and draw t as DRL
does, so their per-t curves compare with DRL's:

- ``ae``: E(x0, t) -> decoder -> x0 (squared error). t carries no information
  about the task here: the paper shows the curve is flat.
- ``vae``: probabilistic E(x0, t), ELBO with a KL to N(0, I); encodes with the mean.
- ``dae``: encodes the *noisy* x_t = x0 + sigma(t) * eps (VE marginal) and
  decodes x0. Its code at t is the encoding of a noisy image, with noise drawn
  from a fixed bank keyed by the image (deterministic, independent of the
  batch, the same draw at every t), so accuracy falls as t grows.
- ``cdae``: a one-step denoiser: the U-Net of DRL reads x_t and, through its
  embedding path, the code E(x0, t) of the clean image, and predicts x0
  directly (DRL predicts the score). Its code at t is E(x0, t).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from optuna.distributions import FloatDistribution
from torch import Tensor, nn

from methods.base import Method, gaussian_sample_and_kl, register_method
from methods.drl import DiffusionMethod
from methods.nets.decoders import ConvDecoder
from methods.sde import SDEConfig

NOISE_BANK_SIZE = 1024
NOISE_BANK_SEED = 20240917


@dataclass(frozen=True)
class AutoencoderConfig(SDEConfig):
    """The SDE gives sigma(t) (DAE's noise) and the noise level the encoder embeds."""


@dataclass(frozen=True)
class VAEConfig(AutoencoderConfig):
    kl_weight: float = 1.0


def _reconstruction_error(x_hat: Tensor, x0: Tensor) -> Tensor:
    """Squared error summed over pixels, averaged over the batch (a Gaussian log-likelihood up to constants)."""
    return ((x_hat - x0) ** 2).flatten(1).sum(dim=1).mean()


class _Autoencoder(Method):
    time_conditioned = True
    config_cls = AutoencoderConfig

    def build(self) -> dict[str, nn.Module]:
        cfg = self.cfg
        self.sde = cfg.create_sde()
        c, h, _ = self.spec.image_shape
        encoder = self.build_encoder()
        decoder = ConvDecoder(cfg.latent_dim, c, h, encoder.stage_widths)
        return {"encoder": encoder, "decoder": decoder}

    def _sample_t(self, x0: Tensor) -> Tensor:
        return self.sde.sample_t(x0.shape[0], self.cfg.t_sampling, device=x0.device)

    def codes(self, encoder: nn.Module, x: Tensor, t: Tensor) -> Tensor:
        return self.point_code(encoder(x, self.sde.noise_level(t)))


@register_method
class AE(_Autoencoder):
    name = "ae"

    def loss(self, x0: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        t = self._sample_t(x0)
        z = self.modules["encoder"](x0, self.sde.noise_level(t))
        loss = _reconstruction_error(self.modules["decoder"](z), x0)
        return loss, {"loss": loss.detach()}


@register_method
class VAE(_Autoencoder):
    name = "vae"
    probabilistic = True
    config_cls = VAEConfig

    tuned = {"kl_weight": FloatDistribution(1e-3, 10.0, log=True)}

    def loss(self, x0: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        t = self._sample_t(x0)
        z, kl = gaussian_sample_and_kl(self.modules["encoder"](x0, self.sde.noise_level(t)))
        recon = _reconstruction_error(self.modules["decoder"](z), x0)
        kl = kl.mean()
        loss = recon + self.cfg.kl_weight * kl
        return loss, {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}


@register_method
class DAE(_Autoencoder):
    name = "dae"

    def loss(self, x0: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        t = self._sample_t(x0)
        x_t = self.sde.marginal(x0, t, torch.randn_like(x0))
        z = self.modules["encoder"](x_t, self.sde.noise_level(t))
        loss = _reconstruction_error(self.modules["decoder"](z), x0)
        return loss, {"loss": loss.detach()}

    def codes(self, encoder: nn.Module, x: Tensor, t: Tensor) -> Tensor:
        return encoder(self.sde.marginal(x, t, self.eval_noise(x)), self.sde.noise_level(t))

    def eval_noise(self, x: Tensor) -> Tensor:
        """Noise for evaluation: a fixed bank of draws, one picked per image by a hash of its pixels."""
        bank = getattr(self, "_bank", None)
        if bank is None or bank.shape[1:] != x.shape[1:] or bank.device != x.device:
            g = torch.Generator().manual_seed(NOISE_BANK_SEED)
            bank = torch.randn((NOISE_BANK_SIZE, *x.shape[1:]), generator=g).to(x.device)
            self._bank = bank
        weights = torch.arange(1, x[0].numel() + 1, device=x.device, dtype=torch.float64).sin()
        key = (x.flatten(1).double() * weights).sum(dim=1)
        index = (key.abs() * 1e4).long() % NOISE_BANK_SIZE
        return bank[index]


@register_method
class CDAE(DiffusionMethod):
    name = "cdae"
    unet_name = "denoiser"  # DRL's networks: the U-Net predicts the clean image instead of the score

    def loss(self, x0: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        t = self.sde.sample_t(x0.shape[0], self.cfg.t_sampling, device=x0.device)
        level = self.sde.noise_level(t)
        z = self.modules["encoder"](x0, level)
        x_t = self.sde.marginal(x0, t, torch.randn_like(x0))
        x0_hat = self.modules["denoiser"](x_t, level, z, std=None)  # x0 in one step, not the score
        loss = _reconstruction_error(x0_hat, x0)
        return loss, {"loss": loss.detach()}

    def codes(self, encoder: nn.Module, x: Tensor, t: Tensor) -> Tensor:
        return encoder(x, self.sde.noise_level(t))
