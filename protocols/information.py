"""k-nearest-neighbour estimators of mutual information for continuous, multivariate codes.

- ``ksg_mi(x, y)``: Kraskov, Stoegbauer & Grassberger (2004), estimator 1, with
  the max-norm. Consistent, nearly unbiased for weak dependence; biased
  *downward* for strong dependence in many dimensions, and bounded above by
  psi(N) - psi(k) (the value for identical variables), so codes more
  dependent than that look alike. Hence ``ksg_nmi`` divides by that ceiling:
  1 for identical codes, about 0 for independent ones.
- ``label_mi(x, labels)``: Ross (2014), the estimator scikit-learn's
  ``mutual_info_classif`` uses for one feature, here on whole vectors
  (euclidean distance). ``label_nmi`` divides by the label entropy H(y), the
  largest value I(z; y) can take.

Both work on (N, d) tensors in O(N^2) memory (exact neighbours by ``cdist``);
call them on a few thousand points.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

DEFAULT_NEIGHBOURS = 3  # KSG's and Ross's usual k


def _digamma(x: Tensor) -> Tensor:
    return torch.special.digamma(x.double())


def max_norm_distances(x: Tensor) -> Tensor:
    return torch.cdist(x.double(), x.double(), p=math.inf)


def ksg_mi(x: Tensor, y: Tensor, k: int = DEFAULT_NEIGHBOURS) -> float:
    """I(x; y) in nats from N paired samples, (N, dx) and (N, dy)."""
    return ksg_mi_from_distances(max_norm_distances(x), max_norm_distances(y), k)


def ksg_mi_from_distances(dx: Tensor, dy: Tensor, k: int = DEFAULT_NEIGHBOURS) -> float:
    """KSG estimator 1 from the two max-norm distance matrices (reuse them across many pairs)."""
    n = len(dx)
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, N - 1]; got k={k} for N={n}")
    joint = torch.maximum(dx, dy)
    joint.fill_diagonal_(math.inf)
    eps = joint.kthvalue(k, dim=1).values[:, None]  # distance to the k-th neighbour in the joint space
    # Neighbours strictly closer than eps in each marginal space, the point itself excluded.
    n_x = _within(dx, eps) - 1
    n_y = _within(dy, eps) - 1
    value = _digamma(torch.tensor(k)) + _digamma(torch.tensor(n)) - (_digamma(n_x + 1) + _digamma(n_y + 1)).mean()
    return float(value)


def _within(dist: Tensor, radius: Tensor) -> Tensor:
    """Per row, the points strictly closer than ``radius``, or at distance 0 where the radius is 0.

    Duplicate codes (collapsed encoders) give a radius of 0; counting them as scikit-learn does
    keeps every count >= 1 (the point itself), so no digamma(0) = -inf reaches the estimate.
    """
    limit = torch.nextafter(radius, torch.zeros_like(radius))
    return (dist <= limit).sum(dim=1)


def ksg_ceiling(n: int, k: int = DEFAULT_NEIGHBOURS) -> float:
    """What ``ksg_mi`` returns for identical variables (no ties): psi(N) - psi(k)."""
    return float(_digamma(torch.tensor(n)) - _digamma(torch.tensor(k)))


def ksg_nmi(x: Tensor, y: Tensor, k: int = DEFAULT_NEIGHBOURS) -> float:
    return ksg_mi(x, y, k) / ksg_ceiling(len(x), k)


def label_mi(x: Tensor, labels: Tensor, k: int = DEFAULT_NEIGHBOURS) -> float:
    """I(x; y) in nats between (N, d) codes and (N,) integer labels (Ross 2014)."""
    n = len(labels)
    # The exact (not matrix-product) form: self-distances are exactly 0, as the counts below assume.
    dist = torch.cdist(x.double(), x.double(), compute_mode="donot_use_mm_for_euclid_dist")
    radius = torch.zeros(n, dtype=torch.float64)
    k_used = torch.zeros(n, dtype=torch.float64)
    class_size = torch.zeros(n, dtype=torch.float64)
    keep = torch.zeros(n, dtype=torch.bool)
    for label in labels.unique():
        members = (labels == label).nonzero().squeeze(1)
        class_size[members] = len(members)
        if len(members) < 2:
            continue  # a class with one sample has no neighbour: left out, as scikit-learn does
        k_c = min(k, len(members) - 1)
        within = dist[members][:, members].clone()
        within.fill_diagonal_(math.inf)
        radius[members] = within.kthvalue(k_c, dim=1).values
        k_used[members] = k_c
        keep[members] = True
    if not keep.any():
        raise ValueError("label_mi needs at least two samples of some class")
    dist, radius = dist[keep][:, keep], radius[keep]
    # Samples of any class strictly within the radius, the point itself included (as scikit-learn counts).
    m = _within(dist, radius[:, None])
    n_kept = int(keep.sum())
    value = (_digamma(torch.tensor(n_kept)) + _digamma(k_used[keep]).mean()
             - _digamma(class_size[keep]).mean() - _digamma(m).mean())
    return max(float(value), 0.0)


def label_entropy(labels: Tensor) -> float:
    """H(y) in nats of the empirical label distribution."""
    p = torch.bincount(labels).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())


def label_nmi(x: Tensor, labels: Tensor, k: int = DEFAULT_NEIGHBOURS) -> float:
    return label_mi(x, labels, k) / label_entropy(labels)
