"""The Method interface, the shared pretraining loop, and the method registry.

A method learns from unlabelled images, then maps ``(x, t) -> z``. Every
method of a dataset shares the encoder family, latent size and budget (images
seen), so differences come from the objective alone. Methods are registered by
decorator, as timm registers models, and built from a plain dataclass config.

``encode`` takes raw uint8 images (the method owns its normalisation, so a
checkpoint's codes never depend on the caller) and runs the EMA encoder in
eval mode under ``torch.no_grad()``: BatchNorm statistics never move.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from timm.utils import ModelEmaV3
from torch import Tensor, nn

from core.data import ImageData
from core.presets import per_size
from core.registry import Registry
from core.validation import Checked, Choice, Integers, setting
from methods.nets.encoders import ENCODERS, create_encoder
from methods.training import Budget, History, TrainOptions
from methods.training import train as train_loop


@dataclass(frozen=True)
class DataSpec:
    """What a method must know of its data to build itself: shape and normalisation."""

    image_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


NATURAL_IMAGES = per_size(tiny=False, small=False, other=True)  # True above MNIST's 28 px


@dataclass(frozen=True)
class MethodConfig(Checked):
    """Fields every method shares: the encoder family and the latent size."""

    # quick: the DRL paper's small CNN up to MNIST's size, WRN-28-2 above; paper: WRN-28-2, and
    # LaplaceNet's ResNet-18 (512-d code) for Mini-ImageNet's 84x84 images.
    encoder: str = setting("cnn", Choice(ENCODERS), smoke="cnn",
                           quick=per_size(tiny="cnn", small="cnn", other="wrn28_2"),
                           paper=per_size(large="resnet18", other="wrn28_2"))
    encoder_width: int = setting(32, Integers(1), smoke=8, quick=per_size(tiny=32, other=16),
                                 paper=per_size(large=64, other=16))
    latent_dim: int = setting(64, Integers(1), smoke=16, quick=per_size(tiny=64, small=64, other=128),
                              paper=per_size(large=512, other=128))
    # random horizontal flips while pretraining (natural images only)
    hflip: bool = setting(False, smoke=False, quick=NATURAL_IMAGES, paper=NATURAL_IMAGES)


class Method:
    """Base class: subclasses build ``self.encoder`` (+ their own heads) and define ``loss``."""

    name: ClassVar[str]
    time_conditioned: ClassVar[bool]
    probabilistic: ClassVar[bool] = False  # the encoder outputs (mean, log-variance); codes are the mean
    pretrains: ClassVar[bool] = True  # False: fit learns nothing (the untrained baseline ``none``)
    config_cls: ClassVar[type[MethodConfig]] = MethodConfig
    # What an Optuna sweep tunes, in this order: the pretraining learning rate, then the method's own
    # knobs (``tuned``; a subclass inherits it, or extends it with ``{**Parent.tuned, ...}``). Declared
    # as data so a sweep, and a page, can say what each method was tuned over.
    LR_RANGE: ClassVar[BaseDistribution] = FloatDistribution(1e-4, 3e-3, log=True)
    tuned: ClassVar[dict[str, BaseDistribution]] = {}

    def __init__(self, cfg: MethodConfig, spec: DataSpec):
        self.cfg, self.spec = cfg, spec
        self.device = torch.device("cpu")
        self.modules = nn.ModuleDict(self.build())
        self.ema = ModelEmaV3(self.modules["encoder"], decay=0.0)  # decay set per fit from the budget
        c = spec.image_shape[0]
        self._mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, c, 1, 1)
        self._std = torch.tensor(spec.std, dtype=torch.float32).view(1, c, 1, 1)

    # -- to implement -------------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        """Return the trainable modules; one must be called ``encoder``."""
        raise NotImplementedError

    def loss(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """Training loss on what ``prepare`` made of a batch, and its named terms (detached tensors, read
        only when the loop reports them: no host-device sync per step)."""
        raise NotImplementedError

    def prepare(self, images: Tensor) -> Any:
        """Raw uint8 batch -> the input of ``loss``: normalised, flipped if configured."""
        return self.augment(self.normalise(images))

    def codes(self, encoder: nn.Module, x: Tensor, t: Tensor) -> Tensor:
        """The representation of normalised ``x`` at ``t`` from ``encoder`` (EMA copy at encode time)."""
        raise NotImplementedError

    def encoder_out_dim(self) -> int:
        return 2 * self.cfg.latent_dim if self.probabilistic else self.cfg.latent_dim

    def build_encoder(self) -> nn.Module:
        """The dataset's time-conditioned encoder at this method's output size. A probabilistic one
        always ends in its own Linear to (mean, log-variance), as the reference's does, whatever the
        widths: otherwise, when 2 * latent_dim equals the pooled width, the log-variance would be a
        post-ReLU value and the posterior std could never fall below 1."""
        cfg = self.cfg
        return create_encoder(cfg.encoder, self.spec.image_shape[0], self.encoder_out_dim(), cfg.encoder_width,
                              always_project=self.probabilistic)

    def point_code(self, encoder_out: Tensor) -> Tensor:
        """The representation from an encoder output: the mean for a probabilistic encoder."""
        return encoder_out[:, : self.cfg.latent_dim] if self.probabilistic else encoder_out

    def param_groups(self) -> list[dict[str, Any]]:
        """The optimiser's parameter groups (Adam at the budget's lr unless a group sets its own
        ``lr``, ``weight_decay``...): every trainable parameter of ``modules`` in one group. A method
        with a momentum target leaves the target out (it is updated in ``after_step``)."""
        return [{"params": [p for p in self.modules.parameters() if p.requires_grad]}]

    def after_step(self, step: int) -> None:
        """Called after every optimiser step and EMA update (``step`` counts from 0): a BYOL-like
        method updates its momentum target here. Nothing by default."""

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        """Settings an Optuna sweep may change, sampled from ``trial``: the pretraining learning rate
        and ``tuned``."""
        return {name: suggest(trial, name, space) for name, space in {"lr": cls.LR_RANGE, **cls.tuned}.items()}

    # -- shared machinery -----------------------------------------------------------------
    def to(self, device: torch.device | str) -> Method:
        self.device = torch.device(device)
        self.modules.to(self.device)
        self.ema.to(self.device)
        self._mean, self._std = self._mean.to(self.device), self._std.to(self.device)
        return self

    def normalise(self, x: Tensor) -> Tensor:
        x = x.to(self.device, non_blocking=True)
        if x.dtype == torch.uint8:
            return (x.float() / 255.0 - self._mean) / self._std
        return x

    def fit(self, train: ImageData, budget: Budget, progress: bool = True,
            on_step: Callable[[int], None] | None = None, options: TrainOptions | None = None,
            snapshot_path: Path | None = None, log: Callable[[str], None] | None = None) -> History:
        """Pretrain for ``budget.iterations`` steps (``methods.training.train``: resumable from
        ``snapshot_path``, mixed precision, several processes); ``on_step(steps_done)`` after each."""
        return train_loop(self, train, budget, options or TrainOptions(), progress=progress, on_step=on_step,
                          snapshot_path=snapshot_path, log=log)

    def augment(self, x: Tensor) -> Tensor:
        if self.cfg.hflip:
            flip = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x

    @torch.no_grad()
    def encode(self, x: Tensor, t: Tensor) -> Tensor:
        """(B, C, H, W) images, (B,) times in [0, 1] -> (B, d) codes, from the EMA encoder in eval mode."""
        encoder = self.ema.module
        encoder.eval()
        t = t.to(self.device, dtype=torch.float32)
        return self.codes(encoder, self.normalise(x), t).float()

    @torch.no_grad()
    def encode_times(self, x: Tensor, ts: Tensor) -> Tensor:
        """(B, C, H, W) images at each of K times -> (K, B, d), as ``encode`` of each t."""
        encoder = self.ema.module
        encoder.eval()
        ts = ts.to(self.device, dtype=torch.float32)
        return self.codes_times(encoder, self.normalise(x), ts).float().view(len(ts), len(x), -1)

    def codes_times(self, encoder: nn.Module, x: Tensor, ts: Tensor) -> Tensor:
        """``codes`` of normalised ``x`` at each of the K ``ts``, time-major (K * B, d): one forward
        of the batch repeated over t. Methods whose encoder can share work across t override it."""
        return self.codes(encoder, x.repeat(len(ts), 1, 1, 1), ts.repeat_interleave(len(x)))

    def state_dict(self) -> dict[str, Any]:
        return {"modules": self.modules.state_dict(), "ema": self.ema.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.modules.load_state_dict(state["modules"])
        self.ema.module.load_state_dict(state["ema"])

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.modules.parameters())


def gaussian_sample_and_kl(encoder_out: Tensor) -> tuple[Tensor, Tensor]:
    """Split (mean, log-variance), draw z by reparameterisation; per-sample KL to N(0, I)."""
    mean, log_var = encoder_out.chunk(2, dim=1)
    log_var = log_var.clamp(-30.0, 20.0)
    z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
    kl = 0.5 * (mean**2 + log_var.exp() - 1.0 - log_var).sum(dim=1)
    return z, kl


# -- registry --------------------------------------------------------------------------------
# Every module of ``methods`` is imported on the first look-up; their ``@register_method`` fill it.
METHODS: Registry[type[Method]] = Registry("method", package="methods")
register_method = METHODS.register
available_methods = METHODS.names
get_method_class = METHODS.get


def create_method(name: str, cfg: MethodConfig, spec: DataSpec) -> Method:
    return get_method_class(name)(cfg, spec)


def config_from_settings(cls: type, settings: dict[str, Any]) -> Any:
    """Build a config dataclass from the flat settings, taking only the fields it declares."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in settings.items() if k in names})


def suggest(trial: Any, name: str, space: BaseDistribution) -> Any:
    """Sample ``name`` from ``space`` through the trial's public API (float or categorical)."""
    if isinstance(space, CategoricalDistribution):
        return trial.suggest_categorical(name, list(space.choices))
    if isinstance(space, FloatDistribution):
        return trial.suggest_float(name, space.low, space.high, log=space.log, step=space.step)
    raise TypeError(f"{name}: unsupported search space {space!r}; valid: FloatDistribution, CategoricalDistribution")
