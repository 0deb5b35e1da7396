"""Few-shot SVM per t (DRL paper, Appendix E): scikit-learn ``SVC()`` with default settings.

For each t and each label count, an ``SVC()`` (RBF kernel, C = 1, gamma
'scale': nothing to tune, so nothing is chosen on validation) is trained on a
stratified draw of labelled training codes and scored on the test split.
Several draws per seed; the stored value is their mean, with their std beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.svm import SVC

from core.data import DataSplits
from core.records import Record
from core.validation import Integers, Items, setting
from protocols.base import Encoded, ReadsTimeGrid, TimeGridConfig, register_protocol
from protocols.labels import check_label_counts, stratified_subset


@dataclass(frozen=True)
class SVMConfig(TimeGridConfig):
    svm_labels: tuple[int, ...] = setting((100, 1000), Items(Integers(1), nonempty=True), smoke=(30, 60))
    svm_draws: int = setting(5, Integers(1), smoke=2)


@register_protocol
class SVMFewShot(ReadsTimeGrid):
    name = "svm"
    config_cls = SVMConfig
    metrics = ("accuracy",)
    test_metrics = ("accuracy",)
    notes = """
scikit-learn `SVC()` with its default settings (RBF kernel, C = 1, gamma
'scale') on the raw codes at each t, trained on 100 and 1000 labelled training
images (stratified draws, `svm_draws` per seed, drawn from the seed alone so
every method sees the same labels) and scored on the whole test split, as in
the DRL paper's Appendix E. Nothing is tuned, so the validation split is not
used. A cell is the mean over seeds of each seed's mean over draws; the std
over draws is stored with each number (`test_std_over_draws`).
"""

    def check_data(self, data: DataSplits, cfg: SVMConfig) -> None:
        check_label_counts(data.train.labels, cfg.svm_labels, "svm_labels")

    def run(self, encoded: Encoded, cfg: SVMConfig) -> list[Record]:
        ts = list(cfg.t_values)
        trained_ts = self.times_to_encode(encoded.method, ts)
        x_train, x_test = (encoded.features(s, trained_ts).numpy() for s in ("train", "test"))
        y_train, y_test = encoded.data.train.labels, encoded.data.test.labels.numpy()
        records = []
        for n in cfg.svm_labels:
            draws = [stratified_subset(y_train, n, encoded.seed * 1000 + d).numpy() for d in range(cfg.svm_draws)]
            scores = [[SVC().fit(x_train[i][idx], y_train.numpy()[idx]).score(x_test[i], y_test)
                       for idx in draws] for i in range(len(trained_ts))]
            for t, i in self.reported_at(ts, trained_ts):
                records.append(Record("accuracy", float(np.mean(scores[i])), t=t, labels=n, head="svc",
                                      extra={"draws": cfg.svm_draws,
                                             "test_std_over_draws": float(np.std(scores[i]))}))
        return records
