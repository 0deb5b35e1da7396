"""The converged linear probe against scikit-learn's LogisticRegression, on toy and on real cached codes."""

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from benchmarks.__main__ import main
from benchmarks.store import ResultsStore
from protocols.batched import standardise
from protocols.logistic import batched_lbfgs, fit_logistic, fit_select_score_logistic

CS = (0.01, 0.1, 1.0, 10.0, 100.0)


def _blobs(n: int, n_t: int, seed: int, d: int = 12, n_classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """T feature sets of the same labels, overlapping classes (so the L2 strength matters), noisier with t."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % n_classes
    centres = torch.randn(n_classes, d, generator=torch.Generator().manual_seed(99))
    noise = torch.randn(n_t, n, d, generator=g)
    scale = torch.linspace(1.0, 3.0, n_t).view(-1, 1, 1)
    return centres[labels] + scale * noise, labels


def one_se_index(val: list[float], n_val: int) -> int:
    """The one-standard-error rule, written again here: of the grid values within one binomial
    standard error of the best validation accuracy, the one nearest the grid's middle (ties: the first)."""
    best = max(val)
    within = [i for i, v in enumerate(val) if v >= best - np.sqrt(best * (1 - best) / n_val) - 1e-9]
    return min(within, key=lambda i: abs(i - (len(val) - 1) / 2))


def sklearn_select_score(splits, Cs) -> list[tuple[float, float]]:
    """Per t: (chosen C, test accuracy) with C chosen on validation by the one-standard-error rule,
    test scored once."""
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = splits
    out = []
    for t in range(x_tr.shape[0]):
        fits = [LogisticRegression(C=C, max_iter=20_000, tol=1e-8).fit(x_tr[t].double().numpy(), y_tr.numpy())
                for C in sorted(Cs)]
        val = [f.score(x_va[t].double().numpy(), y_va.numpy()) for f in fits]
        best = one_se_index(val, len(y_va))
        out.append((sorted(Cs)[best], fits[best].score(x_te[t].double().numpy(), y_te.numpy())))
    return out


def _objective(x, y, w, b, C) -> float:
    """scikit-learn's objective divided by C N: mean cross-entropy + ||w||^2 / (2 C N)."""
    logits = x.double() @ w + b
    return float(torch.nn.functional.cross_entropy(logits, y) + (w**2).sum() / (2 * C * len(y)))


def test_the_solution_is_scikit_learns_on_every_problem():
    x, y = _blobs(300, n_t=3, seed=1)
    x = standardise(x)[0]
    weights, biases, grad_max, _ = fit_logistic(x, y, n_classes=4, Cs=CS, tol=1e-7)
    assert bool((grad_max <= 1e-7).all()), "every problem reaches the tolerance"
    for i, C in enumerate(CS):
        for t in range(3):
            ref = LogisticRegression(C=C, max_iter=20_000, tol=1e-10).fit(x[t].double().numpy(), y.numpy())
            theirs_w = torch.from_numpy(ref.coef_.T.copy())
            theirs_b = torch.from_numpy(ref.intercept_.copy())
            ours_obj = _objective(x[t], y, weights[i, t], biases[i, t], C)
            # At C = 100 the objective is nearly flat (penalty 3e-5), so a gradient of 1e-7 leaves a gap
            # of about |grad|^2 / (2 penalty), a few 1e-10, to the optimum.
            assert ours_obj <= _objective(x[t], y, theirs_w, theirs_b, C) + 1e-9, "at least as low as sklearn's"
            # The weights themselves: equal up to the objective's flatness at weak penalties.
            torch.testing.assert_close(weights[i, t], theirs_w, atol=1e-3, rtol=1e-2)
            probs = torch.softmax(x[t].double() @ weights[i, t] + biases[i, t], dim=1)
            torch.testing.assert_close(probs, torch.from_numpy(ref.predict_proba(x[t].double().numpy())), atol=1e-4, rtol=0)


def test_selection_matches_scikit_learn_chosen_the_same_way():
    splits = [_blobs(n, n_t=4, seed=s) for n, s in ((400, 1), (200, 2), (200, 3))]
    feats = standardise(*(x for x, _ in splits))
    splits = [(f, y) for f, (_, y) in zip(feats, splits)]
    ours = fit_select_score_logistic(*splits, n_classes=4, Cs=CS)
    for t, (C, test_acc) in enumerate(sklearn_select_score(splits, CS)):
        assert ours.C[t] == C
        assert ours.test_accuracy[t] == pytest.approx(test_acc, abs=1e-9)
    assert all(ours.converged)


def test_each_problem_is_solved_as_if_alone():
    """Own curvature pairs and steps: batching problems together changes none of their solutions."""
    x, y = _blobs(200, n_t=3, seed=4)
    x = standardise(x)[0]
    together, _, _, _ = fit_logistic(x, y, 4, CS, tol=1e-8)
    alone, _, _, _ = fit_logistic(x[1:2], y, 4, CS[3:4], tol=1e-8)
    torch.testing.assert_close(together[3, 1], alone[0, 0], atol=1e-6, rtol=1e-5)


def test_batched_lbfgs_minimises_independent_quadratics_of_very_different_scales():
    scales = torch.tensor([1e-3, 1.0, 1e3], dtype=torch.float64).view(-1, 1)
    target = torch.arange(6, dtype=torch.float64).view(3, 2)

    def losses_and_grads(theta, rows):
        return (0.5 * scales[rows] * (theta - target[rows]) ** 2).sum(dim=1), scales[rows] * (theta - target[rows])

    theta, grad_max, iterations = batched_lbfgs(losses_and_grads, torch.zeros(3, 2, dtype=torch.float64),
                                                max_iter=200, tol=1e-10, history=5)
    torch.testing.assert_close(theta, target, atol=1e-6, rtol=0)
    assert bool((grad_max <= 1e-10).all()) and int(iterations.max()) < 50


def test_a_choice_at_an_end_of_the_grid_is_flagged():
    splits = [_blobs(n, n_t=2, seed=s) for n, s in ((300, 1), (150, 2), (150, 3))]
    feats = standardise(*(x for x, _ in splits))
    splits = [(f, y) for f, (_, y) in zip(feats, splits)]
    wide = fit_select_score_logistic(*splits, n_classes=4, Cs=(1e-4, 1e-2, 1.0, 1e2, 1e4))
    assert wide.C == [1.0, 1.0] and wide.at_edge == [False, False]
    # Every penalty too strong: on the noisier t = 1 validation accuracy still rises, 57 to 61 % at
    # 1e-2, by more than a standard error (an edge); at t = 0 (97 to 99 %) it is flat within one, so
    # the middle value is as good as any and is taken.
    too_strong = fit_select_score_logistic(*splits, n_classes=4, Cs=(1e-4, 1e-3, 1e-2))
    assert too_strong.C == [1e-3, 1e-2] and too_strong.at_edge == [False, True]
    single = fit_select_score_logistic(*splits, n_classes=4, Cs=(1.0,))
    assert single.at_edge == [True, True], "a one-value grid chose nothing: its value is both ends"


def test_codes_that_carry_nothing_do_not_land_on_an_end_of_the_grid():
    """Labels independent of the codes: every C is as good as the next on validation, and the
    one-standard-error rule takes the grid's middle, not the strongest penalty (a real trend
    is what at_edge reports, not a flat curve)."""
    g = torch.Generator().manual_seed(0)
    x = [torch.randn(1, n, 12, generator=g) for n in (300, 150, 150)]
    y = [torch.randint(0, 4, (n,), generator=g) for n in (300, 150, 150)]
    fit = fit_select_score_logistic(*zip(standardise(*x), y), n_classes=4, Cs=(1e-3, 1e-2, 1e-1, 1.0, 10.0))
    assert fit.C == [1e-1] and fit.at_edge == [False]


def test_a_problem_stopped_by_the_iteration_limit_is_not_converged():
    splits = [_blobs(n, n_t=1, seed=s) for n, s in ((300, 1), (150, 2), (150, 3))]
    fit = fit_select_score_logistic(*splits, n_classes=4, Cs=(1.0,), max_iter=2)
    assert fit.converged == [False]


def test_the_probe_agrees_with_scikit_learn_on_real_cached_codes(tmp_path: Path):
    """Two methods pretrained on digits (embedded), their codes read back from the feature cache:
    the stored linear-probe accuracy is scikit-learn's LogisticRegression with the same C grid, chosen
    on validation the same way, to within 0.5 points at every t."""
    results = tmp_path / "results"
    args = ["run", "--method", "drl,ae", "--protocol", "probe", "--preset", "smoke", "--no-progress",
            "--set", "heads=linear", "--set", "probe_Cs=" + ",".join(map(str, CS)), "--set", "probe_max_iter=1000",
            "--results", str(results), "--leaderboards", str(tmp_path / "boards")]
    assert main(args) == 0
    frame = ResultsStore(results).frame()
    for method in ("drl", "ae"):
        rows = frame[(frame["method"] == method) & (frame["metric"] == "accuracy")]
        checkpoint = rows["checkpoint"].iloc[0]
        folder = results / "features" / checkpoint
        ts = sorted(rows["t"].unique())
        from core.files import load_verified
        from datasets import load_dataset

        data = load_dataset("digits")
        raw = [torch.stack([load_verified(folder / f"{split}_t{t:.4f}.pt") for t in ts]) for split in ("train", "val", "test")]
        codes = standardise(*raw)
        splits = [(c, data.split(split).labels) for c, split in zip(codes, ("train", "val", "test"))]
        for t, (_, test_acc) in zip(ts, sklearn_select_score(splits, CS)):
            stored = rows[rows["t"] == t]["value"].item()
            assert abs(stored - test_acc) <= 0.005, (method, t, stored, test_acc)
