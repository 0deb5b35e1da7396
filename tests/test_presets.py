"""Presets are declared on the config fields themselves and gathered per image size."""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks import presets
from benchmarks.presets import PRESETS, config_classes, preset_settings, settings_with
from core.presets import per_size, preset_values
from core.validation import Checked, setting
from methods.base import config_from_settings
from protocols.probe import ProbeConfig

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 84, 84)]  # digits, MNIST, CIFAR-10, Mini-ImageNet


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_builds_a_valid_config_of_every_component(preset, shape):
    settings = settings_with(preset, shape, {})
    fields = {f.name for cls in config_classes() for f in dataclasses.fields(cls)}
    assert set(settings) <= fields, "every preset value lands in a field"
    for cls in config_classes():
        config_from_settings(cls, settings)  # each field's declared check runs on the preset's value


def test_the_image_size_picks_the_value():
    assert [preset_settings("quick", s)["encoder"] for s in SHAPES] == ["cnn", "cnn", "wrn28_2", "wrn28_2"]
    assert [preset_settings("paper", s)["latent_dim"] for s in SHAPES] == [128, 128, 128, 512]
    assert [preset_settings("quick", s)["probe_epochs"] for s in SHAPES] == [100, 60, 60, 60]
    assert preset_settings("quick", (3, 32, 32))["score_mults"] == (1, 2, 2, 2)
    assert preset_settings("smoke", (3, 32, 32))["score_mults"] == (1, 2)


def test_a_field_that_a_preset_does_not_name_keeps_its_default():
    settings = preset_settings("quick", (1, 28, 28))
    assert "probe_head_seeds" not in settings
    assert config_from_settings(ProbeConfig, settings).probe_head_seeds == 1


def test_per_size_needs_a_value_for_every_size_or_other():
    with pytest.raises(ValueError, match="no value for natural, large; give them or other="):
        per_size(tiny=1, small=2)
    assert per_size(tiny=1, other=2)((3, 32, 32)) == 2


def test_an_unknown_preset_name_is_refused():
    with pytest.raises(ValueError, match="unknown preset 'fast'; valid: smoke, quick, paper"):
        preset_values(fast=1)


def test_two_components_that_preset_one_setting_differently_are_refused(monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class One(Checked):
        width: int = setting(1, smoke=2)

    @dataclasses.dataclass(frozen=True)
    class Other(Checked):
        width: int = setting(1, smoke=3)

    monkeypatch.setattr(presets, "config_classes", lambda: [One, Other])
    with pytest.raises(RuntimeError, match="Other.width is 3, another component's width is 2"):
        preset_settings("smoke", (1, 8, 8))
