"""Mutual information along the trajectory: between the codes at every pair of t, and with the label."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.records import Record
from core.validation import Integers, setting
from protocols.base import Encoded, ReadsTimeGrid, TimeGridConfig, register_protocol
from protocols.information import (
    DEFAULT_NEIGHBOURS,
    ksg_ceiling,
    ksg_mi_from_distances,
    label_entropy,
    label_mi,
    max_norm_distances,
)


@dataclass(frozen=True)
class MIConfig(TimeGridConfig):
    # test codes used (a fixed subset, the same for every method); cost is O(N^2)
    mi_samples: int = setting(2000, Integers(10), smoke=45)
    mi_neighbours: int = setting(DEFAULT_NEIGHBOURS, Integers(1))


@register_protocol
class MutualInformation(ReadsTimeGrid):
    name = "mi"
    config_cls = MIConfig
    metrics = ("nmi", "label_nmi")
    test_metrics = ("nmi", "label_nmi")  # both measured on test codes
    notes = """
No model is trained. On a fixed random subset of the test codes (2000, the
same images for every method), each code dimension z-scored: `nmi` at (t, t2)
is the Kraskov-Stoegbauer-Grassberger estimate (estimator 1, max-norm, k = 3)
of I(E(x, t); E(x, t2)) divided by psi(N) - psi(k), the value the estimator
gives for identical codes; so 1 on the diagonal and about 0 for independent
codes. Bias: KSG is nearly unbiased for weak dependence but underestimates
strong dependence in many dimensions, and it cannot exceed that ceiling (about
log N = 7.6 nats at N = 2000), so values near 1 mean "as dependent as N samples
can show", and values are comparable only at the same N, k and latent size.
`label_nmi` at t is I(E(x, t); y) by Ross's (2014) nearest-neighbour estimator
(scikit-learn's `mutual_info_classif`, extended to vectors), divided by the
label entropy H(y), its largest possible value; it is biased downward when
classes overlap in many dimensions. The follow-up paper uses MINE and divides
by MINE's estimate of I(z; z), which is unbounded for continuous codes; this
suite uses the estimator's own ceiling instead. A static method's codes are
the same at every t: its `nmi` is 1 everywhere.
"""

    def run(self, encoded: Encoded, cfg: MIConfig) -> list[Record]:
        ts = list(cfg.t_values)
        read_ts = self.times_to_encode(encoded.method, ts)
        codes = encoded.features("test", read_ts)
        labels = encoded.data.test.labels
        n = min(cfg.mi_samples, codes.shape[1])
        subset = torch.randperm(codes.shape[1], generator=torch.Generator().manual_seed(0))[:n]
        codes, labels = codes[:, subset].double(), labels[subset]
        codes = (codes - codes.mean(1, keepdim=True)) / codes.std(1, keepdim=True).clamp(min=1e-8)
        index = {t: (i if len(read_ts) == len(ts) else 0) for i, t in enumerate(ts)}
        k = min(cfg.mi_neighbours, n - 1)

        distances = [max_norm_distances(c) for c in codes]
        ceiling = ksg_ceiling(n, k)
        pair_mi: dict[tuple[int, int], float] = {}
        records = []
        for a in ts:
            for b in ts:
                i, j = sorted((index[a], index[b]))
                if (i, j) not in pair_mi:  # the estimator is symmetric: each pair once
                    pair_mi[(i, j)] = ksg_mi_from_distances(distances[i], distances[j], k)
                records.append(Record("nmi", pair_mi[(i, j)] / ceiling, t=a, t2=b,
                                      extra={"test_mi_nats": pair_mi[(i, j)], "samples": n, "k": k}))
        entropy = label_entropy(labels)
        label_values = [label_mi(c, labels, k) for c in codes]
        for t in ts:
            mi = label_values[index[t]]
            records.append(Record("label_nmi", mi / entropy, t=t,
                                  extra={"test_mi_nats": mi, "test_label_entropy": entropy, "samples": n}))
        return records
