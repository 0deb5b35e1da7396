"""The converged linear probe: multinomial logistic regression, batched over t and an L2 grid.

Every (C, t) pair is its own convex problem on standardised codes,

    mean_n CE(W x_n + b, y_n) + ||W||^2 / (2 C N)

(scikit-learn's ``LogisticRegression(C=C)`` objective divided by C N, so it has
the same minimiser; the intercept is not penalised). The problems share
nothing but the data: they are solved together by full-batch L-BFGS in which
each keeps its own curvature history and step (``batched_lbfgs``), in float64,
until the largest gradient entry of each is below ``tol``. C is then chosen
per t on validation accuracy by the one-standard-error rule the SGD heads use
(``one_standard_error_choice``: of the values within one binomial standard
error of the best, the one nearest the middle of the grid), and the test split
is scored once with that choice. Flat validation curves (codes on which the
penalty no longer matters, or carry nothing) therefore do not land on an end;
a choice at either end of the grid, which only a real trend gives, or a
problem that did not reach ``tol``, is reported (``at_edge``, ``converged``).

Why it is fast on codes that are far from white (DRL's span about 7 of 64
directions): the L-BFGS initial inverse Hessian is each problem's inverse of
Böhning's bound on the Hessian, (X'X / 2N + penalty)^-1 with X the codes and a
ones column. It makes the iteration count almost independent of how
ill-conditioned the codes are, without changing the objective or its
minimiser. Gradients are analytic (softmax minus one-hot), and a problem that
has converged, or has already accepted its step, is not evaluated again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from protocols.batched import at_grid_end, one_standard_error_choice

DEFAULT_CS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0, 1e4)

# losses_and_grads(theta_rows, rows): the (R,) losses and (R, D) gradients of problems ``rows`` at theta_rows (R, D).
Objective = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass
class LogisticSelection:
    """What validation chose for each of the T feature sets."""

    C: list[float]              # chosen inverse L2 strength per t
    val_accuracy: list[float]
    test_accuracy: list[float]  # scored once, with the chosen C
    at_edge: list[bool]         # the chosen C is the grid's first or last value
    converged: list[bool]       # the chosen problem reached the gradient tolerance
    iterations: list[int]       # L-BFGS iterations the chosen problem used


class LogisticProblems:
    """The L x T problems of one fit, problem p = l * T + t (C index l, feature set t).

    Parameters of a problem are a (d + 1, K) matrix flattened: the weights and,
    as the last row, the intercepts (the codes carry a ones column for them).
    """

    def __init__(self, x: Tensor, y: Tensor, n_classes: int, Cs: Sequence[float]):
        n_t, n, d = x.shape
        self.n_t, self.n_classes, self.d = n_t, n_classes, d
        self.x = torch.cat([x.double(), x.new_ones(n_t, n, 1, dtype=torch.float64)], dim=2)  # (T, N, d + 1)
        self.y = y.to(x.device)
        per_c = 1.0 / (torch.tensor(list(Cs), dtype=torch.float64, device=x.device) * n)
        self.penalty = per_c.repeat_interleave(n_t)  # (P,)

    @property
    def n_problems(self) -> int:
        return len(self.penalty)

    @property
    def size(self) -> int:
        return (self.d + 1) * self.n_classes

    def __call__(self, theta: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
        """Losses and analytic gradients of problems ``rows``, one matrix product per feature set."""
        loss, grad = theta.new_empty(len(rows)), torch.empty_like(theta)
        n, k, d = self.x.shape[1], self.n_classes, self.d
        t_of = rows % self.n_t
        for t in t_of.unique().tolist():
            sel = (t_of == t).nonzero().squeeze(1)
            w = theta[sel].view(-1, d + 1, k)
            logits = (self.x[t] @ w.permute(1, 0, 2).reshape(d + 1, -1)).view(n, -1, k)  # (N, R_t, K)
            log_norm = logits.logsumexp(dim=2, keepdim=True)
            true_logit = logits.gather(2, self.y.view(n, 1, 1).expand(n, len(sel), 1))
            residual = (logits - log_norm).exp_()
            residual.scatter_add_(2, self.y.view(n, 1, 1).expand(n, len(sel), 1),
                                  residual.new_full((n, len(sel), 1), -1.0))
            g = (self.x[t].T @ residual.view(n, -1)).view(d + 1, -1, k).permute(1, 0, 2) / n
            penalty = self.penalty[rows[sel]].view(-1, 1, 1)
            g[:, :d] += penalty * w[:, :d]
            ce = (log_norm - true_logit).mean(dim=0).view(-1)
            loss[sel] = ce + 0.5 * penalty.view(-1) * w[:, :d].square().sum(dim=(1, 2))
            grad[sel] = g.reshape(len(sel), -1)
        return loss, grad

    def preconditioner(self, ridge: float = 1e-10) -> Callable[[Tensor], Tensor]:
        """Multiplication by each problem's inverse Böhning bound (X'X / 2N + penalty on the weights)^-1."""
        n, d = self.x.shape[1], self.d
        gram = self.x.transpose(1, 2) @ self.x / (2 * n)  # (T, d + 1, d + 1)
        on_weights = torch.ones(d + 1, dtype=torch.float64, device=self.x.device)
        on_weights[d] = 0.0
        bound = gram.repeat(len(self.penalty) // self.n_t, 1, 1) + torch.diag_embed(
            self.penalty.view(-1, 1) * on_weights + ridge)
        inverse = torch.cholesky_inverse(torch.linalg.cholesky(bound))  # (P, d + 1, d + 1)

        def apply(q: Tensor) -> Tensor:
            return (inverse @ q.view(len(q), d + 1, -1)).view(len(q), -1)

        return apply


def fit_logistic(x: Tensor, y: Tensor, n_classes: int, Cs: Sequence[float], max_iter: int = 1000,
                 tol: float = 1e-6, history: int = 10) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Fit every (C, t) problem on (T, N, d) codes and (N,) labels.

    Returns weights (L, T, d, K), biases (L, T, K), each problem's largest
    absolute gradient entry (L, T) at the end, and the iterations each used (L, T).
    """
    problems = LogisticProblems(x, y, n_classes, Cs)
    theta = torch.zeros(problems.n_problems, problems.size, dtype=torch.float64, device=x.device)
    theta, grad_max, iterations = batched_lbfgs(problems, theta, max_iter, tol, history,
                                                precondition=problems.preconditioner())
    params = theta.view(len(Cs), x.shape[0], x.shape[2] + 1, n_classes)
    return params[:, :, :-1], params[:, :, -1], grad_max.view(len(Cs), -1), iterations.view(len(Cs), -1)


def batched_lbfgs(losses_and_grads: Objective, theta: Tensor, max_iter: int, tol: float, history: int,
                  precondition: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Minimise P independent smooth objectives at once: rows of ``theta`` (P, D).

    L-BFGS with each problem's own curvature pairs and its own backtracking
    (Armijo) step, so a slow problem neither slows nor stops the others; a
    problem is done once its largest gradient entry is <= ``tol``. Only the
    problems still searching are evaluated. ``precondition`` multiplies (P, D)
    rows by each problem's fixed positive-definite initial inverse Hessian;
    without one it is the identity, scaled as usual by the latest pair.
    Returns the solution, each problem's largest gradient entry, and its iterations.
    """
    n_problems = len(theta)
    every = torch.arange(n_problems, device=theta.device)
    loss, grad = losses_and_grads(theta, every)
    s_hist, y_hist, rho_hist = [], [], []
    iterations = torch.zeros(n_problems, dtype=torch.long, device=theta.device)
    for _ in range(max_iter):
        active = grad.abs().amax(dim=1) > tol
        if not bool(active.any()):
            break
        iterations += active
        direction = -_two_loop(grad, s_hist, y_hist, rho_hist, precondition) * active.unsqueeze(1)
        slope = (grad * direction).sum(dim=1)
        step = torch.ones(n_problems, dtype=theta.dtype, device=theta.device)
        if not s_hist and precondition is None:  # no curvature yet: a first step of length at most 1, as torch's
            step = torch.clamp(1.0 / grad.abs().sum(dim=1), max=1.0)
        new_loss, new_grad = loss.clone(), grad.clone()
        pending = active.clone()
        for _ in range(40):  # backtrack each problem's step until it decreases enough
            rows = pending.nonzero().squeeze(1)
            trial_loss, trial_grad = losses_and_grads(theta[rows] + step[rows, None] * direction[rows], rows)
            new_loss[rows], new_grad[rows] = trial_loss, trial_grad
            ok = new_loss <= loss + 1e-4 * step * slope
            pending &= ~ok
            if not bool(pending.any()):
                break
            step = torch.where(pending, step / 2, step)
        else:  # the step could not shrink further: take it only where it helped
            failed = pending & (new_loss > loss)
            step = torch.where(failed, torch.zeros_like(step), step)
            new_loss, new_grad = torch.where(failed, loss, new_loss), torch.where(failed.unsqueeze(1), grad, new_grad)
        s = step.unsqueeze(1) * direction
        y = new_grad - grad
        sy = (s * y).sum(dim=1)
        # rho = 0 makes a pair inert in the two-loop recursion: problems without positive curvature skip it.
        rho = torch.where(sy > 1e-12, 1.0 / sy.clamp(min=1e-12), torch.zeros_like(sy))
        s_hist, y_hist, rho_hist = [*s_hist, s][-history:], [*y_hist, y][-history:], [*rho_hist, rho][-history:]
        theta, loss, grad = theta + s, new_loss, new_grad
    return theta, grad.abs().amax(dim=1), iterations


def _two_loop(grad: Tensor, s_hist: list[Tensor], y_hist: list[Tensor], rho_hist: list[Tensor],
              precondition: Callable[[Tensor], Tensor] | None) -> Tensor:
    """H @ grad per row, H the L-BFGS inverse-Hessian estimate of each problem's pairs."""
    q, alphas = grad.clone(), []
    for s, y, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist)):
        alpha = rho * (s * q).sum(dim=1)
        q -= alpha.unsqueeze(1) * y
        alphas.append(alpha)
    if precondition is not None:
        q = precondition(q)
    if s_hist:  # initial scaling s'y / y'H0y of the latest pair (1 where it was skipped)
        s, y, rho = s_hist[-1], y_hist[-1], rho_hist[-1]
        h0y = precondition(y) if precondition is not None else y
        gamma = torch.where(rho > 0, (s * y).sum(dim=1) / (y * h0y).sum(dim=1).clamp(min=1e-300), torch.ones_like(rho))
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
    Cs = sorted(Cs)  # ascending: index 0 is the strongest penalty
    weights, biases, grad_max, iterations = fit_logistic(*train, n_classes, Cs, max_iter, tol)
    val_acc = accuracy(weights, biases, *val)  # (L, T)
    chosen = one_standard_error_choice(val_acc, len(val[1]))
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
