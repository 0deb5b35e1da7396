"""SDE marginals against their closed forms, and the t samplers."""

import math

import pytest
import torch

from methods.sde import VESDE, VPSDE, create_sde


def test_ve_marginal_std_matches_closed_form():
    sde = VESDE()
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    expected = 0.01 * (50 / 0.01) ** t
    torch.testing.assert_close(sde.std(t), expected)
    torch.testing.assert_close(sde.mean_coef(t), torch.ones(4))
    torch.testing.assert_close(sde.weighting(t), expected**2)


def test_vp_marginal_matches_closed_form():
    sde = VPSDE()
    t = torch.tensor([0.0, 0.1, 0.5, 1.0], dtype=torch.float64)
    integral = 0.1 * t + 0.5 * (20 - 0.1) * t**2  # int_0^t beta(s) ds
    torch.testing.assert_close(sde.mean_coef(t), torch.exp(-0.5 * integral))
    torch.testing.assert_close(sde.std(t), torch.sqrt(1 - torch.exp(-integral)))


@pytest.mark.parametrize("name", ["ve", "vp"])
def test_empirical_marginal_moments(name):
    sde = create_sde(name)
    torch.manual_seed(0)
    x0 = torch.full((200_000, 1), 2.0)
    t = torch.full((200_000,), 0.3)
    xt = sde.marginal(x0, t, torch.randn_like(x0))
    mean, std = sde.mean_coef(t[:1]) * 2.0, sde.std(t[:1])
    assert abs(xt.mean().item() - mean.item()) < 0.01 * max(1.0, std.item())
    assert abs(xt.std().item() / std.item() - 1) < 0.01


@pytest.mark.parametrize("name", ["ve", "vp"])
def test_score_target_is_gradient_of_log_density(name):
    sde = create_sde(name)
    x0 = torch.randn(4, 3)
    t = torch.tensor([0.1, 0.4, 0.7, 1.0])
    noise = torch.randn_like(x0)
    xt = sde.marginal(x0, t, noise).requires_grad_(True)
    mean = sde.mean_coef(t)[:, None] * x0
    log_p = -0.5 * ((xt - mean) ** 2 / sde.std(t)[:, None] ** 2).sum()
    (grad,) = torch.autograd.grad(log_p, xt)
    torch.testing.assert_close(sde.score_target(noise, t), grad, rtol=1e-4, atol=1e-4)


def test_uniform_sampling_range():
    t = VESDE().sample_t(10_000, "uniform", torch.Generator().manual_seed(0))
    assert t.min() >= 1e-5 and t.max() <= 1.0
    assert abs(t.mean().item() - 0.5) < 0.02


@pytest.mark.parametrize("sde", [VESDE(), VPSDE()])
def test_sigma_uniform_makes_std_uniform(sde):
    t = sde.sample_t(50_000, "sigma-uniform", torch.Generator().manual_seed(0))
    std = sde.std(t)
    lo, hi = sde.std(torch.tensor(sde.eps)).item(), sde.std(torch.tensor(1.0)).item()
    quartiles = torch.quantile(std, torch.tensor([0.25, 0.5, 0.75]))
    expected = torch.tensor([lo + q * (hi - lo) for q in (0.25, 0.5, 0.75)])
    torch.testing.assert_close(quartiles, expected, rtol=0.02, atol=0.02 * (hi - lo))
    if isinstance(sde, VESDE):  # the point of it: most draws at high noise
        assert (t > 0.5).float().mean() > 0.9


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="valid: ve, vp"):
        create_sde("subvp")
    with pytest.raises(ValueError, match="valid: uniform, sigma-uniform"):
        VESDE().sample_t(3, "log")


def test_ve_noise_level_is_log_sigma():
    t = torch.tensor([0.0, 1.0])
    torch.testing.assert_close(VESDE().noise_level(t), torch.tensor([math.log(0.01), math.log(50.0)]))


def test_the_constants_are_settings_of_every_method_that_draws_t():
    from methods.drl import DRLConfig
    from methods.sde import VESDE, VPSDE

    ve = DRLConfig(sigma_min=0.05, sigma_max=10.0).create_sde()
    assert isinstance(ve, VESDE) and (ve.sigma_min, ve.sigma_max) == (0.05, 10.0)
    assert float(ve.std(torch.tensor(1.0))) == pytest.approx(10.0)
    vp = DRLConfig(sde="vp", beta_min=0.5, beta_max=10.0).create_sde()
    assert isinstance(vp, VPSDE) and (vp.beta_min, vp.beta_max) == (0.5, 10.0)
    default = DRLConfig().create_sde()
    assert (default.sigma_min, default.sigma_max) == (0.01, 50.0)  # the paper's


@pytest.mark.parametrize("setting,message", [
    ({"sigma_min": 0.0}, "sigma_min=0.0 is not allowed; valid: finite numbers > 0"),
    ({"sigma_max": 0.005}, "sigma_max=0.005 is not allowed; valid: finite numbers > sigma_min (0.01)"),
    ({"sigma_max": float("inf")}, "sigma_max=inf is not allowed; valid: finite numbers"),
    ({"beta_min": -1.0}, "beta_min=-1.0 is not allowed; valid: finite numbers >= 0"),
    ({"beta_max": 0.1}, "beta_max=0.1 is not allowed; valid: finite numbers > beta_min (0.1)"),
    ({"sde": "subvp"}, "sde=subvp is not allowed; valid: ve, vp"),
    ({"t_sampling": "log"}, "t_sampling=log is not allowed; valid: uniform, sigma-uniform"),
])
def test_bad_constants_are_refused_in_one_line(setting, message):
    from methods.autoencoders import AutoencoderConfig

    with pytest.raises(ValueError) as err:
        AutoencoderConfig(**setting)
    assert message in str(err.value) and "\n" not in str(err.value)
