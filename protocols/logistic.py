"""The converged linear probe: multinomial logistic regression, batched over t and an L2 grid.

Every (C, t) pair is its own convex problem on standardised codes,

    mean_n CE(W x_n + b, y_n) + ||W||^2 / (2 C N)

(scikit-learn's ``LogisticRegression(C=C)`` objective divided by C N, so it has
the same minimiser; the intercept is not penalised). The problems share
nothing but the data: they are solved together by full-batch L-BFGS in which
each keeps its own curvature history and step (``batched_lbfgs``), in float64,
until the largest gradient entry of each is below ``tol``. C is then chosen
per t on validation accuracy (ties: the stronger penalty), and the test split
is scored once with that choice. A choice at either end of the grid, or a
problem that did not reach ``tol``, is reported (``at_edge``, ``converged``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from protocols.batched import at_grid_end

DEFAULT_CS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


@dataclass
class LogisticSelection:
    """What validation chose for each of the T feature sets."""

    C: list[float]              # chosen inverse L2 strength per t
    val_accuracy: list[float]
    test_accuracy: list[float]  # scored once, with the chosen C
    at_edge: list[bool]         # the chosen C is the grid's first or last value
    converged: list[bool]       # the chosen problem reached the gradient tolerance
    iterations: list[int]       # L-BFGS iterations the chosen problem used


def fit_logistic(x: Tensor, y: Tensor, n_classes: int, Cs: Sequence[float], max_iter: int = 1000,
                 tol: float = 1e-6, history: int = 10) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Fit every (C, t) problem on (T, N, d) codes and (N,) labels.

    Returns weights (L, T, d, K), biases (L, T, K), each problem's largest
    absolute gradient entry (L, T) at the end, and the iterations each used (L, T).
    """
    n_t, n, d = x.shape
    x, y = x.double(), y.to(x.device)
    penalty = (1.0 / (torch.tensor(Cs, dtype=torch.float64, device=x.device) * n)).repeat_interleave(n_t)

    def unpack(theta: Tensor) -> tuple[Tensor, Tensor]:
        w, b = theta.split([d * n_classes, n_classes], dim=1)
        return w.view(len(Cs), n_t, d, n_classes), b.view(len(Cs), n_t, n_classes)

    def losses_and_grads(theta: Tensor) -> tuple[Tensor, Tensor]:
        theta = theta.detach().requires_grad_(True)
        w, b = unpack(theta)
        logits = torch.einsum("tnd,ltdk->ltnk", x, w) + b.unsqueeze(2)
        ce = F.cross_entropy(logits.reshape(-1, n_classes), y.repeat(len(Cs) * n_t), reduction="none")
        per_problem = ce.view(-1, n).mean(dim=1) + 0.5 * penalty * w.reshape(len(penalty), -1).square().sum(1)
        (grad,) = torch.autograd.grad(per_problem.sum(), theta)  # separable: row p is problem p's gradient
        return per_problem.detach(), grad

    theta = torch.zeros(len(penalty), d * n_classes + n_classes, dtype=torch.float64, device=x.device)
    theta, grad_max, iterations = batched_lbfgs(losses_and_grads, theta, max_iter, tol, history)
    w, b = unpack(theta)
    return w, b, grad_max.view(len(Cs), n_t), iterations.view(len(Cs), n_t)


def batched_lbfgs(losses_and_grads: Callable[[Tensor], tuple[Tensor, Tensor]], theta: Tensor, max_iter: int,
                  tol: float, history: int) -> tuple[Tensor, Tensor, Tensor]:
    """Minimise P independent smooth objectives at once: rows of ``theta`` (P, D).

    L-BFGS with each problem's own curvature pairs and its own backtracking
    (Armijo) step, so a slow problem neither slows nor stops the others; a
    problem is done once its largest gradient entry is <= ``tol``.
    ``losses_and_grads(theta)`` returns the (P,) losses and (P, D) gradients.
    Returns the solution, each problem's largest gradient entry, and its iterations.
    """
    n_problems = len(theta)
    loss, grad = losses_and_grads(theta)
    s_hist, y_hist, rho_hist = [], [], []
    iterations = torch.zeros(n_problems, dtype=torch.long, device=theta.device)
    for _ in range(max_iter):
        active = grad.abs().amax(dim=1) > tol
        if not bool(active.any()):
            break
        iterations += active
        direction = -_two_loop(grad, s_hist, y_hist, rho_hist) * active.unsqueeze(1)
        slope = (grad * direction).sum(dim=1)
        step = torch.ones(n_problems, dtype=theta.dtype, device=theta.device)
        if not s_hist:  # no curvature yet: a first step of length at most 1, as torch's LBFGS
            step = torch.clamp(1.0 / grad.abs().sum(dim=1), max=1.0)
        for _ in range(40):  # backtrack each problem's step until it decreases enough
            new_loss, new_grad = losses_and_grads(theta + step.unsqueeze(1) * direction)
            ok = (new_loss <= loss + 1e-4 * step * slope) | ~active
            if bool(ok.all()):
                break
            step = torch.where(ok, step, step / 2)
        else:
            ok = new_loss <= loss  # the step could not shrink further: take it only where it helped
            step = step * ok
            new_loss, new_grad = losses_and_grads(theta + step.unsqueeze(1) * direction)
        s = step.unsqueeze(1) * direction
        y = new_grad - grad
        sy = (s * y).sum(dim=1)
        # rho = 0 makes a pair inert in the two-loop recursion: problems without positive curvature skip it.
        rho = torch.where(sy > 1e-12, 1.0 / sy.clamp(min=1e-12), torch.zeros_like(sy))
        s_hist, y_hist, rho_hist = [*s_hist, s][-history:], [*y_hist, y][-history:], [*rho_hist, rho][-history:]
        theta, loss, grad = theta + s, new_loss, new_grad
    return theta, grad.abs().amax(dim=1), iterations


def _two_loop(grad: Tensor, s_hist: list[Tensor], y_hist: list[Tensor], rho_hist: list[Tensor]) -> Tensor:
    """H @ grad per row, H the L-BFGS inverse-Hessian estimate of each problem's pairs."""
    q, alphas = grad.clone(), []
    for s, y, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist)):
        alpha = rho * (s * q).sum(dim=1)
        q -= alpha.unsqueeze(1) * y
        alphas.append(alpha)
    if s_hist:  # initial scaling s'y / y'y of the latest pair (1 where it was skipped)
        s, y, rho = s_hist[-1], y_hist[-1], rho_hist[-1]
        gamma = torch.where(rho > 0, (s * y).sum(dim=1) / (y * y).sum(dim=1).clamp(min=1e-300), torch.ones_like(rho))
        q *= gamma.unsqueeze(1)
    for (s, y, rho), alpha in zip(zip(s_hist, y_hist, rho_hist), reversed(alphas)):
        beta = rho * (y * q).sum(dim=1)
        q += (alpha - beta).unsqueeze(1) * s
    return q


def accuracy(weights: Tensor, biases: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """(L, T) accuracies of every problem on (T, N, d) codes."""
    logits = torch.einsum("tnd,ltdk->ltnk", x.double(), weights) + biases.unsqueeze(2)
    return (logits.argmax(dim=-1) == y.to(x.device)).double().mean(dim=-1)


def fit_select_score_logistic(train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
                              test: tuple[Tensor, Tensor], n_classes: int, Cs: Sequence[float],
                              max_iter: int = 1000, tol: float = 1e-6) -> LogisticSelection:
    """Fit on ``train`` for every (C, t), choose C per t on ``val``, score ``test`` once."""
    Cs = sorted(Cs)  # ascending: index 0 is the strongest penalty, which wins ties
    weights, biases, grad_max, iterations = fit_logistic(*train, n_classes, Cs, max_iter, tol)
    val_acc = accuracy(weights, biases, *val)  # (L, T)
    chosen = val_acc.argmax(dim=0)  # first maximum: the smallest C among ties
    cols = torch.arange(val_acc.shape[1], device=val_acc.device)
    best_w, best_b = weights[chosen, cols].unsqueeze(0), biases[chosen, cols].unsqueeze(0)
    test_acc = accuracy(best_w, best_b, *test)[0]
    return LogisticSelection(
        C=[float(Cs[i]) for i in chosen.tolist()],
        val_accuracy=val_acc[chosen, cols].tolist(),
        test_accuracy=test_acc.tolist(),
        at_edge=[at_grid_end(i, len(Cs)) for i in chosen.tolist()],
        converged=(grad_max[chosen, cols] <= tol).tolist(),
        iterations=iterations[chosen, cols].tolist(),
    )
