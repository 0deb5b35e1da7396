"""The papers' claims, tested on the results store: ``leaderboards/claims.md``.

Each claim is a list of tests over seeds, evaluated separately in every
context the store holds (dataset, preset, pretraining budget in images seen).
A test compares per-seed values of two entries (or of one entry and a
constant) with a one-sided t-test over the seeds both share, at the
leaderboards' significance level:

- ``greater``: A > B. Supported when the one-sided test of A - B > 0 is
  significant, contradicted when that of A - B < 0 is.
- ``not_less``: A >= B - margin (non-inferiority, a claim of "does not
  degrade"). Supported when A - B > -margin significantly, contradicted when
  A - B < -margin significantly.
- ``equivalent``: |A - B| < margin (two one-sided tests, TOST: a claim of
  "flat", "saturates", "near"). Supported when both one-sided tests are
  significant, contradicted when the difference is significantly outside the
  margin on either side.

Fewer than ``MIN_SEEDS`` shared seeds make a test inconclusive whatever its
p-value; a test whose rows are absent is not measured. A claim's verdict in a
context: contradicted if any of its tests is (their contradiction p-values
Holm-adjusted over the claim's tests, since any one suffices), supported if
all are (an intersection-union test: no adjustment needed), not measured if
none was measured, inconclusive otherwise. Nothing here is written
by hand: the page is a function of the store, checked by ``leaderboard --check``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmarks.leaderboard import stats
from benchmarks.leaderboard.budget import images_seen, split_budget
from benchmarks.leaderboard.plots import entry_name, is_accuracy

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURED = "supported", "contradicted", "inconclusive", "not measured"
MIN_SEEDS = 3
ACCURACY_MARGIN = 0.01  # one point of accuracy: "flat", "does not degrade", "saturates", "comparable"
T_MARGIN = 0.1          # "the learnt t ends near 0.5": within 0.1 of it
BASELINES = ("ae", "vae", "dae", "cdae", "simclr-gauss")
AUGMENTATION_FREE = ("ae", "vae", "dae", "cdae", "drl", "vdrl", "drl-vp", "vdrl-vp")
PROBE_HEADS = ("linear", "mlp")
SEQUENCE_HEADS = ("gru", "transformer")
SEEDS = "0,1,2"

Values = Mapping[int, float]  # seed -> value


# -- the tests ------------------------------------------------------------------


_above = stats.p_mean_above  # one-sided p of "mean(d) > bound"


def _below(d: np.ndarray, bound: float) -> float:
    return stats.p_mean_above(-d, -bound)


@dataclass(frozen=True)
class Side:
    """One side of a comparison: what it is and its value per seed (a constant has no seeds)."""

    label: str
    values: Values = field(default_factory=dict)
    constant: float | None = None


@dataclass(frozen=True)
class Comparison:
    label: str      # the setting compared, e.g. "linear head"
    left: Side
    right: Side
    kind: str       # greater | not_less | equivalent
    metric: str     # how values are printed (accuracies in %)
    margin: float = 0.0

    def differences(self) -> np.ndarray:
        if self.right.constant is not None:
            return np.array([v - self.right.constant for _, v in sorted(self.left.values.items())])
        seeds = sorted(set(self.left.values) & set(self.right.values))
        return np.array([self.left.values[s] - self.right.values[s] for s in seeds])

    def p_values(self) -> tuple[float, float]:
        """(p of the claim, p of its contradiction)."""
        d, m = self.differences(), self.margin
        if self.kind == "greater":
            return _above(d, 0.0), _below(d, 0.0)
        if self.kind == "not_less":
            return _above(d, -m), _below(d, -m)
        if self.kind == "equivalent":
            return max(_above(d, -m), _below(d, m)), min(_above(d, m), _below(d, -m))
        raise ValueError(f"unknown test kind {self.kind!r}; valid: greater, not_less, equivalent")

    def measured(self) -> bool:
        return bool(self.left.values) and (self.right.constant is not None or bool(self.right.values))


@dataclass(frozen=True)
class Judged:
    """A test with its p-values and verdict; ``p_against`` Holm-adjusted over its claim's tests."""

    test: Comparison
    n: int             # shared seeds
    p: float
    p_against: float
    verdict: str


def _holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (NaN left as NaN, not counted)."""
    order = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def judge(tests: Sequence[Comparison]) -> list[Judged]:
    """Every test's verdict. "All supported" is an intersection-union test, valid at the level
    unadjusted; "any contradicted" is a union, so the contradiction p-values are Holm-adjusted."""
    measured = [t.measured() and len(t.differences()) >= MIN_SEEDS for t in tests]
    raw = [t.p_values() if ok else (math.nan, math.nan) for t, ok in zip(tests, measured, strict=True)]
    against = _holm([p_against for _, p_against in raw])
    out = []
    for t, ok, (p, _), p_against in zip(tests, measured, raw, against, strict=True):
        if not t.measured():
            verdict = NOT_MEASURED
        elif not ok:
            verdict = INCONCLUSIVE
        elif p < stats.SIGNIFICANCE:
            verdict = SUPPORTED
        elif p_against < stats.SIGNIFICANCE:
            verdict = CONTRADICTED
        else:
            verdict = INCONCLUSIVE
        out.append(Judged(t, len(t.differences()) if t.measured() else 0, p, p_against, verdict))
    return out


def combine(verdicts: Sequence[str]) -> str:
    """A claim's verdict from its tests' verdicts."""
    if not verdicts or all(v == NOT_MEASURED for v in verdicts):
        return NOT_MEASURED
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return INCONCLUSIVE


# -- reading the rows -----------------------------------------------------------------


def _setting_value(setting: str, key: str) -> float:
    """A number the row's ``setting`` JSON records (its val_accuracy, a semisup run's t_start...)."""
    try:
        return float(json.loads(setting)[key])
    except (ValueError, KeyError, TypeError):
        return math.nan


def _val_accuracy(setting: str) -> float:
    return _setting_value(setting, "val_accuracy")


def _equals(column: pd.Series, value: object) -> pd.Series:
    """``column == value`` as plain booleans: a missing setting (NA) equals nothing; t rounded as stored."""
    if isinstance(value, float):
        return (column.astype("float64").round(6) == round(value, 6)).fillna(False).astype(bool)
    return (column == value).fillna(False).astype(bool)


@dataclass(frozen=True)
class Context:
    """The rows of one dataset, preset and budget, and how to ask them for per-seed values."""

    dataset: str
    preset: str
    images_seen: int
    budget_set: str     # the budget overrides of its runs ('' for the preset's own)
    rows: pd.DataFrame  # with columns entry_variant, and the store's

    @property
    def title(self) -> str:
        seen = "budget not recorded" if self.images_seen < 0 else f"{self.images_seen:,} images seen"
        return f"{self.dataset} · {self.preset} · {seen}"

    @functools.cached_property
    def _by_run_kind(self) -> dict[tuple, pd.DataFrame]:
        return {key: g for key, g in self.rows.groupby(["protocol", "method", "metric", "entry_variant"], sort=False)}

    def select(self, protocol: str, method: str, metric: str, variant: str = "", **setting: object) -> pd.DataFrame:
        r = self._by_run_kind.get((protocol, method, metric, variant), self.rows.iloc[:0])
        mask = pd.Series(True, index=r.index)
        for column, value in setting.items():
            mask &= _equals(r[column], value)
        return r[mask]

    def values(self, protocol: str, method: str, metric: str, variant: str = "", **setting: object) -> dict[int, float]:
        rows = self.select(protocol, method, metric, variant, **setting)
        return {int(s): float(v) for s, v in zip(rows["seed"], rows["value"], strict=True)}

    def side(self, protocol: str, method: str, metric: str, variant: str = "", label: str = "",
             **setting: object) -> Side:
        return Side(label or entry_name(method, variant), self.values(protocol, method, metric, variant, **setting))

    def distinct(self, column: str, protocol: str, method: str | None = None, **setting: object) -> list:
        r = self.rows[self.rows["protocol"] == protocol]
        if method is not None:
            r = r[r["method"] == method]
        for col, value in setting.items():
            r = r[_equals(r[col], value)]
        return sorted(v for v in r[column].dropna().unique().tolist() if v != "")


def contexts(df: pd.DataFrame) -> list[Context]:
    """Every (dataset, preset, budget) of the normalised store frame ``df``."""
    if df.empty:
        return []
    split = df["variant"].map(split_budget)
    rows = df.assign(entry_variant=split.str[0], budget_set=split.str[1],
                     images_seen=df["config"].map(images_seen))
    out = []
    for (dataset, preset, seen, budget_set), group in rows.groupby(
            ["dataset", "preset", "images_seen", "budget_set"], sort=True):
        out.append(Context(str(dataset), str(preset), int(seen), str(budget_set), group))
    return sorted(out, key=lambda c: (c.dataset, c.preset, c.images_seen, c.budget_set))


# -- the claims --------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    number: str
    statement: str
    source: str
    tested_as: str
    protocol: str
    methods: tuple[str, ...]
    tests: Callable[[Context], list[Comparison]]
    extra_set: str = ""  # a --set the measuring command needs (e.g. latent_dim=2)

    def command(self, context: Context) -> str:
        sets = [s for s in (context.budget_set, self.extra_set) if s]
        set_args = "".join(f" --set {s}" for part in sets for s in part.split("; "))
        dataset = "" if context.dataset == "digits" else f" --dataset {context.dataset}"
        preset = "" if context.preset == "quick" else f" --preset {context.preset}"
        return (f"python -m benchmarks run --method {','.join(self.methods)} --protocol {self.protocol}"
                f"{dataset}{preset} --seeds {SEEDS}{set_args}")


def _beats(c: Context, protocol: str, method: str, rivals: Iterable[str], metric: str,
           heads: Iterable[str], labels: Iterable[int | None] = (None,)) -> list[Comparison]:
    tests = []
    for count in labels:
        for head in heads:
            setting = {"head": head, **({} if count is None else {"labels": count})}
            where = f"{head} head" + ("" if count is None else f", {count} labels")
            left = c.side(protocol, method, metric, **setting)
            tests += [Comparison(where, left, c.side(protocol, rival, metric, **setting), "greater", metric)
                      for rival in rivals]
    return tests


def _best_t_beats(method: str, rivals: Sequence[str]) -> Callable[[Context], list[Comparison]]:
    return lambda c: _beats(c, "probe", method, rivals, "best_t_accuracy", PROBE_HEADS)


def _end_to_end(method: str, kind: str) -> Callable[[Context], list[Comparison]]:
    """Probe accuracy at t = 1 against t = 0 (``greater`` reversed: t = 0 above t = 1)."""
    def tests(c: Context) -> list[Comparison]:
        out = []
        for head in PROBE_HEADS:
            at0 = c.side("probe", method, "accuracy", label=f"{method} at t = 0", head=head, t=0.0)
            at1 = c.side("probe", method, "accuracy", label=f"{method} at t = 1", head=head, t=1.0)
            if kind == "degrades":
                out.append(Comparison(f"{head} head", at0, at1, "greater", "accuracy"))
            else:
                out.append(Comparison(f"{head} head", at1, at0, kind, "accuracy", ACCURACY_MARGIN))
        return out
    return tests


def _flat(methods: Sequence[str]) -> Callable[[Context], list[Comparison]]:
    return lambda c: [t for m in methods for t in _end_to_end(m, "equivalent")(c)]


def _interior_best_t(method: str) -> Callable[[Context], list[Comparison]]:
    """Per seed: test accuracy at the validation-best interior t against at the validation-best end."""
    def tests(c: Context) -> list[Comparison]:
        out = []
        for head in PROBE_HEADS:
            rows = c.select("probe", method, "accuracy", head=head)
            interior, ends = {}, {}
            for seed, seed_rows in rows.groupby("seed"):
                ts = seed_rows["t"].round(6)
                lo, hi = ts.min(), ts.max()
                val = seed_rows["setting"].map(_val_accuracy)
                for target, mask in ((interior, (ts > lo) & (ts < hi)), (ends, (ts == lo) | (ts == hi))):
                    if mask.any() and val[mask].notna().all():
                        target[int(seed)] = float(seed_rows["value"][mask].loc[val[mask].idxmax()])
            out.append(Comparison(f"{head} head", Side(f"{method}, best interior t", interior),
                            Side(f"{method}, best of t = 0 and t = 1", ends), "greater", "accuracy"))
        return out
    return tests


def _largest_k(c: Context, method: str, variant: str = "") -> int | None:
    ks = c.distinct("points", "trajectory", method, entry_variant=variant)
    return int(ks[-1]) if ks else None


def _trajectory_beats_best_t(methods: Sequence[str]) -> Callable[[Context], list[Comparison]]:
    def tests(c: Context) -> list[Comparison]:
        out = []
        for method in methods:
            k = _largest_k(c, method)
            for head in SEQUENCE_HEADS:
                if k is None:
                    out.append(Comparison(f"{head}", Side(entry_name(method, "")), Side("mlp-best-t"), "greater", "accuracy"))
                    continue
                left = c.side("trajectory", method, "accuracy", label=f"{method} {head}, K = {k}", head=head, points=k)
                right = c.side("trajectory", method, "accuracy", label=f"{method} mlp-best-t, K = {k}",
                               head="mlp-best-t", points=k)
                out.append(Comparison(f"{head} head, K = {k}", left, right, "greater", "accuracy"))
        return out
    return tests


def _more_points(methods: Sequence[str], kind: str) -> Callable[[Context], list[Comparison]]:
    """``greater``: the largest K above K = 1; ``equivalent``: the largest K within a point of the next."""
    def tests(c: Context) -> list[Comparison]:
        out = []
        for method in methods:
            ks = [int(k) for k in c.distinct("points", "trajectory", method, entry_variant="")]
            for head in SEQUENCE_HEADS:
                if len(ks) < 2:
                    out.append(Comparison(f"{head}", Side(f"{method} {head}"), Side(f"{method} {head}"), kind, "accuracy"))
                    continue
                low = ks[0] if kind == "greater" else ks[-2]
                left = c.side("trajectory", method, "accuracy", label=f"{method} {head}, K = {ks[-1]}",
                              head=head, points=ks[-1])
                right = c.side("trajectory", method, "accuracy", label=f"{method} {head}, K = {low}",
                               head=head, points=low)
                out.append(Comparison(f"{head} head", left, right, kind, "accuracy", ACCURACY_MARGIN))
        return out
    return tests


def _gain_grows_small_latent(methods: Sequence[str], small: str = "latent_dim=2") -> Callable[[Context], list[Comparison]]:
    """Per seed: (sequence head - mlp-best-t) at the largest K, for the 2-d latent against the default."""
    def gain(c: Context, method: str, variant: str, head: str) -> dict[int, float]:
        k = _largest_k(c, method, variant)
        if k is None:
            return {}
        seq = c.values("trajectory", method, "accuracy", variant, head=head, points=k)
        best = c.values("trajectory", method, "accuracy", variant, head="mlp-best-t", points=k)
        return {s: seq[s] - best[s] for s in sorted(set(seq) & set(best))}

    def tests(c: Context) -> list[Comparison]:
        return [Comparison(f"{head} head", Side(f"{method} [{small}] gain", gain(c, method, small, head)),
                     Side(f"{method} gain", gain(c, method, "", head)), "greater", "gain")
                for method in methods for head in SEQUENCE_HEADS]
    return tests


def _semisup_variants(c: Context, methods: Sequence[str]) -> list[str]:
    """The semisup settings (entry variants) every one of ``methods`` was run at."""
    rows = c.rows[c.rows["protocol"] == "semisup"]
    common = set.intersection(*(set(rows[rows["method"] == m]["entry_variant"]) for m in methods))
    return sorted(common) or [""]


def _semisup_settings(c: Context, methods: Sequence[str], shared_by: Sequence[str]) -> Iterator[tuple]:
    """(variant, method, setting, its description) of every semisup number of ``methods``, at the
    variants every one of ``shared_by`` was run at."""
    for variant in _semisup_variants(c, shared_by):
        for method in methods:
            for head in c.distinct("head", "semisup", method, entry_variant=variant) or ["no mixup"]:
                for count in c.distinct("labels", "semisup", method, entry_variant=variant, head=head) or [None]:
                    setting = {"head": head, **({} if count is None else {"labels": int(count)})}
                    where = f"{head}" + ("" if count is None else f", {int(count)} labels") + (
                        f" [{variant}]" if variant else "")
                    yield variant, method, setting, where


def _laplacenet_beats_random(methods: Sequence[str]) -> Callable[[Context], list[Comparison]]:
    def tests(c: Context) -> list[Comparison]:
        return [Comparison(where, c.side("semisup", method, "accuracy", variant, **setting),
                           c.side("semisup", "none", "accuracy", variant, label="random init", **setting),
                           "greater", "accuracy")
                for variant, method, setting, where in _semisup_settings(c, methods, ("none", *methods))]
    return tests


def _t_final_near_half(methods: Sequence[str]) -> Callable[[Context], list[Comparison]]:
    """The final t against 0.5, over the seeds whose t started outside 0.5 +- T_MARGIN: a t that
    starts near 0.5 (the default t_init) and never moves would pass without anything being learnt."""
    def tests(c: Context) -> list[Comparison]:
        out = []
        for variant, method, setting, where in _semisup_settings(c, methods, methods):
            rows = c.select("semisup", method, "t_final", variant, **setting)
            started_away = rows[(rows["setting"].map(lambda s: _setting_value(s, "t_start")) - 0.5).abs() > T_MARGIN]
            if started_away.empty:
                continue
            values = {int(s): float(v) for s, v in zip(started_away["seed"], started_away["value"], strict=True)}
            out.append(Comparison(where, Side(entry_name(method, variant), values), Side("0.5", constant=0.5),
                                  "equivalent", "t_final", T_MARGIN))
        return out
    return tests


def _lowlabel_beats(method: str, rivals: Sequence[str]) -> Callable[[Context], list[Comparison]]:
    def tests(c: Context) -> list[Comparison]:
        labels = [int(n) for n in c.distinct("labels", "lowlabel", method, entry_variant="")] or [None]
        return _beats(c, "lowlabel", method, rivals, "best_t_accuracy", PROBE_HEADS, labels)
    return tests


def _svm_comparable_at_t1(method: str, rivals: Sequence[str]) -> Callable[[Context], list[Comparison]]:
    def tests(c: Context) -> list[Comparison]:
        out = []
        for count in [int(n) for n in c.distinct("labels", "svm", method, entry_variant="")] or [None]:
            setting = {"t": 1.0, **({} if count is None else {"labels": count})}
            where = "t = 1" + ("" if count is None else f", {count} labels")
            left = c.side("svm", method, "accuracy", **setting)
            out += [Comparison(where, left, c.side("svm", rival, "accuracy", **setting), "equivalent", "accuracy",
                         ACCURACY_MARGIN) for rival in rivals]
        return out
    return tests


DRL_PAPER = "Diffusion-Based Representation Learning"
FOLLOW_UP = "From points to functions"
BEST_T = ("best-t accuracy of the probe (t chosen per seed on validation, test scored there), "
          "linear and MLP heads, against each rival")

CLAIMS: tuple[Claim, ...] = (
    Claim("1a", "DRL's best-t probe accuracy is above AE's, VAE's, DAE's, CDAE's and SimCLR-Gauss's.",
          f"{DRL_PAPER}, Section 4 (Figure 4)", BEST_T, "probe", ("drl", *BASELINES),
          _best_t_beats("drl", BASELINES)),
    Claim("1b", "VDRL's best-t probe accuracy is above AE's, VAE's, DAE's, CDAE's and SimCLR-Gauss's.",
          f"{DRL_PAPER}, Section 4 (Figure 4)", BEST_T, "probe", ("vdrl", *BASELINES),
          _best_t_beats("vdrl", BASELINES)),
    Claim("2a", "AE and VAE are flat in t.", f"{DRL_PAPER}, Section 4 (Figure 4)",
          f"probe accuracy at t = 1 within {100 * ACCURACY_MARGIN:g} point of t = 0 (equivalence, TOST), per head",
          "probe", ("ae", "vae"), _flat(("ae", "vae"))),
    Claim("2b", "DAE degrades as t grows.", f"{DRL_PAPER}, Section 4 (Figure 4)",
          "probe accuracy at t = 0 above t = 1, per head", "probe", ("dae",), _end_to_end("dae", "degrades")),
    Claim("2c", "CDAE does not degrade as t grows.", f"{DRL_PAPER}, Section 4 (Figure 4)",
          f"probe accuracy at t = 1 at least that at t = 0 less {100 * ACCURACY_MARGIN:g} point "
          "(non-inferiority), per head", "probe", ("cdae",), _end_to_end("cdae", "not_less")),
    Claim("3", "SimCLR with its full augmentations beats every augmentation-free method.",
          f"{DRL_PAPER}, Section 4 (Figure 4)", BEST_T, "probe", ("simclr", *AUGMENTATION_FREE),
          _best_t_beats("simclr", AUGMENTATION_FREE)),
    Claim("4a", "On the VP SDE, DRL still beats the autoencoder baselines.", f"{DRL_PAPER}, Section 4 (Figure 5)",
          BEST_T + " (DRL on the VP SDE: drl-vp)", "probe", ("drl-vp", "ae", "vae", "dae", "cdae"),
          _best_t_beats("drl-vp", ("ae", "vae", "dae", "cdae"))),
    Claim("4b", "On the VP SDE, VDRL still beats the autoencoder baselines.", f"{DRL_PAPER}, Section 4 (Figure 5)",
          BEST_T + " (VDRL on the VP SDE: vdrl-vp)", "probe", ("vdrl-vp", "ae", "vae", "dae", "cdae"),
          _best_t_beats("vdrl-vp", ("ae", "vae", "dae", "cdae"))),
    Claim("5", "The best t is interior (neither 0 nor 1) for DRL.", f"{DRL_PAPER}, Section 4",
          "per seed, the test accuracy at the interior t that validation prefers, against the better end "
          "(t = 0 or 1) by validation, per head", "probe", ("drl",), _interior_best_t("drl")),
    Claim("6a", "Trajectory heads (GRU, Transformer) beat the best single t.", f"{FOLLOW_UP}, Section 4",
          "at the largest K, the sequence head against `mlp-best-t` (the best single point of the same K, "
          "chosen on validation), DRL and VDRL", "trajectory", ("drl", "vdrl"),
          _trajectory_beats_best_t(("drl", "vdrl"))),
    Claim("6b", "More trajectory points help.", f"{FOLLOW_UP}, Section 4",
          "the sequence head at the largest K against K = 1, DRL and VDRL", "trajectory", ("drl", "vdrl"),
          _more_points(("drl", "vdrl"), "greater")),
    Claim("6c", "The benefit of more points saturates.", f"{FOLLOW_UP}, Section 4",
          f"the sequence head at the largest K within {100 * ACCURACY_MARGIN:g} point of the next largest "
          "(equivalence, TOST), DRL and VDRL", "trajectory", ("drl", "vdrl"), _more_points(("drl", "vdrl"), "equivalent")),
    Claim("6d", "The trajectory's gain grows for a 2-d latent.", f"{FOLLOW_UP}, Section 4",
          "per seed, (sequence head - `mlp-best-t`) at the largest K with `latent_dim=2`, against the same gain "
          "at the default latent size, DRL and VDRL", "trajectory", ("drl", "vdrl"),
          _gain_grows_small_latent(("drl", "vdrl")), extra_set="latent_dim=2"),
    Claim("7a", "DRL or VDRL initialisation improves LaplaceNet over its random initialisation.",
          f"{DRL_PAPER}, Section 4 (Table 1)", "semi-supervised test accuracy against the randomly initialised "
          "encoder (`none`), per labelled-set size and setting", "semisup", ("none", "drl", "vdrl"),
          _laplacenet_beats_random(("drl", "vdrl"))),
    Claim("7b", "LaplaceNet's learnt t ends near 0.5 whatever its start.", f"{DRL_PAPER}, Appendix G",
          f"the final t within {T_MARGIN:g} of 0.5 (equivalence, TOST), over the runs whose t started farther "
          f"from 0.5 than that (`--set t_init=0.9`, where the paper's loss scan started it); a run started at "
          f"the default 0.5 would pass with a t that never moves, so it is not counted. In training mode the "
          f"loss gradient reaching t is zero (BatchNorm removes the per-channel bias t adds, one t for the "
          f"batch); the reference's weight decay on t's logit pulls it to 0.5, which `--set t_weight_decay=true` "
          f"reproduces (README, claim 7b)", "semisup",
          ("drl", "vdrl"), _t_final_near_half(("drl", "vdrl")), extra_set="t_init=0.9"),
    Claim("8a", "With few labels, DRL beats AE, VAE and SimCLR-Gauss at its best t.",
          f"{DRL_PAPER}, Appendix (Figures 9 and 10)", "best-t accuracy of the low-label probe, per head and "
          "label count", "lowlabel", ("drl", "ae", "vae", "simclr-gauss"),
          _lowlabel_beats("drl", ("ae", "vae", "simclr-gauss"))),
    Claim("8b", "With few labels, VDRL beats AE, VAE and SimCLR-Gauss at its best t.",
          f"{DRL_PAPER}, Appendix (Figures 9 and 10)", "best-t accuracy of the low-label probe, per head and "
          "label count", "lowlabel", ("vdrl", "ae", "vae", "simclr-gauss"),
          _lowlabel_beats("vdrl", ("ae", "vae", "simclr-gauss"))),
    Claim("8c", "At t = 1 DRL's code is comparable to AE's and VAE's (Proposition 2.1).",
          f"{DRL_PAPER}, Appendix E (Figure 8)", f"SVM (`SVC()` defaults) accuracy at t = 1 within "
          f"{100 * ACCURACY_MARGIN:g} point of the rival's (equivalence, TOST), per number of labelled samples",
          "svm", ("drl", "ae", "vae"), _svm_comparable_at_t1("drl", ("ae", "vae"))),
)


# -- the page -----------------------------------------------------------------------


def _fmt(x: float, metric: str) -> str:
    return f"{100 * x:.2f}" if is_accuracy(metric) or metric == "gain" else f"{x:.4f}"


def _side_text(side: Side, metric: str) -> str:
    if side.constant is not None:
        return _fmt(side.constant, metric)
    if not side.values:
        return "–"
    v = np.array(list(side.values.values()), dtype=np.float64)
    n = len(v)
    mean = float(v.mean())
    if n < 2:
        return f"{_fmt(mean, metric)} (1)"
    low, high = stats.confidence_interval(mean, float(v.std(ddof=1)), n)
    return f"{_fmt(mean, metric)} [{_fmt(low, metric)}, {_fmt(high, metric)}] ({n})"


def _p_text(p: float) -> str:
    return "–" if math.isnan(p) else f"{p:.3g}"


def _relation(test: Comparison) -> str:
    m = f"{100 * test.margin:g} pt" if test.metric != "t_final" else f"{test.margin:g}"
    return {"greater": ">", "not_less": f">= (less {m})", "equivalent": f"≈ (within {m})"}[test.kind]


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]


def _evaluate(ctxs: Sequence[Context]) -> dict[tuple[str, int], tuple[str, list[Judged]]]:
    out = {}
    for claim in CLAIMS:
        for i, c in enumerate(ctxs):
            judged = judge(claim.tests(c))
            out[(claim.number, i)] = (combine([j.verdict for j in judged]), judged)
    return out


def claims_page(df: pd.DataFrame, generator: str) -> str:
    """``claims.md`` for the normalised store frame ``df``."""
    ctxs = contexts(df)
    lines = [
        "# The papers' claims, tested",
        "",
        f"Generated by `{generator}` from the results store; do not edit by hand. Every verdict is computed: "
        f"per claim and context (dataset, preset, pretraining budget), each comparison is a one-sided t-test "
        f"over the seeds both sides share (p < {stats.SIGNIFICANCE:g}); an equivalence (≈) is two one-sided "
        f"tests against a margin of {100 * ACCURACY_MARGIN:g} accuracy point (TOST), a non-inferiority (>=) "
        f"one. Fewer than {MIN_SEEDS} shared seeds make a comparison **inconclusive**; absent rows make it "
        "**not measured**. A claim is **contradicted** in a context when any of its comparisons is (the "
        "p-values against the claim Holm-adjusted over its comparisons, since any one would suffice), "
        "**supported** when all are (no adjustment needed: every one must pass), inconclusive otherwise. Numbers are mean [95% interval] (seeds), "
        "accuracies in %.",
        "",
    ]
    if not ctxs:
        return "\n".join([*lines, "No results in the store yet.", ""])
    results = _evaluate(ctxs)
    header = ["claim", *(c.title for c in ctxs)]
    body = [[f"{claim.number}. {claim.statement}",
             *(results[(claim.number, i)][0] for i in range(len(ctxs)))] for claim in CLAIMS]
    lines += ["## Verdicts", "", *_md_table(header, body), ""]
    for claim in CLAIMS:
        lines += [f"## Claim {claim.number}", "", f"**{claim.statement}** Source: {claim.source}. "
                  f"Tested as: {claim.tested_as}.", ""]
        for i, c in enumerate(ctxs):
            verdict, tests = results[(claim.number, i)]
            lines += [f"### {claim.number} · {c.title}: {verdict}", ""]
            if verdict == NOT_MEASURED:
                lines += ["Measure it with:", "", "```sh", claim.command(c), "```", ""]
                continue
            rows = [[j.test.label, j.test.left.label, _relation(j.test), j.test.right.label,
                     _side_text(j.test.left, j.test.metric), _side_text(j.test.right, j.test.metric), str(j.n),
                     _p_text(j.p), _p_text(j.p_against), j.verdict] for j in tests]
            lines += _md_table(["setting", "left", "", "right", "left value", "right value", "shared seeds",
                                "p", "p against (Holm)", "verdict"], rows)
            lines.append("")
            if any(j.verdict == NOT_MEASURED for j in tests):
                lines += ["Measure the missing comparisons with:", "", "```sh", claim.command(c), "```", ""]
    return "\n".join(lines)
