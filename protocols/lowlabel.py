"""The per-t probe with few labels (DRL paper: 1000, 5000 and 10000 labelled training images).

Each label count is a stratified subset of the training split drawn from the
run's seed alone, so every method of a seed is probed on the same labels; the
indices are saved under the results folder and their hash is stored beside
every number. Codes are standardised with all training codes (no labels
needed); heads, selection on validation and test scoring are the probe's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from core.data import DataSplits
from core.records import Record
from core.validation import Integers, Items, setting
from protocols.base import Encoded, ReadsTimeGrid, register_protocol
from protocols.labels import check_label_counts, label_ladder, save_subset, stratified_subset
from protocols.probe import ProbeConfig, ProbeInputs, probe_records


@dataclass(frozen=True)
class LowLabelConfig(ProbeConfig):
    label_counts: tuple[int, ...] = setting((), Items(Integers(1), note="empty: 1000/5000/10000, scaled down for smaller sets"))


@register_protocol
class LowLabel(ReadsTimeGrid):
    name = "lowlabel"
    config_cls = LowLabelConfig
    metrics = ("accuracy", "best_t", "best_t_accuracy")
    test_metrics = ("accuracy", "best_t_accuracy")
    notes = """
The probe (linear and MLP heads per t, learning rate and epoch chosen on the
full validation split, test scored once) trained on a few labelled training
images: 1000, 5000 and 10000 as in the DRL paper, or, for a training split
smaller than 10000 images, the same fractions of a 50000-image set (digits: 22,
108, 215). Each subset is stratified and drawn from the run's seed only, so
every method of a seed sees the same labels; its indices are saved under
`results/artifacts/splits/` and their hash is stored with every number
(`split_sha256`).
"""

    def check_data(self, data: DataSplits, cfg: LowLabelConfig) -> None:
        labels = data.train.labels
        check_label_counts(labels, label_ladder(len(labels), data.num_classes, cfg.label_counts), "label_counts")

    def run(self, encoded: Encoded, cfg: LowLabelConfig) -> list[Record]:
        train_labels = encoded.data.train.labels
        counts = label_ladder(len(train_labels), encoded.data.num_classes, cfg.label_counts)
        inputs = ProbeInputs.read(encoded, cfg.t_values)
        records: list[Record] = []
        for n in counts:
            subset = stratified_subset(train_labels, n, encoded.seed)
            split = save_subset(subset, encoded.artifacts, f"{encoded.data.name}-train-{n}-seed{encoded.seed}")
            for record in probe_records(encoded, cfg, inputs, train_subset=subset, labels=n):
                records.append(dataclasses.replace(record, extra={**record.extra, **split}))
        return records
