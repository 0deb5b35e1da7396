"""lowlabel, svm and silhouette: label draws, known answers, and what they store."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from protocols.base import Encoded
from protocols.labels import label_ladder, save_subset, stratified_subset
from protocols.lowlabel import LowLabel, LowLabelConfig
from protocols.silhouette import Silhouette, SilhouetteConfig
from protocols.svm import SVMConfig, SVMFewShot
from tests.test_protocol_contract import FakeFeatures, _splits


def test_ladder_is_the_papers_or_proportional():
    assert label_ladder(54_000, 10) == (1000, 5000, 10000)
    assert label_ladder(1077, 10) == (22, 108, 215)  # digits: the same fractions of a 50k set
    assert label_ladder(100, 10) == (10, 10, 20)      # never fewer than one per class
    assert label_ladder(1077, 10, (50, 100)) == (50, 100)


def test_stratified_subset_is_balanced_seeded_and_method_independent():
    labels = torch.arange(1000) % 10
    a, b = stratified_subset(labels, 100, seed=3), stratified_subset(labels, 100, seed=3)
    assert torch.equal(a, b) and len(a.unique()) == 100
    assert torch.bincount(labels[a]).tolist() == [10] * 10
    assert not torch.equal(a, stratified_subset(labels, 100, seed=4))
    with pytest.raises(ValueError, match="cannot draw 2000 labelled images from a split of 1000"):
        stratified_subset(labels, 2000, seed=0)


def test_saved_subset_round_trips(tmp_path):
    index = torch.tensor([3, 1, 4])
    info = save_subset(index, tmp_path, "toy-train-3-seed0")
    saved = json.loads((tmp_path / "splits" / "toy-train-3-seed0.json").read_text())
    assert saved["indices"] == [3, 1, 4] and saved["sha256"] == info["split_sha256"]


def test_saved_subset_name_is_file_safe(tmp_path):
    # a folder dataset's name holds a path: its split file must stay inside splits/
    info = save_subset(torch.tensor([0]), tmp_path, "folder:/data/../x-train-1-seed0")
    assert info["split_file"] == f"{tmp_path.name}/splits/folder-data-..-x-train-1-seed0.json"
    assert [p.name for p in (tmp_path / "splits").iterdir()] == ["folder-data-..-x-train-1-seed0.json"]


def _encoded(data, time_conditioned=True, artifacts=None):
    return Encoded(SimpleNamespace(time_conditioned=time_conditioned), data, FakeFeatures(data), 0,
                   torch.device("cpu"), artifacts)


def test_lowlabel_uses_the_saved_labels_and_more_labels_help(tmp_path):
    data = _splits()
    cfg = LowLabelConfig(t_values=(1.0,), heads=("linear",), probe_lrs=(1e-2,), probe_epochs=20,
                         probe_batch_size=16, label_counts=(6, 60))
    records = LowLabel().run(_encoded(data, artifacts=tmp_path), cfg)
    acc = {r.labels: r.value for r in records if r.metric == "accuracy"}
    assert set(acc) == {6, 60} and acc[60] >= acc[6] - 0.05
    files = sorted(p.name for p in (tmp_path / "splits").iterdir())
    assert files == ["toy-train-6-seed0.json", "toy-train-60-seed0.json"]
    assert all("split_sha256" in r.extra for r in records)


def test_svm_is_sklearn_default_svc_on_separable_codes():
    data = _splits()
    records = SVMFewShot().run(_encoded(data), SVMConfig(t_values=(0.0, 1.0), svm_labels=(30,), svm_draws=3))
    by_t = {r.t: r for r in records}
    assert by_t[1.0].value > 0.75 and by_t[1.0].value > by_t[0.0].value  # chance is 1/3; signal grows with t
    assert by_t[1.0].extra["draws"] == 3 and by_t[1.0].head == "svc" and by_t[1.0].labels == 30


def test_silhouette_known_answers():
    data = _splits()

    class Clusters(FakeFeatures):
        def __call__(self, split, ts):
            labels = self.data.split(split).labels.float()
            apart = torch.stack([labels * 100, torch.zeros_like(labels)], dim=1)  # far apart, zero spread
            mixed = torch.randn(len(labels), 2, generator=torch.Generator().manual_seed(0))  # no structure
            return torch.stack([mixed, apart])

    encoded = Encoded(SimpleNamespace(time_conditioned=True), data, Clusters(data), 0, torch.device("cpu"))
    records = Silhouette().run(encoded, SilhouetteConfig(t_values=(0.0, 1.0)))
    values = {r.t: r.value for r in records}
    assert values[1.0] == pytest.approx(1.0)
    assert abs(values[0.0]) < 0.1


def test_static_methods_are_scored_once_and_reported_at_every_t():
    data = _splits()
    records = Silhouette().run(_encoded(data, time_conditioned=False), SilhouetteConfig(t_values=(0.0, 0.5, 1.0)))
    assert [r.t for r in records] == [0.0, 0.5, 1.0] and len({r.value for r in records}) == 1
    assert np.isfinite(records[0].value)
