"""The claims page: verdicts computed from the store, per dataset, preset and budget."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from benchmarks.leaderboard import check, claims, generate, normalise
from benchmarks.leaderboard.claims import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_MEASURED,
    SUPPORTED,
    Comparison,
    Side,
    _holm,
    judge,
)
from benchmarks.store import ResultsStore, RunInfo
from core.records import Record


def _noise(sd: float, *key: object) -> np.ndarray:
    """Per seed (3), a deterministic draw of its own for each key (method, t, head...): paired
    differences then spread, as real ones do, so the t-tests have something to test."""
    return np.random.default_rng(zlib.crc32(repr(key).encode())).normal(0.0, sd, 3)


def _write(store: ResultsStore, method: str, seed: int, records: list[Record], protocol: str = "probe",
           iterations: int = 1000, variant: str = "") -> None:
    config = {"budget": {"iterations": iterations, "batch_size": 128}, "method": {}, "protocol": {}}
    run = RunInfo(dataset="digits", method=method, protocol=protocol, preset="quick", seed=seed, variant=variant,
                  config=config, config_hash=f"{method}-{iterations}", commit="abc123",
                  command=f"python -m benchmarks run --method {method} --protocol {protocol}")
    store.write(run, records)


def _best_t(store: ResultsStore, accuracies: dict[str, float], seeds=(0, 1, 2), **kwargs) -> None:
    for method, acc in accuracies.items():
        for seed in seeds:
            a = acc + _noise(0.003, method, *sorted(kwargs.items()))[seed]
            _write(store, method, seed, [Record("best_t_accuracy", a, head="linear"),
                                         Record("best_t_accuracy", a + 0.005, head="mlp")], **kwargs)


def _verdicts(tmp_path) -> dict[tuple[str, str], str]:
    """(claim, context title) -> verdict, for the store under tmp_path."""
    df = normalise(ResultsStore(tmp_path / "store").frame())
    ctxs = claims.contexts(df)
    return {(number, ctxs[i].title): verdict for (number, i), (verdict, _) in claims._evaluate(ctxs).items()}


CONTEXT = "digits · quick · 128,000 images seen"


def test_a_method_ahead_of_every_rival_in_every_seed_is_supported(tmp_path):
    store = ResultsStore(tmp_path / "store")
    _best_t(store, {"drl": 0.97, "ae": 0.93, "vae": 0.92, "dae": 0.94, "cdae": 0.95, "simclr-gauss": 0.90})
    verdicts = _verdicts(tmp_path)
    assert verdicts[("1a", CONTEXT)] == SUPPORTED
    assert verdicts[("1b", CONTEXT)] == NOT_MEASURED, "no VDRL rows"


def test_a_rival_clearly_ahead_contradicts_the_claim(tmp_path):
    store = ResultsStore(tmp_path / "store")
    _best_t(store, {"drl": 0.90, "ae": 0.93, "vae": 0.85, "dae": 0.85, "cdae": 0.85, "simclr-gauss": 0.85})
    assert _verdicts(tmp_path)[("1a", CONTEXT)] == CONTRADICTED


def test_two_seeds_are_inconclusive_however_large_the_gap(tmp_path):
    store = ResultsStore(tmp_path / "store")
    _best_t(store, {"drl": 0.99, "ae": 0.50, "vae": 0.50, "dae": 0.50, "cdae": 0.50, "simclr-gauss": 0.50},
            seeds=(0, 1))
    assert _verdicts(tmp_path)[("1a", CONTEXT)] == INCONCLUSIVE


def test_a_missing_rival_is_not_measured_and_the_page_says_how_to_measure_it(tmp_path):
    store = ResultsStore(tmp_path / "store")
    _best_t(store, {"drl": 0.97, "ae": 0.93})
    page = claims.claims_page(normalise(store.frame()), "gen")
    section = page[page.index("### 1a · digits"):page.index("## Claim 1b")]
    assert "| linear head | drl | > | vae | " in section and "| not measured |" in section
    assert "python -m benchmarks run --method drl,ae,vae,dae,cdae,simclr-gauss --protocol probe --seeds 0,1,2" in section
    assert _verdicts(tmp_path)[("1a", CONTEXT)] == INCONCLUSIVE, "two measured and supported, the rest missing"


def test_each_budget_is_its_own_context_with_its_own_verdict(tmp_path):
    store = ResultsStore(tmp_path / "store")
    rivals = {"ae": 0.93, "vae": 0.92, "dae": 0.94, "cdae": 0.95, "simclr-gauss": 0.90}
    _best_t(store, {"drl": 0.97, **rivals})
    _best_t(store, {"drl": 0.80, **rivals}, iterations=10_000, variant="iterations=10000")
    verdicts = _verdicts(tmp_path)
    assert verdicts[("1a", CONTEXT)] == SUPPORTED
    assert verdicts[("1a", "digits · quick · 1,280,000 images seen")] == CONTRADICTED
    page = claims.claims_page(normalise(store.frame()), "gen")
    assert "--protocol probe --seeds 0,1,2 --set iterations=10000" in page, "the budget is in the command"


def _per_t(store: ResultsStore, method: str, at: dict[float, float], heads=("linear", "mlp")) -> None:
    for seed in (0, 1, 2):
        _write(store, method, seed, [Record("accuracy", a + _noise(0.001, method, t, h)[seed], t=t, head=h,
                                            extra={"val_accuracy": a})
                                     for t, a in at.items() for h in heads])


def test_flat_degrading_and_not_degrading_curves(tmp_path):
    store = ResultsStore(tmp_path / "store")
    _per_t(store, "ae", {0.0: 0.95, 0.5: 0.95, 1.0: 0.951})
    _per_t(store, "vae", {0.0: 0.95, 0.5: 0.93, 1.0: 0.90})  # not flat: 5 points down
    _per_t(store, "dae", {0.0: 0.95, 0.5: 0.80, 1.0: 0.20})
    _per_t(store, "cdae", {0.0: 0.95, 0.5: 0.96, 1.0: 0.955})
    verdicts = _verdicts(tmp_path)
    assert verdicts[("2a", CONTEXT)] == CONTRADICTED, "VAE's drop is outside the margin"
    assert verdicts[("2b", CONTEXT)] == SUPPORTED
    assert verdicts[("2c", CONTEXT)] == SUPPORTED


def test_an_interior_best_t_is_chosen_on_validation(tmp_path):
    store = ResultsStore(tmp_path / "store")
    _per_t(store, "drl", {0.0: 0.90, 0.5: 0.97, 1.0: 0.91})
    assert _verdicts(tmp_path)[("5", CONTEXT)] == SUPPORTED
    store2 = ResultsStore(tmp_path / "other" / "store")
    _per_t(store2, "drl", {0.0: 0.97, 0.5: 0.90, 1.0: 0.91})
    assert _verdicts(tmp_path / "other")[("5", CONTEXT)] == CONTRADICTED


def test_equivalence_needs_both_one_sided_tests():
    near = Comparison("x", Side("a", {0: 0.951, 1: 0.949, 2: 0.950}), Side("b", {0: 0.950, 1: 0.950, 2: 0.951}),
                "equivalent", "accuracy", margin=0.01)
    far = Comparison("x", Side("a", {0: 0.97, 1: 0.975, 2: 0.972}), Side("b", {0: 0.95, 1: 0.95, 2: 0.951}),
               "equivalent", "accuracy", margin=0.01)
    noisy = Comparison("x", Side("a", {0: 0.99, 1: 0.91, 2: 0.95}), Side("b", {0: 0.95, 1: 0.95, 2: 0.95}),
                 "equivalent", "accuracy", margin=0.01)
    assert [j.verdict for j in judge([near])] == [SUPPORTED]
    assert [j.verdict for j in judge([far])] == [CONTRADICTED]
    assert [j.verdict for j in judge([noisy])] == [INCONCLUSIVE]


def test_a_constant_side_is_a_one_sample_test():
    near_half = Comparison("t", Side("t_final", {0: 0.49, 1: 0.52, 2: 0.50}), Side("0.5", constant=0.5),
                     "equivalent", "t_final", margin=0.1)
    assert judge([near_half])[0].verdict == SUPPORTED
    assert judge([near_half])[0].n == 3


def _semisup_t(store: ResultsStore, method: str, t_start: float, t_finals: tuple[float, ...],
               variant: str = "") -> None:
    for seed, t_final in enumerate(t_finals):
        _write(store, method, seed, [Record("t_final", t_final, labels=10, head="no mixup",
                                            extra={"t_start": t_start, "t_final": t_final})],
               protocol="semisup", variant=variant)


def test_a_learnt_t_counts_only_when_it_started_away_from_half(tmp_path):
    store = ResultsStore(tmp_path / "store")
    for method in ("drl", "vdrl"):  # the default start: a t that never moved
        _semisup_t(store, method, 0.5, (0.5, 0.5, 0.5))
    assert _verdicts(tmp_path)[("7b", CONTEXT)] == NOT_MEASURED
    page = claims.claims_page(normalise(store.frame()), "python -m benchmarks leaderboard")
    assert "--protocol semisup --seeds 0,1,2 --set t_init=0.9" in page

    for method, finals in (("drl", (0.52, 0.47, 0.55)), ("vdrl", (0.45, 0.50, 0.53))):
        _semisup_t(store, method, 0.9, finals, variant="t_init=0.9")
    assert _verdicts(tmp_path)[("7b", CONTEXT)] == SUPPORTED, "both moved from 0.9 to near 0.5"

    _semisup_t(store, "vdrl", 0.9, (0.86, 0.88, 0.87), variant="t_init=0.9")  # rerun: it stayed near its start
    assert _verdicts(tmp_path)[("7b", CONTEXT)] == CONTRADICTED


def test_holm_adjusts_the_contradictions_of_a_claim():
    assert _holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = _holm([math.nan, 0.02])
    assert math.isnan(adjusted[0]) and adjusted[1] == pytest.approx(0.02), "NaN is neither adjusted nor counted"
    # One marginal contradiction among many comparisons does not contradict the claim.
    ahead = [Comparison("x", Side("a", {0: 0.96, 1: 0.97, 2: 0.965}), Side("b", {0: 0.90, 1: 0.91, 2: 0.905}),
                  "greater", "accuracy") for _ in range(9)]
    marginal = Comparison("x", Side("a", {0: 0.950, 1: 0.951, 2: 0.949}), Side("b", {0: 0.952, 1: 0.956, 2: 0.951}),
                    "greater", "accuracy")
    alone, among = judge([marginal])[0], judge([*ahead, marginal])[-1]
    assert alone.verdict == CONTRADICTED and among.verdict == INCONCLUSIVE
    assert among.p_against == pytest.approx(min(1.0, 10 * alone.p_against))


def test_the_page_is_generated_linked_and_checked(tmp_path):
    store = ResultsStore(tmp_path / "store")
    _best_t(store, {"drl": 0.97, "ae": 0.93})
    out = tmp_path / "lb"
    generate(store.frame(), out)
    page = (out / "claims.md").read_text()
    assert page.startswith("# The papers' claims, tested")
    for claim in claims.CLAIMS:
        assert f"| {claim.number}. {claim.statement} |" in page
    assert "(claims.md)" in (out / "README.md").read_text()
    assert '<section id="claims">' in (out / "index.html").read_text()
    assert check(store.frame(), out) == []
    (out / "claims.md").write_text(page.replace("supported", "contradicted"))
    assert check(store.frame(), out) == ["changed: claims.md"]
