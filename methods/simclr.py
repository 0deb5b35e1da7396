"""Contrastive baselines: SimCLR and SimCLR-Gauss, from lightly's building blocks.

Both train the dataset's encoder (without a time path: ``time_conditioned =
False``, so their codes cannot depend on t) with a ``SimCLRProjectionHead`` and
the ``NTXentLoss`` on two views of each image. They differ only in how views
are made:

- ``simclr``: lightly's ``SimCLRTransform`` (random resized crop, colour
  jitter, grey scale, blur, flips only for natural images), sized for the
  dataset and normalised with its statistics, so it works on one channel.
  ``augment_backend`` picks who runs it: ``lightly`` (the default, the
  follow-up's code: per image on the CPU) or ``kornia`` (the same steps and
  parameters batched on the method's device, ``methods.augmentations``);
- ``simclr-gauss``: additive pixel-wise Gaussian noise of std ``gauss_std``
  (on normalised pixels) and nothing else, the DRL paper's restricted baseline.
  The default std, 1.0, was chosen on the validation split of digits among
  {0.1, 0.3, 1.0, 3.0} (mean validation accuracy of the linear and MLP probes:
  0.976, 0.981, 0.987, 0.957), with, for each value,
  ``python -m benchmarks run --method simclr-gauss --protocol probe --set gauss_std=V``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from lightly.transforms import SimCLRTransform
from optuna.distributions import FloatDistribution
from torch import Tensor, nn

from core.validation import Choice, setting
from methods.augmentations import KorniaSimCLRTransform
from methods.base import Method, MethodConfig, register_method
from methods.nets.encoders import create_encoder


@dataclass(frozen=True)
class ContrastiveConfig(MethodConfig):
    temperature: float = 0.5
    projection_dim: int = 128


# lightly's GaussianBlur calls torchvision's deprecated ``to_tensor`` on each image, printing a warning
# in every simclr run that only lightly can act on.
warnings.filterwarnings("ignore", message="The function `to_tensor", category=UserWarning,
                        module=r"torchvision\.transforms")

# lightly: per image on the CPU (the follow-up's code); kornia: the same pipeline batched on the device.
AUGMENT_BACKENDS = ("lightly", "kornia")


@dataclass(frozen=True)
class SimCLRConfig(ContrastiveConfig):
    crop_min_scale: float = 0.08  # lower bound of the random resized crop's area
    augment_backend: str = setting("lightly", Choice(AUGMENT_BACKENDS))  # explicit, never chosen by device


@dataclass(frozen=True)
class SimCLRGaussConfig(ContrastiveConfig):
    gauss_std: float = 1.0  # std of the additive noise on normalised pixels (chosen on digits validation)


class _Contrastive(Method):
    time_conditioned = False

    def build(self) -> dict[str, nn.Module]:
        cfg: ContrastiveConfig = self.cfg
        c = self.spec.image_shape[0]
        encoder = create_encoder(cfg.encoder, c, cfg.latent_dim, cfg.encoder_width, time_conditioned=False)
        head = SimCLRProjectionHead(cfg.latent_dim, cfg.latent_dim, cfg.projection_dim)
        # Under torchrun every rank's views meet the negatives of the whole global batch, as in one process.
        self.criterion = NTXentLoss(temperature=cfg.temperature, gather_distributed=True)
        return {"encoder": encoder, "projection": head}

    tuned = {"temperature": FloatDistribution(0.05, 1.0, log=True)}

    def loss(self, views: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        both = torch.cat(views)  # one forward: BatchNorm sees both views together
        projected = self.modules["projection"](self.modules["encoder"](both))
        loss = self.criterion(*projected.chunk(2))
        return loss, {"loss": loss.detach()}

    def codes(self, encoder: nn.Module, x: Tensor, t: Tensor) -> Tensor:
        return encoder(x)  # no time path: the code is the same at every t


def simclr_transform_kwargs(image_shape: tuple[int, int, int], mean: Sequence[float], std: Sequence[float],
                            cfg: SimCLRConfig) -> dict[str, Any]:
    """lightly's SimCLRTransform keywords for these images; both backends take them, so they cannot drift."""
    c, h, _ = image_shape
    grey = c == 1
    return dict(
        input_size=h, min_scale=cfg.crop_min_scale, hf_prob=0.5 if cfg.hflip else 0.0,
        cj_sat=0.0 if grey else 0.8, cj_hue=0.0 if grey else 0.2,
        random_gray_scale=0.0 if grey else 0.2,
        normalize={"mean": list(mean), "std": list(std)},
    )


@register_method
class SimCLR(_Contrastive):
    name = "simclr"
    config_cls = SimCLRConfig

    def build(self) -> dict[str, nn.Module]:
        cfg: SimCLRConfig = self.cfg
        params = simclr_transform_kwargs(self.spec.image_shape, self.spec.mean, self.spec.std, cfg)
        if cfg.augment_backend == "kornia":
            self.transform = KorniaSimCLRTransform(**params)  # runs where the batch is
        else:
            self.transform = SimCLRTransform(**params)
        return super().build()

    def to(self, device: torch.device | str) -> SimCLR:
        super().to(device)
        if isinstance(self.transform, nn.Module):  # kornia draws its parameters where the module is
            self.transform.to(self.device)
        return self

    def prepare(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if self.cfg.augment_backend == "kornia":
            return self.transform(images.to(self.device, non_blocking=True))
        pairs = [self.transform(img) for img in images.cpu()]  # lightly's per-image transforms
        return tuple(torch.stack([p[i] for p in pairs]).to(self.device) for i in (0, 1))


@register_method
class SimCLRGauss(_Contrastive):
    name = "simclr-gauss"
    config_cls = SimCLRGaussConfig

    tuned = {**_Contrastive.tuned, "gauss_std": FloatDistribution(0.05, 2.0, log=True)}

    def prepare(self, images: Tensor) -> tuple[Tensor, Tensor]:
        x = self.normalise(images)
        std = self.cfg.gauss_std
        return x + std * torch.randn_like(x), x + std * torch.randn_like(x)
