"""Silhouette score of the codes per t (DRL paper, Appendix H)."""

from __future__ import annotations

from dataclasses import dataclass

from sklearn.metrics import silhouette_score

from core.records import Record
from core.validation import Integers, setting
from protocols.base import Encoded, ReadsTimeGrid, TimeGridConfig, register_protocol


@dataclass(frozen=True)
class SilhouetteConfig(TimeGridConfig):
    silhouette_samples: int = setting(10_000, Integers(2))  # scored on at most this many test codes (it is quadratic)


@register_protocol
class Silhouette(ReadsTimeGrid):
    name = "silhouette"
    config_cls = SilhouetteConfig
    metrics = ("silhouette",)
    test_metrics = ("silhouette",)
    notes = """
Silhouette score (scikit-learn, euclidean distance) of the test codes at each
t, with the dataset's classes as clusters, as in the DRL paper's Appendix H:
from -1 (codes nearer another class) to 1 (tight, separated classes). No model
is fitted. Where the test split is larger than `silhouette_samples` (10000), a
fixed random subset of that size is scored (the same for every method).
"""

    def run(self, encoded: Encoded, cfg: SilhouetteConfig) -> list[Record]:
        ts = list(cfg.t_values)
        trained_ts = self.times_to_encode(encoded.method, ts)
        codes = encoded.features("test", trained_ts).numpy()
        labels = encoded.data.test.labels.numpy()
        sample = min(cfg.silhouette_samples, len(labels))
        values = [float(silhouette_score(c, labels, metric="euclidean", sample_size=sample, random_state=0))
                  for c in codes]
        return [Record("silhouette", values[i], t=t) for t, i in self.reported_at(ts, trained_ts)]
