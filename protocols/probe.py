"""Frozen-encoder probe per t (DRL paper, Figure 4; follow-up, per-t probes).

For every t in the grid, a head on the frozen codes E(x, t): ``linear``, or the
papers' ``mlp`` (Linear(d, hidden) -> ReLU -> Dropout -> Linear). All t and
learning rates train together as one batched model; learning rate and epoch
are chosen on the validation split, the test split is scored once with that
choice, and the best t is chosen on validation too. A static method (codes that
ignore t) gets one head per setting, reported at every t, and no ``best_t``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from protocols.base import (
    Encoded,
    Record,
    TimeGridConfig,
    register_protocol,
    reported_at,
    times_to_encode,
)
from protocols.batched import HeadSelection, fit_select_score_seeds, standardise

HEADS = ("linear", "mlp")


@dataclass(frozen=True)
class ProbeConfig(TimeGridConfig):
    heads: tuple[str, ...] = HEADS
    probe_lrs: tuple[float, ...] = (1e-3, 3e-3)
    probe_epochs: int = 30
    probe_batch_size: int = 256
    probe_hidden: int = 512
    probe_dropout: float = 0.25
    probe_weight_decay: float = 1e-5
    probe_head_seeds: int = 1  # independent draws of every head on the same codes, trained as one batch

    def __post_init__(self):
        bad_heads = [h for h in self.heads if h not in HEADS]
        if bad_heads or not self.heads:
            raise ValueError(f"unknown probe head {bad_heads or self.heads!r}; valid: {', '.join(HEADS)}")
        super().__post_init__()
        if not self.probe_lrs or any(lr <= 0 for lr in self.probe_lrs):
            raise ValueError(f"probe_lrs must be positive; got {self.probe_lrs!r}")
        if self.probe_epochs < 1:
            raise ValueError(f"probe_epochs must be >= 1; got {self.probe_epochs}")
        if self.probe_head_seeds < 1:
            raise ValueError(f"probe_head_seeds must be >= 1; got {self.probe_head_seeds}")


@register_protocol
class Probe:
    name = "probe"
    config_cls = ProbeConfig
    notes = """
Frozen encoder in eval mode; for each t a head on the codes standardised with
train statistics: `linear`, or `mlp` (Linear(d, 512) - ReLU - Dropout 0.25 -
Linear, the follow-up's code). Adam with weight decay 1e-5, batch 256; learning
rate (from `probe_lrs`) and epoch chosen per t on the validation split, test
scored once with that head. `best_t` is chosen on validation; `best_t_accuracy`
is the test accuracy there. Differences from the papers: the DRL paper's text
trains a single-layer head for 50 epochs (the `paper` preset: 50 epochs, the
follow-up's lr grid {1e-3, 7.5e-4, 5e-4, 2.5e-4, 1e-4, 5e-5}); the follow-up's
code trains 100 epochs and picks the test accuracy at the best validation epoch,
which this suite also does; it reports 3 seeds. Each `--seeds` value here
retrains the encoder; `probe_head_seeds=N` adds N independent draws of every
head on the same codes (own initialisation, mini-batch order and dropout),
trained in the same batch: the record is their mean test accuracy (best t by
their mean validation accuracy), each draw's accuracy, lr and epoch in its
extra. The `quick` preset uses 30 epochs on digits, 15 on
MNIST, and lr in {1e-3, 3e-3}.
"""
    metrics = ("accuracy", "best_t", "best_t_accuracy")
    test_metrics = ("accuracy", "best_t_accuracy")

    def run(self, encoded: Encoded, cfg: ProbeConfig) -> list[Record]:
        return probe_records(encoded, cfg, ProbeInputs.read(encoded, cfg.t_values))


@dataclass
class ProbeInputs:
    """Standardised codes and labels of the three splits, read once from the feature cache."""

    ts: list[float]          # the t values reported
    trained_ts: list[float]  # the t values trained: all of them, or one for a static method
    features: list[Tensor]   # train, val, test: (len(trained_ts), N, d)
    labels: list[Tensor]

    @classmethod
    def read(cls, encoded: Encoded, t_values: tuple[float, ...]) -> ProbeInputs:
        ts = list(t_values)
        # A static method's codes are the same at every t: one head per setting, reported at every t.
        trained_ts = times_to_encode(encoded.method, ts)
        splits = ("train", "val", "test")
        feats = [encoded.features(split, trained_ts).to(encoded.device) for split in splits]
        labels = [encoded.data.split(split).labels.to(encoded.device) for split in splits]
        return cls(ts, trained_ts, standardise(*feats), labels)  # label-free statistics of all train codes


def probe_records(encoded: Encoded, cfg: ProbeConfig, inputs: ProbeInputs,
                  train_subset: Tensor | None = None, labels: int | None = None) -> list[Record]:
    """Per-t heads selected on validation; ``train_subset`` limits which training images are labelled."""
    ts, trained_ts = inputs.ts, inputs.trained_ts
    feats, targets = list(inputs.features), list(inputs.labels)
    if train_subset is not None:
        index = train_subset.to(encoded.device)
        feats[0], targets[0] = feats[0][:, index], targets[0][index]
    records: list[Record] = []
    for head in cfg.heads:
        per_seed = fit_select_score_seeds(
            *zip(feats, targets), n_classes=encoded.data.num_classes, lrs=cfg.probe_lrs,
            epochs=cfg.probe_epochs, batch_size=cfg.probe_batch_size,
            hidden=cfg.probe_hidden if head == "mlp" else None, dropout=cfg.probe_dropout,
            weight_decay=cfg.probe_weight_decay, seed=encoded.seed, head_seeds=cfg.probe_head_seeds,
            progress=encoded.progress,
        )
        sel = _mean_over_head_seeds(per_seed)
        for t, i in reported_at(ts, trained_ts):
            records.append(Record("accuracy", sel.test_accuracy[i], t=t, head=head, labels=labels, extra={
                "lr": sel.lr[i], "epoch": sel.epoch[i], "val_accuracy": sel.val_accuracy[i],
                **_head_seed_spread(per_seed, i)}))
        best = max(range(len(trained_ts)), key=lambda i: (sel.val_accuracy[i], -i))
        if encoded.method.time_conditioned:  # for a static method no t is better than another
            records.append(Record("best_t", ts[best], head=head, labels=labels,
                                  extra={"val_accuracy": sel.val_accuracy[best]}))
        records.append(Record("best_t_accuracy", sel.test_accuracy[best], head=head, labels=labels,
                              extra={"t": trained_ts[best], "val_accuracy": sel.val_accuracy[best],
                                     **_head_seed_spread(per_seed, best)}))
    return records


def _mean_over_head_seeds(per_seed: list[HeadSelection]) -> HeadSelection:
    """Accuracies averaged over head seeds; one seed's selection as it is (lr and epoch: seed 0's)."""
    if len(per_seed) == 1:
        return per_seed[0]
    def mean(field: str) -> list[float]:
        return [sum(values) / len(values) for values in zip(*(getattr(s, field) for s in per_seed))]
    return HeadSelection(lr=per_seed[0].lr, epoch=per_seed[0].epoch,
                         val_accuracy=mean("val_accuracy"), test_accuracy=mean("test_accuracy"))


def _head_seed_spread(per_seed: list[HeadSelection], i: int) -> dict:
    """With several head seeds: each one's test accuracy and choices at feature set i."""
    if len(per_seed) == 1:
        return {}
    return {"head_seed_test_accuracy": [s.test_accuracy[i] for s in per_seed],
            "head_seed_lr": [s.lr[i] for s in per_seed], "head_seed_epoch": [s.epoch[i] for s in per_seed]}
