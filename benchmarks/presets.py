"""Presets: named, complete settings for a run, scaled to the dataset.

A run's settings are one flat mapping of ``key -> value``; every config
dataclass (the method's, the budget, each protocol's) takes the keys it
declares. Each field declares what every preset sets it to (``core.presets``);
this module only gathers those declarations from every registered component,
for a given image size. ``--set key=value`` overrides any of them, typed by
the field it lands in.

- ``smoke``: seconds, for the tests.
- ``quick``: CPU minutes; the default.
- ``paper``: the papers' settings for a GPU (WRN-28-2, latent 128, batch 100,
  70k iterations, NCSN++-small score net, the follow-up's probe grid).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable
from typing import Any

from core.presets import PRESET_NAMES, UNSET, Shape, field_preset
from methods.base import Budget, TrainOptions, available_methods, get_method_class
from methods.training import warmup_for
from protocols.base import available_protocols, create_protocol

PRESETS = PRESET_NAMES
# quick and paper keep the reference's warm-up fraction at any --set iterations=N (unless warmup is set too).
SCALED_WARMUP_PRESETS = ("quick", "paper")


def settings_with(name: str, image_shape: Shape, overrides: dict[str, Any]) -> dict[str, Any]:
    """The preset's settings with ``overrides`` applied, the warm-up scaled to the budget."""
    settings = {**preset_settings(name, image_shape), **overrides}
    if name in SCALED_WARMUP_PRESETS and "warmup" not in overrides:
        settings["warmup"] = warmup_for(settings["iterations"])
    return settings


def config_classes() -> list[type]:
    """Every config dataclass a run can build: each registered method's and protocol's, and the budget's."""
    classes = [get_method_class(m).config_cls for m in available_methods()] + [Budget, TrainOptions]
    return classes + [create_protocol(p).config_cls for p in available_protocols()]


class SettingError(ValueError):
    """A bad preset name or ``--set`` override; the message is one line for the user."""


def preset_settings(name: str, image_shape: Shape) -> dict[str, Any]:
    """Every value preset ``name`` declares on a field of a registered component, for ``image_shape``."""
    if name not in PRESETS:
        raise SettingError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    settings: dict[str, Any] = {}
    for cls in config_classes():
        for f in dataclasses.fields(cls):
            value = field_preset(f, name, image_shape)
            if value is UNSET:
                continue
            if f.name in settings and settings[f.name] != value:  # two components' fields share a name
                raise RuntimeError(f"preset {name}: {cls.__name__}.{f.name} is {value!r}, another "
                                   f"component's {f.name} is {settings[f.name]!r}; one setting, one value")
            settings[f.name] = value
    return settings


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
