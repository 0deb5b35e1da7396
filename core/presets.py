"""Preset values declared on the config fields themselves.

A field says what each named preset sets it to, beside its default and its check::

    probe_epochs: int = setting(100, Integers(1), smoke=10, quick=per_size(tiny=200, other=100))

A value is a constant, a ``per_size(...)`` choice by image size, or any callable of the image
shape ``(C, H, W)``. ``benchmarks.presets`` gathers the declared values of every registered
component into one flat mapping per preset; a field that a preset does not name keeps its
default there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PRESET_NAMES = ("smoke", "quick", "paper")

Shape = tuple[int, int, int]
UNSET: Any = object()  # "this preset does not name the field"


def image_size(shape: Shape) -> str:
    """The size class of square images: tiny (<= 8 px, digits), small (<= 28, MNIST), natural
    (< 64, CIFAR) or large (Mini-ImageNet's 84)."""
    side = shape[1]
    if side <= 8:
        return "tiny"
    if side <= 28:
        return "small"
    return "natural" if side < 64 else "large"


@dataclass(frozen=True)
class PerSize:
    """A value per image size class; ``other`` stands for every class not given."""

    values: tuple[tuple[str, Any], ...]
    other: Any

    def __call__(self, shape: Shape) -> Any:
        return dict(self.values).get(image_size(shape), self.other)


def per_size(*, tiny: Any = UNSET, small: Any = UNSET, natural: Any = UNSET, large: Any = UNSET,
             other: Any = UNSET) -> PerSize:
    given = {"tiny": tiny, "small": small, "natural": natural, "large": large}
    values = tuple((k, v) for k, v in given.items() if v is not UNSET)
    if other is UNSET and len(values) < len(given):
        missing = ", ".join(k for k, v in given.items() if v is UNSET)
        raise ValueError(f"per_size: no value for {missing}; give them or other=")
    return PerSize(values, other)


def preset_values(**presets: Any) -> dict[str, Any]:
    """The field metadata of the preset values given as keywords (names from ``PRESET_NAMES``)."""
    unknown = [name for name in presets if name not in PRESET_NAMES]
    if unknown:
        raise ValueError(f"unknown preset {unknown[0]!r}; valid: {', '.join(PRESET_NAMES)}")
    return {name: value for name, value in presets.items() if value is not UNSET}


def field_preset(field: dataclasses.Field, preset: str, shape: Shape) -> Any:
    """What ``preset`` sets ``field`` to for images of ``shape``; ``UNSET`` when it does not name it."""
    value = field.metadata.get("presets", {}).get(preset, UNSET)
    if value is UNSET:
        return UNSET
    return value(shape) if isinstance(value, Callable) else value
