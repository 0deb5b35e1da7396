"""The mutual-information estimators on data with a known answer."""

import math

import pytest
import torch

from protocols.information import (
    ksg_ceiling,
    ksg_mi,
    ksg_nmi,
    label_entropy,
    label_mi,
    label_nmi,
)


def _gaussian_pair(n, rho, dim=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    y = rho * x + math.sqrt(1 - rho**2) * torch.randn(n, dim, generator=g)
    return x, y


def test_independent_variables_have_about_zero_mi():
    x, _ = _gaussian_pair(1000, 0.0, dim=3, seed=1)
    _, y = _gaussian_pair(1000, 0.0, dim=3, seed=2)
    assert abs(ksg_mi(x, y)) < 0.05
    assert abs(ksg_nmi(x, y)) < 0.02


def test_identical_variables_reach_the_ceiling():
    x, _ = _gaussian_pair(500, 0.0, dim=4)
    assert ksg_mi(x, x) == pytest.approx(ksg_ceiling(500))
    assert ksg_nmi(x, x) == pytest.approx(1.0)


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_ksg_matches_the_gaussian_closed_form(rho):
    # For a bivariate Gaussian, I = -1/2 log(1 - rho^2) per independent dimension pair.
    x, y = _gaussian_pair(2000, rho, dim=2, seed=3)
    truth = -2 * 0.5 * math.log(1 - rho**2)
    assert ksg_mi(x, y) == pytest.approx(truth, abs=0.08)


def test_ksg_orders_dependence():
    values = [ksg_mi(*_gaussian_pair(800, rho, dim=2, seed=4)) for rho in (0.2, 0.6, 0.95)]
    assert values == sorted(values)


def test_label_mi_of_separated_classes_is_the_label_entropy():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(600) % 3
    codes = 20.0 * torch.nn.functional.one_hot(labels, 3).float() + 0.1 * torch.randn(600, 3, generator=g)
    assert label_entropy(labels) == pytest.approx(math.log(3))
    assert label_mi(codes, labels) == pytest.approx(math.log(3), abs=0.02)
    assert label_nmi(codes, labels) == pytest.approx(1.0, abs=0.02)


def test_label_mi_of_unrelated_labels_is_about_zero():
    g = torch.Generator().manual_seed(1)
    codes = torch.randn(600, 4, generator=g)
    labels = torch.randint(0, 3, (600,), generator=g)
    assert label_nmi(codes, labels) < 0.05


def test_ksg_rejects_a_bad_k():
    x, y = _gaussian_pair(5, 0.5)
    with pytest.raises(ValueError, match="k must be"):
        ksg_mi(x, y, k=5)


def test_duplicate_codes_give_finite_estimates():
    """A collapsed encoder maps many images to one code: distances of 0 must not give infinities."""
    g = torch.Generator().manual_seed(2)
    codes = torch.randn(300, 3, generator=g)
    codes[:150] = codes[0] + 1e3  # half the codes identical, far from the origin (rounding-prone)
    labels = torch.arange(300) % 3
    assert math.isfinite(label_mi(codes, labels)) and 0.0 <= label_nmi(codes, labels) <= 1.05
    assert math.isfinite(ksg_mi(codes, codes.flip(0)))
    assert math.isfinite(ksg_mi(codes, codes))
