"""Checkpoints and features carry a SHA-256: a damaged file is caught, moved aside and recomputed, never used."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch

from benchmarks.__main__ import main
from benchmarks.cache import CheckpointStore, FeatureCache
from core.files import CorruptCacheError, load_verified, quarantine, save_verified
from methods.base import Method
from tests.conftest import smoke_method


def _payload() -> dict:
    return {"state": {"w": torch.arange(2000, dtype=torch.float32).view(40, 50)}, "history": {"losses": [1.0]}}


def _assert_same(a: dict, b: dict) -> None:
    assert torch.equal(a["state"]["w"], b["state"]["w"]) and a["history"] == b["history"]


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])


def _strip_digest(path: Path) -> None:
    head, _, rest = path.read_bytes().partition(b"\n")
    path.write_bytes(b" ".join(head.split(b" ")[:2]) + b"\n" + rest)  # the header without digest and length


def _flip_payload_byte(path: Path) -> None:
    _flip_byte(path, path.stat().st_size // 2)  # inside the tensor data: torch.load alone reads it silently


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(3000))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


DAMAGE = [
    (_truncate, "truncated"),
    (_flip_payload_byte, "SHA-256 mismatch"),
    (_strip_digest, "damaged header (no valid SHA-256 digest)"),
    (_garbage, "unreadable"),
    (_empty, "empty"),
]
DAMAGE_IDS = [f.__name__.lstrip("_") for f, _ in DAMAGE]


def test_round_trip_and_the_file_carries_its_digest(tmp_path):
    path = tmp_path / "sub" / "x.pt"
    save_verified(_payload(), path)
    _assert_same(load_verified(path), _payload())
    assert path.read_bytes().startswith(b"BENCHMARKS-SHA256 v1 ")
    assert [p.name for p in path.parent.iterdir()] == ["x.pt"], "no temporary file is left behind"


@pytest.mark.parametrize("damage,problem", DAMAGE, ids=DAMAGE_IDS)
def test_damage_is_detected_and_named_with_what_to_do(tmp_path, damage, problem):
    path = tmp_path / "ckpt.pt"
    save_verified(_payload(), path)
    damage(path)
    with pytest.raises(CorruptCacheError) as err:
        load_verified(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and problem in message
    assert "rerun the same command to recompute it" in message and "\n" not in message
    assert isinstance(err.value, ValueError) and err.value.path == path


def test_a_flipped_byte_torch_alone_would_accept_is_caught(tmp_path):
    path = tmp_path / "f.pt"
    save_verified(torch.arange(1000.0), path)
    _flip_payload_byte(path)
    header_end = path.read_bytes().index(b"\n") + 1
    plain = tmp_path / "plain.pt"
    plain.write_bytes(path.read_bytes()[header_end:])
    assert not torch.equal(torch.load(plain, weights_only=True), torch.arange(1000.0))  # silently wrong
    with pytest.raises(CorruptCacheError, match="SHA-256 mismatch"):
        load_verified(path)


@pytest.mark.parametrize("damage,problem", DAMAGE, ids=DAMAGE_IDS)
def test_a_corrupt_checkpoint_is_moved_aside_reported_loudly_and_not_used(tmp_path, caplog, damage, problem):
    store = CheckpointStore(tmp_path)
    store.save("abc", _payload())
    path = store.path("abc")
    damage(path)
    damaged = path.read_bytes()
    with caplog.at_level(logging.WARNING):
        assert store.load("abc") is None  # the runner then pretrains again
    assert not path.exists()
    kept = path.with_name("abc.pt.corrupt")
    assert kept.read_bytes() == damaged, "the bad file is kept for inspection, byte for byte"
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"CORRUPT CHECKPOINT {path}: ") and problem in line
    assert "moved aside to abc.pt.corrupt, pretraining it again" in line
    store.save("abc", _payload())
    _assert_same(store.load("abc"), _payload())


def test_a_corrupt_checkpoint_sets_its_features_aside_and_leaves_others(tmp_path):
    for key in ("bad", "good"):
        save_verified(torch.zeros(3), tmp_path / "features" / key / "test_static.pt")
        CheckpointStore(tmp_path).save(key, _payload())
    _truncate(CheckpointStore(tmp_path).path("bad"))
    assert CheckpointStore(tmp_path).load("bad") is None
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == ["bad.stale", "good"]
    assert (tmp_path / "features" / "bad.stale" / "test_static.pt").exists()
    _assert_same(CheckpointStore(tmp_path).load("good"), _payload())


def test_a_second_corrupt_copy_does_not_overwrite_the_first(tmp_path):
    store = CheckpointStore(tmp_path)
    for _ in range(2):
        store.save("k", _payload())
        _truncate(store.path("k"))
        assert store.load("k") is None
    assert sorted(p.name for p in store.root.iterdir()) == ["k.pt.corrupt", "k.pt.corrupt.1"]


def test_quarantine_never_moves_a_file_that_was_replaced_since_it_was_read(tmp_path):
    path = tmp_path / "x.pt"
    save_verified(_payload(), path)
    _truncate(path)
    with pytest.raises(CorruptCacheError) as err:
        load_verified(path)
    save_verified(_payload(), path)  # another process recomputed it meanwhile
    assert quarantine(err.value) is None
    _assert_same(load_verified(path), _payload())


def test_a_legacy_file_without_digest_loads_and_is_sealed(tmp_path):
    store = CheckpointStore(tmp_path)
    path = store.path("old")
    path.parent.mkdir(parents=True)
    torch.save(_payload(), path)  # how files were written before digests
    _assert_same(load_verified(path), _payload())  # the public reader accepts it, unverified, as is
    assert not path.read_bytes().startswith(b"BENCHMARKS")
    _assert_same(store.load("old"), _payload())
    assert path.read_bytes().startswith(b"BENCHMARKS-SHA256 v1 "), "the store adds the digest once"
    _flip_payload_byte(path)
    with pytest.raises(CorruptCacheError, match="SHA-256 mismatch"):
        load_verified(path)


@pytest.mark.parametrize("damage,problem", DAMAGE, ids=DAMAGE_IDS)
def test_a_corrupt_feature_file_is_recomputed_with_a_warning(tmp_path, toy_data, caplog, damage, problem):
    method, _ = smoke_method("ae", toy_data)
    codes = FeatureCache(tmp_path, "ck", method, toy_data)("test", [0.0])
    (path,) = (tmp_path / "features" / "ck").glob("test_*.pt")
    damage(path)
    cache = FeatureCache(tmp_path, "ck", method, toy_data)
    with caplog.at_level(logging.WARNING):
        again = cache("test", [0.0])
    assert cache.encoded_count == 1 and torch.equal(again, codes)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"corrupt feature cache entry {path}: ") and problem in line
    assert line.endswith("recomputing it (delete the .corrupt file once you no longer need it)")
    assert torch.equal(load_verified(path), codes[0]), "the recomputed entry is written back, verified"
    assert path.with_name(path.name + ".corrupt").exists()


def _run_args(tmp_path: Path) -> list[str]:
    return ["run", "--method", "ae", "--protocol", "probe", "--preset", "smoke", "--no-progress",
            "--results", str(tmp_path / "results"), "--leaderboards", str(tmp_path / "boards")]


def test_a_run_with_corrupt_caches_recomputes_them_and_says_so(tmp_path, monkeypatch, caplog, capsys):
    assert main(_run_args(tmp_path)) == 0
    results = tmp_path / "results"
    (ckpt,) = (results / "checkpoints").glob("*.pt")
    features = sorted((results / "features").rglob("*.pt"))
    assert features and all(p.read_bytes().startswith(b"BENCHMARKS-SHA256") for p in [ckpt, *features])
    capsys.readouterr()

    # A damaged feature file: recomputed from the (sound) checkpoint, no pretraining.
    _flip_payload_byte(features[0])
    monkeypatch.setattr(Method, "fit", lambda *_a, **_k: pytest.fail("the checkpoint is sound: no pretraining"))
    with caplog.at_level(logging.WARNING):
        assert main(_run_args(tmp_path)) == 0
    assert "reusing pretrained checkpoint" in capsys.readouterr().err
    assert any(r.getMessage().startswith(f"corrupt feature cache entry {features[0]}: SHA-256 mismatch")
               for r in caplog.records)
    assert load_verified(features[0]) is not None
    monkeypatch.undo()

    # A truncated checkpoint: reported loudly and pretrained again.
    caplog.clear()
    _truncate(ckpt)
    with caplog.at_level(logging.WARNING):
        assert main(_run_args(tmp_path)) == 0
    assert "pretraining" in capsys.readouterr().err
    assert any(r.getMessage().startswith(f"CORRUPT CHECKPOINT {ckpt}: truncated") for r in caplog.records)
    assert load_verified(ckpt)["key"] == ckpt.stem and ckpt.with_name(ckpt.name + ".corrupt").exists()
    # Its features encoded the lost encoder: set aside and computed again from the new one.
    stale = results / "features" / f"{ckpt.stem}.stale"
    assert {p.name for p in stale.iterdir()} == {p.name for p in features} | {features[0].name + ".corrupt"}
    assert all(load_verified(p) is not None for p in features)
