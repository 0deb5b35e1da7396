"""Presets: named, complete settings for a run, scaled to the dataset.

A run's settings are one flat mapping of ``key -> value``; every config
dataclass (the method's, the budget, each protocol's) takes the keys it
declares. A preset fills every key for a given image size, and ``--set
key=value`` overrides any of them, typed by the field it lands in.

- ``smoke``: seconds, for the tests.
- ``quick``: CPU minutes; the default.
- ``paper``: the papers' settings for a GPU (WRN-28-2, latent 128, batch 100,
  70k iterations, NCSN++-small score net, the follow-up's probe grid).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable
from typing import Any

from protocols.base import DEFAULT_T_VALUES
from protocols.logistic import DEFAULT_CS


def _levels(size: int) -> tuple[int, ...]:
    """U-Net channel multipliers: halve the resolution while it stays >= 4 pixels (at most 4 levels)."""
    levels = 1
    while levels < 4 and size / 2**levels >= 4:
        levels += 1
    return (1,) + (2,) * (levels - 1)


def _small_images(image_shape: tuple[int, int, int]) -> bool:
    return image_shape[1] <= 28


def smoke(image_shape: tuple[int, int, int]) -> dict[str, Any]:
    return {
        "encoder": "cnn", "encoder_width": 8, "latent_dim": 16, "hflip": False,
        "score_width": 8, "score_mults": _levels(image_shape[1])[:2], "score_blocks": 1,
        "score_dropout": 0.0, "score_attn": (),
        "iterations": 20, "batch_size": 32, "lr": 1e-3, "warmup": 5, "grad_clip": 1.0,
        "ema_decay": 0.9,
        "t_values": (0.0, 0.5, 1.0), "heads": ("linear", "mlp"), "probe_Cs": (0.1, 1.0, 10.0), "probe_lrs": (1e-2,),
        "probe_epochs": 10, "probe_patience": 5, "probe_max_iter": 200, "probe_batch_size": 64, "probe_hidden": 32, "probe_dropout": 0.25,
        "probe_weight_decay": 1e-5, "svm_labels": (30, 60), "svm_draws": 2,
        "trajectory_points": (1, 2, 3), "trajectory_lrs": (1e-2,), "trajectory_epochs": 5,
        "trajectory_batch_size": 64, "trajectory_width": 8, "transformer_heads": 2,
        "attention_points": 3, "mi_samples": 45,
        "semisup_warmup_epochs": 10, "semisup_rounds": 3, "semisup_batch_size": 32,
        "semisup_labelled_batch": 8, "semisup_aug_num": 1, "semisup_k": 10, "semisup_align_iterations": 10,
    }


def quick(image_shape: tuple[int, int, int]) -> dict[str, Any]:
    # Sized by measurement on one CPU core: digits pretrains in about 2 minutes, MNIST in about 8
    # (0.45 s per MNIST step of 64 images); encoding MNIST at 11 t takes about 6 more.
    size = image_shape[1]
    tiny, small = size <= 8, _small_images(image_shape)
    return {
        "encoder": "cnn" if small else "wrn28_2", "encoder_width": 32 if tiny else 16,
        "latent_dim": 64 if small else 128, "hflip": not small,
        "score_width": 16, "score_mults": _levels(size), "score_blocks": 1,
        "score_dropout": 0.1, "score_attn": (),
        # The reference's optimiser (Adam 2e-4, warm-up over 5/70 of the steps: settings_with) for
        # every method.
        "iterations": 1000, "batch_size": 128 if tiny else 64, "lr": 2e-4,
        "warmup": warmup_for(1000), "grad_clip": 1.0, "ema_decay": 0.995,
        # The linear head is solved to convergence over an L2 grid; the MLP heads stop early on
        # validation, with a learning rate grid whose ends are rarely chosen. On MNIST 40 epochs
        # left 7 of DRL's 11 best epochs in the last 6: the limit is 100, early stopping ends sooner.
        "t_values": DEFAULT_T_VALUES, "heads": ("linear", "mlp"), "probe_Cs": DEFAULT_CS,
        "probe_lrs": (1e-3, 3e-3, 1e-2, 3e-2), "probe_epochs": 200 if tiny else 100, "probe_patience": 15 if tiny else 8,
        "probe_batch_size": 256,
        "probe_hidden": 512, "probe_dropout": 0.25, "probe_weight_decay": 1e-5,
        # Three learning rates, so a choice at an end of the grid means something; early stopping, so
        # a head still improving at the epoch limit is rare (with two rates and 30 epochs on digits
        # every choice sat at an end).
        "trajectory_lrs": (1e-3, 3e-3, 1e-2), "trajectory_epochs": 60 if tiny else 20,
        "trajectory_patience": 10 if tiny else 4,
        "trajectory_batch_size": 256, "trajectory_width": 64,
        # The heads cost O(K) per image: on a CPU they learn from 10000 labelled images at most.
        "trajectory_train_images": 0 if tiny else 10_000,
        # LaplaceNet cut to CPU minutes: 30 warm-up epochs, 15 rounds, one augmented copy; on MNIST a
        # pool of 10000 training images (labelled ones included) rather than 54000.
        "semisup_warmup_epochs": 30, "semisup_rounds": 15, "semisup_batch_size": 64,
        "semisup_labelled_batch": 16, "semisup_aug_num": 1, "semisup_train_images": 0 if tiny else 10_000,
    }


def paper(image_shape: tuple[int, int, int]) -> dict[str, Any]:
    # Mini-ImageNet's 84x84 images get LaplaceNet's ResNet-18 (512-d code); the rest WRN-28-2.
    large = image_shape[1] >= 64
    return {
        "encoder": "resnet18" if large else "wrn28_2", "encoder_width": 64 if large else 16,
        "latent_dim": 512 if large else 128,
        "hflip": not _small_images(image_shape),
        # Width 20 matches the reference NCSN++-small on CIFAR-10 in cost and size: 235.6 GFLOP per
        # training step of 100 images (encoder included; the reference's 233.5) and a 1.29 M-parameter
        # score network (its 1.3 M), counted by torch's FlopCounterMode (tests.perf.throughput).
        "score_width": 20, "score_mults": _levels(image_shape[1]), "score_blocks": 2,
        "score_dropout": 0.1, "score_attn": (16,),
        "iterations": 70_000, "batch_size": 100, "lr": 2e-4, "warmup": 5000, "grad_clip": 1.0,
        "ema_decay": 0.999,
        "t_values": DEFAULT_T_VALUES, "heads": ("linear", "mlp"), "probe_Cs": DEFAULT_CS,
        "probe_lrs": (1e-3, 7.5e-4, 5e-4, 2.5e-4, 1e-4, 5e-5), "probe_epochs": 100, "probe_patience": 10,
        "probe_batch_size": 256, "probe_hidden": 512, "probe_dropout": 0.25,
        "probe_weight_decay": 1e-5,
        # The follow-up's trajectory heads: width 256, 100 epochs, the probe's lr grid.
        "trajectory_lrs": (1e-3, 7.5e-4, 5e-4, 2.5e-4, 1e-4, 5e-5), "trajectory_epochs": 100,
        "trajectory_batch_size": 256, "trajectory_width": 256,
        # LaplaceNet as the DRL paper ran it (Appendix G): 100 supervised warm-up epochs, 260 rounds,
        # LaplaceNet's batch of 100 with 16 labelled, 3 augmented copies, the whole training split.
        "semisup_warmup_epochs": 100, "semisup_rounds": 260, "semisup_batch_size": 100,
        "semisup_labelled_batch": 16, "semisup_aug_num": 3, "semisup_train_images": 0,
    }


# The reference warms the learning rate up over 5k of its 70k steps; quick and paper keep that ratio
# at any --set iterations=N (unless warmup is set too).
REFERENCE_WARMUP_FRACTION = 5_000 / 70_000
SCALED_WARMUP_PRESETS = ("quick", "paper")


def warmup_for(iterations: int) -> int:
    return round(iterations * REFERENCE_WARMUP_FRACTION)


def settings_with(name: str, image_shape: tuple[int, int, int], overrides: dict[str, Any]) -> dict[str, Any]:
    """The preset's settings with ``overrides`` applied, the warm-up scaled to the budget."""
    settings = {**preset_settings(name, image_shape), **overrides}
    if name in SCALED_WARMUP_PRESETS and "warmup" not in overrides:
        settings["warmup"] = warmup_for(settings["iterations"])
    return settings


PRESETS: dict[str, Callable[[tuple[int, int, int]], dict[str, Any]]] = {
    "smoke": smoke, "quick": quick, "paper": paper,
}


class SettingError(ValueError):
    """A bad preset name or ``--set`` override; the message is one line for the user."""


def preset_settings(name: str, image_shape: tuple[int, int, int]) -> dict[str, Any]:
    if name not in PRESETS:
        raise SettingError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name](image_shape)


def parse_overrides(pairs: Iterable[str], config_classes: Iterable[type]) -> dict[str, Any]:
    """``["latent_dim=2", "heads=linear"]`` -> typed values, checked against the config fields."""
    config_classes = list(config_classes)
    types = _field_types(config_classes)
    # A config may name settings it does not take, with what to do instead (SETTING_HINTS).
    hints = {k: v for cls in config_classes for k, v in getattr(cls, "SETTING_HINTS", {}).items()}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SettingError(f"malformed --set {pair!r}; expected key=value")
        if key not in types and key in hints:
            raise SettingError(f"--set {pair}: {hints[key]}")
        if key not in types:
            raise SettingError(f"unknown setting {key!r} in --set {pair!r}; valid: {', '.join(sorted(types))}")
        out[key] = _convert(key, raw.strip(), types[key])
    return out


def canonical_variant(overrides: dict[str, Any]) -> str:
    """The overrides as a stable ``k=v; k=v`` label (empty when the preset is used as is)."""
    return "; ".join(f"{k}={_format(v)}" for k, v in sorted(overrides.items()))


def _format(v: Any) -> str:
    if isinstance(v, tuple):
        return ",".join(_format(x) for x in v)
    return str(v).lower() if isinstance(v, bool) else str(v)


def _field_types(config_classes: Iterable[type]) -> dict[str, Any]:
    types: dict[str, Any] = {}
    for cls in config_classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            types[f.name] = hints[f.name]
    return types


def _convert(key: str, raw: str, annotation: Any) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is tuple:
        item_type = args[0] if args else str
        items = [s for s in raw.split(",") if s.strip()]
        return tuple(_convert(key, s.strip(), item_type) for s in items)
    if annotation is bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingError(f"--set {key}={raw!r}: expected a boolean (true or false)")
    if annotation in (int, float):
        try:
            return annotation(raw)
        except ValueError:
            raise SettingError(f"--set {key}={raw!r}: expected {annotation.__name__}") from None
    return raw
