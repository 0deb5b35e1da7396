"""Contract tests generated for every registered protocol: register one and it is tested here.

Protocols run on tiny, informative cached features (no encoder training), and
must never let test labels influence what they choose.
"""

import dataclasses

import pytest
import torch

from benchmarks.presets import preset_settings
from core.data import DataSplits
from core.records import Record
from methods.base import config_from_settings
from protocols.base import Encoded, available_protocols, create_protocol
from tests.conftest import make_images, smoke_method

PROTOCOLS = available_protocols()


SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}


class FakeFeatures:
    """Codes whose class signal grows with t; counts every (split, t) it is asked for."""

    def __init__(self, data: DataSplits, dim: int = 6):
        self.data, self.dim, self.calls = data, dim, []

    def __call__(self, split, ts):
        self.calls.append((split, tuple(ts)))
        labels = self.data.split(split).labels
        # A fixed seed per split: str hashes change with every process (PYTHONHASHSEED).
        g = torch.Generator().manual_seed(SPLIT_SEEDS[split])
        noise = torch.randn(len(ts), len(labels), self.dim, generator=g)
        signal = torch.nn.functional.one_hot(labels, self.dim).float()
        return torch.stack([noise[i] + (0.5 + 2 * t) * signal for i, t in enumerate(ts)])


class _TimeConditioned:
    time_conditioned = True


def _splits(test_labels=None) -> DataSplits:
    train, val, test = (make_images(n, seed=s) for n, s in ((90, 1), (45, 2), (45, 3)))
    if test_labels is not None:
        test = dataclasses.replace(test, labels=test_labels)
    return DataSplits("toy", train, val, test, 3, ("a", "b", "c"), (0.3,), (0.3,))


def _fine_tunes(name) -> bool:
    return getattr(create_protocol(name), "fine_tunes", False)


def _method_for(name, data):
    """A real (untrained, seeded) time-conditioned method for protocols that fine-tune its encoder."""
    if not _fine_tunes(name):
        return _TimeConditioned()
    return smoke_method("drl", data)[0]


def _run(name, data):
    protocol = create_protocol(name)
    cfg = config_from_settings(protocol.config_cls, preset_settings("smoke", data.image_shape))
    features = FakeFeatures(data)
    encoded = Encoded(_method_for(name, data), data, features, seed=0, device=torch.device("cpu"))
    records = protocol.run(encoded, cfg)
    return protocol, records, features


@pytest.mark.parametrize("name", PROTOCOLS)
def test_returns_records_of_declared_metrics(name):
    protocol, records, _ = _run(name, _splits())
    assert records and all(isinstance(r, Record) for r in records)
    assert {r.metric for r in records} <= set(protocol.metrics)
    assert set(protocol.test_metrics) <= set(protocol.metrics)
    assert all(torch.isfinite(torch.tensor(r.value)) for r in records)
    for r in records:
        if "accuracy" in r.metric:
            assert 0.0 <= r.value <= 1.0, "accuracies are stored as fractions"
        if r.t is not None:
            assert 0.0 <= r.t <= 1.0


@pytest.mark.parametrize("name", PROTOCOLS)
def test_learns_from_informative_features(name):
    _, records, _ = _run(name, _splits())
    accuracies = [r.value for r in records if r.metric == "accuracy"]
    if accuracies:
        assert max(accuracies) > 0.6  # chance is 1/3


@pytest.mark.parametrize("name", PROTOCOLS)
def test_test_labels_never_influence_selection(name):
    clean = _splits()
    shuffled_labels = clean.test.labels[torch.randperm(len(clean.test), generator=torch.Generator().manual_seed(0))]
    protocol, a, _ = _run(name, clean)
    _, b, _ = _run(name, _splits(shuffled_labels))
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert (ra.metric, ra.t, ra.head, ra.labels, ra.points) == (rb.metric, rb.t, rb.head, rb.labels, rb.points)
        choices = [{k: v for k, v in r.extra.items() if not k.startswith("test_")} for r in (ra, rb)]
        assert choices[0] == choices[1], f"{name}: a choice changed when only test labels changed"
        if ra.metric not in protocol.test_metrics:
            assert ra.value == rb.value, f"{name}: {ra.metric} depends on test labels"


@pytest.mark.parametrize("name", PROTOCOLS)
def test_reads_each_split_through_the_feature_cache(name):
    if _fine_tunes(name):
        pytest.skip(f"{name} trains a copy of the encoder on images: it has no cached codes to read")
    _, _, features = _run(name, _splits())
    assert features.calls, "a protocol must read codes through Encoded.features"
    assert len(features.calls) == len(set(features.calls)), "asked the cache twice for the same codes"


@pytest.mark.parametrize("name", PROTOCOLS)
def test_reads_only_the_codes_it_declares(name):
    """``feature_times`` is what the dry-run plan and the cache are told: it must be what ``run`` reads."""
    if _fine_tunes(name):
        pytest.skip(f"{name} trains a copy of the encoder on images: it has no cached codes to read")
    protocol, _, features = _run(name, _splits())
    cfg = config_from_settings(protocol.config_cls, preset_settings("smoke", _splits().image_shape))
    declared = set(protocol.feature_times(cfg))
    assert declared and all(0.0 <= t <= 1.0 for t in declared)
    read = {t for _, ts in features.calls for t in ts}
    assert read <= declared, f"{name} read codes at {sorted(read - declared)}, which feature_times does not declare"


@pytest.mark.parametrize("name", PROTOCOLS)
def test_documents_itself_on_its_leaderboard_page(name, tmp_path):
    import pandas as pd

    from benchmarks import leaderboard

    protocol = create_protocol(name)
    assert len(protocol.notes.strip()) > 100
    frame = pd.DataFrame([{"dataset": "toy", "method": "m", "protocol": name, "seed": 0,
                           "metric": protocol.metrics[0], "value": 0.5, "t": 0.0}])
    leaderboard.generate(frame, tmp_path)
    page = (tmp_path / "toy" / f"{name}.md").read_text()
    assert "## Protocol" in page and protocol.notes.strip().splitlines()[0] in page
