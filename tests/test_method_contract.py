"""Contract tests generated for every registered method: register a method and it is tested here."""

import copy
import dataclasses
import random

import numpy as np
import pytest
import torch

from methods.base import available_methods, get_method_class
from tests.conftest import smoke_method

METHODS = available_methods()


@pytest.fixture(scope="module")
def fitted(toy_data):
    """Each method fitted once on the toy data with the smoke budget."""
    cache = {}

    def get(name):
        if name not in cache:
            method, budget = smoke_method(name, toy_data)
            history = method.fit(toy_data.train, budget, progress=False)
            cache[name] = (method, history)
        return cache[name]

    return get


def _t(n, value):
    return torch.full((n,), value)


@pytest.mark.parametrize("name", METHODS)
def test_registered_with_the_interface(name, toy_data):
    cls = get_method_class(name)
    assert cls.name == name
    assert isinstance(cls.time_conditioned, bool)
    assert "encoder" in smoke_method(name, toy_data)[0].modules


@pytest.mark.parametrize("name", METHODS)
def test_fit_reports_history(name, fitted):
    _, history = fitted(name)
    if not get_method_class(name).pretrains:  # the untrained baseline: fit learns nothing, says so
        assert history.steps == 0 and not history.losses
        return
    assert history.steps > 0 and history.losses and all(map(torch.isfinite, torch.tensor(history.losses)))
    assert history.images_per_s > 0 and history.wall_time_s > 0


@pytest.mark.parametrize("name", METHODS)
def test_encode_shape_dtype_and_determinism(name, fitted, toy_data):
    method, _ = fitted(name)
    x = toy_data.test.images[:10]
    z = method.encode(x, _t(10, 0.3))
    assert z.shape == (10, method.cfg.latent_dim) and z.dtype == torch.float32
    assert torch.isfinite(z).all()
    torch.testing.assert_close(method.encode(x, _t(10, 0.3)), z, rtol=0, atol=0)


@pytest.mark.parametrize("name", METHODS)
def test_encode_of_a_sample_does_not_depend_on_its_batch(name, fitted, toy_data):
    method, _ = fitted(name)
    x = toy_data.test.images[:8]
    alone = method.encode(x[:1], _t(1, 0.5))
    together = method.encode(x, _t(8, 0.5))[:1]
    torch.testing.assert_close(alone, together, rtol=1e-4, atol=1e-5)  # eval-mode BatchNorm


@pytest.mark.parametrize("name", METHODS)
def test_encode_leaves_weights_and_batchnorm_statistics_unchanged(name, fitted, toy_data):
    method, _ = fitted(name)
    before = copy.deepcopy(method.state_dict())
    method.encode(toy_data.train.images, _t(len(toy_data.train), 0.7))
    after = method.state_dict()
    for part in before:
        for key, value in before[part].items():
            assert torch.equal(value, after[part][key]), f"{part}.{key} moved during encode"


@pytest.mark.parametrize("name", METHODS)
def test_state_dict_round_trip_gives_identical_codes(name, fitted, toy_data):
    method, _ = fitted(name)
    clone, _ = smoke_method(name, toy_data)
    clone.load_state_dict(copy.deepcopy(method.state_dict()))
    x, t = toy_data.test.images[:16], torch.linspace(0, 1, 16)
    torch.testing.assert_close(clone.encode(x, t), method.encode(x, t), rtol=0, atol=0)


@pytest.mark.parametrize("name", METHODS)
def test_time_conditioning_is_honoured(name, fitted, toy_data):
    method, _ = fitted(name)
    x = toy_data.test.images[:16]
    z0, z1 = method.encode(x, _t(16, 0.0)), method.encode(x, _t(16, 1.0))
    if method.time_conditioned:
        assert not torch.allclose(z0, z1), "a time-conditioned method gives the same code at t=0 and t=1"
    else:
        torch.testing.assert_close(z0, z1, rtol=0, atol=0)


@pytest.mark.parametrize("name", METHODS)
def test_loss_decreases_on_a_fixed_batch(name, toy_data):
    if not get_method_class(name).pretrains:
        pytest.skip(f"{name} has no pretraining loss")
    method, _ = smoke_method(name, toy_data)
    images = toy_data.train.images[:32]
    params = list(method.modules.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    method.modules.train()

    def fixed_loss():
        # Same t, noise and augmentations every time: only the weights change.
        torch.manual_seed(123)
        np.random.seed(123)
        random.seed(123)
        return method.loss(method.prepare(images))[0]

    first = fixed_loss().item()
    for _ in range(30):
        opt.zero_grad()
        fixed_loss().backward()
        opt.step()
    assert fixed_loss().item() < 0.9 * first


@pytest.mark.parametrize("name", METHODS)
def test_same_seed_gives_the_same_encoder(name, toy_data):
    codes = []
    for _ in range(2):
        method, budget = smoke_method(name, toy_data)  # seeds torch with 0
        method.fit(toy_data.train, dataclasses.replace(budget, iterations=5), progress=False)
        codes.append(method.encode(toy_data.test.images[:8], torch.full((8,), 0.5)))
    torch.testing.assert_close(codes[0], codes[1], rtol=0, atol=0)


@pytest.mark.parametrize("name", METHODS)
def test_encode_times_matches_one_encode_per_t(name, fitted, toy_data):
    """The trajectory encoding the feature cache uses (shared work across t) gives ``encode``'s codes."""
    method, _ = fitted(name)
    x, ts = toy_data.test.images[:12], torch.tensor([0.0, 0.3, 1.0])
    per_t = torch.stack([method.encode(x, _t(len(x), float(t))) for t in ts])
    torch.testing.assert_close(method.encode_times(x, ts), per_t, rtol=1e-5, atol=1e-5)
