"""The results store: round trip, replacement by run key, exports, concurrency, errors."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import sqlite3
import threading
import time
from contextlib import closing

import pandas as pd
import pytest

from benchmarks import store as store_module
from benchmarks.store import COLUMNS, RUN_KEY, ResultsStore, RunInfo, StoreError
from core.records import Record


def _run(**kw) -> RunInfo:
    base = dict(
        dataset="digits",
        method="drl",
        protocol="probe",
        preset="tiny",
        seed=0,
        commit="abc123",
        config_hash="cfg1",
        config={"lr": 0.001},
        versions={"torch": "2.0"},
        command="python -m benchmarks run drl",
    )
    base.update(kw)
    return RunInfo(**base)


def _records() -> list[Record]:
    return [
        Record("accuracy", 0.9731234567890123, t=0.0, head="linear"),
        Record("accuracy", 0.5, t=0.1, head="linear", extra={"lr": 0.01, "epoch": 3, "at_edge": True}),
        Record("svm_accuracy", 0.8, labels=100),
        Record("silhouette", -0.25),
    ]


def test_round_trip(tmp_path):
    store = ResultsStore(tmp_path / "res")
    assert store.path == tmp_path / "res" / "results.sqlite"
    assert store.write(_run(), _records()) == 4
    df = store.frame()
    assert list(df.columns) == COLUMNS
    assert len(df) == 4
    acc = df[(df.metric == "accuracy") & (df.t == 0.0)].iloc[0]
    assert acc["value"] == 0.9731234567890123  # full precision
    assert (acc["head"], acc["seed"], acc["commit"]) == ("linear", 0, "abc123")
    assert json.loads(acc["config"]) == {"lr": 0.001}
    assert acc["created_at"].endswith("+00:00")
    extra = df[df.t == 0.1].iloc[0]
    assert json.loads(extra["setting"]) == {"epoch": 3, "lr": 0.01, "at_edge": True}
    sil = df[df.metric == "silhouette"].iloc[0]
    assert sil["head"] is None and pd.isna(sil["labels"]) and pd.isna(sil["t"])
    assert df[df.metric == "svm_accuracy"].iloc[0]["labels"] == 100


def test_schema_version_recorded(tmp_path):
    store = ResultsStore(tmp_path)
    assert store.schema_version >= 1
    with sqlite3.connect(store.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_rewrite_same_key_replaces(tmp_path):
    store = ResultsStore(tmp_path)
    store.write(_run(), _records())
    store.write(_run(), _records()[:2])
    store.write(_run(seed=1), _records())
    store.write(_run(variant="latent_dim=2"), _records())
    df = store.frame()
    assert len(df) == 2 + 4 + 4
    base = df[(df.seed == 0) & (df.variant == "")]
    assert sorted(base.metric) == ["accuracy", "accuracy"]


def test_frame_sorted_deterministically(tmp_path):
    a, b = ResultsStore(tmp_path / "a"), ResultsStore(tmp_path / "b")
    runs = [_run(seed=s, method=m) for s in (2, 0, 1) for m in ("vae", "ae", "drl")]
    for r in runs:
        a.write(r, _records())
    for r in reversed(runs):
        b.write(r, list(reversed(_records())))
    fa, fb = a.frame().drop(columns="created_at"), b.frame().drop(columns="created_at")
    assert fa.equals(fb)
    assert list(fa.method.unique()) == ["ae", "drl", "vae"]


def test_export_csv(tmp_path):
    store = ResultsStore(tmp_path)
    store.write(_run(), _records())
    rows = list(csv.DictReader(io.StringIO(store.export("csv"))))
    assert len(rows) == 4
    for col in (
        "dataset",
        "method",
        "protocol",
        "seed",
        "metric",
        "value",
        "t",
        "labels",
        "head",
        "points",
    ):
        assert col in rows[0]
    sil = next(r for r in rows if r["metric"] == "silhouette")
    assert sil["t"] == "" and sil["labels"] == "" and sil["head"] == "" and sil["points"] == ""
    svm = next(r for r in rows if r["metric"] == "svm_accuracy")
    assert svm["labels"] == "100"
    acc = next(r for r in rows if r["t"] == "0.0")
    assert float(acc["value"]) == 0.9731234567890123


def test_export_json_and_md(tmp_path):
    store = ResultsStore(tmp_path)
    store.write(_run(), _records())
    rows = json.loads(store.export("json"))
    setting = COLUMNS.index("setting") + 1
    assert len(rows) == 4 and list(rows[0]) == [*COLUMNS[:setting], "at_edge", *COLUMNS[setting:]]
    assert [r["at_edge"] for r in rows if r["metric"] == "accuracy"] == [None, True]
    sil = next(r for r in rows if r["metric"] == "silhouette")
    assert sil["t"] is None and sil["labels"] is None and sil["head"] is None
    assert rows[0]["versions"] == {"torch": "2.0"}
    md = store.export("md").splitlines()
    assert md[0].startswith("| dataset | method |") and len(md) == 2 + 4


def test_the_csv_export_has_an_at_edge_column(tmp_path):
    store = ResultsStore(tmp_path)
    store.write(_run(), _records())
    frame = pd.read_csv(io.StringIO(store.export("csv")))
    accuracy = frame[frame["metric"] == "accuracy"].sort_values("t")
    assert accuracy["at_edge"].isna().tolist() == [True, False] and accuracy["at_edge"].iloc[1]
    assert frame[frame["metric"] == "silhouette"]["at_edge"].isna().all()  # no selection on a grid


def test_export_bad_format(tmp_path):
    with pytest.raises(ValueError, match="'xlsx'.*csv, json, md"):
        ResultsStore(tmp_path).export("xlsx")


# Concurrent writers and writers killed mid-write: tests/test_store_concurrency.py (real processes).


def test_a_write_locked_out_is_retried_then_fails_with_what_to_do(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    monkeypatch.setattr(store_module, "WRITE_ATTEMPTS", 2)
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer that never finishes
    try:
        start = time.monotonic()
        with pytest.raises(StoreError) as err:
            store.write(_run(), _records())
        assert time.monotonic() - start >= 2 * 0.2  # it waited once per attempt
        message = str(err.value)
        assert str(store.path) in message and "stayed locked by another process" in message
        assert "numbers were not stored" in message and "rerun the same command" in message
        assert "\n" not in message
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.write(_run(), _records()) == 4


def test_a_lock_released_during_the_retries_lets_the_write_through(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    monkeypatch.setattr(store_module, "WRITE_ATTEMPTS", 10)
    holder = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: holder.execute("ROLLBACK"))  # longer than one busy timeout
    release.start()
    try:
        assert store.write(_run(), _records()) == 4
    finally:
        release.join()
        holder.close()
    assert len(store.frame()) == 4


def test_unwritable_directory(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="a_file"):
        ResultsStore(blocker / "results")
    assert issubclass(StoreError, RuntimeError)


def _version_1_store(path):
    """A store file as schema version 1 wrote it, holding one number of the run ('', '', ... seed 0)."""
    from benchmarks.store import _CREATE_INDEX, _CREATE_TABLE_V1, _V1_COLUMNS

    path.parent.mkdir()
    con = sqlite3.connect(path)
    con.execute(_CREATE_TABLE_V1)
    con.execute(_CREATE_INDEX)
    numeric = ("labels", "points", "wall_time_s", "pretrain_wall_time_s", "images_per_s", "peak_memory_mb")
    row = {c: None if c in numeric else "" for c in _V1_COLUMNS}
    row |= {"seed": 0, "value": 0.5, "t": 0.1, "metric": "accuracy", "setting": "{}", "versions": "{}", "config": "{}"}
    columns = ", ".join(f'"{c}"' for c in _V1_COLUMNS)  # quoted: "commit" is an SQL keyword
    con.execute(f"INSERT INTO results ({columns}) VALUES ({', '.join('?' * len(row))})",
                [row[c] for c in _V1_COLUMNS])
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()


def test_a_version_1_store_is_migrated_in_place(tmp_path):
    """A store written before t2 existed opens, keeps its rows, and gains the column."""
    from benchmarks.store import SCHEMA_VERSION

    _version_1_store(tmp_path / "res" / "results.sqlite")
    store = ResultsStore(tmp_path / "res")
    assert store.schema_version == SCHEMA_VERSION
    old = store.frame()
    assert len(old) == 1 and old.loc[0, "value"] == 0.5 and math.isnan(old.loc[0, "t2"])
    store.write(_run(protocol="mi"), [Record("nmi", 0.7, t=0.0, t2=1.0)])
    assert store.frame().set_index("protocol").loc["mi", "t2"] == 1.0


def test_provenance_is_kept_once_per_run(tmp_path):
    store = ResultsStore(tmp_path / "res")
    store.write(_run(), _records())
    store.write(_run(seed=1), _records())
    store.write(_run(), _records()[:1])  # rewriting a run replaces its run row and its numbers
    with sqlite3.connect(store.path) as con:
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
        assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 1 + len(_records())
    df = store.frame()
    assert (df["commit"] == "abc123").all() and sorted(df["seed"]) == [0] + [1] * len(_records())


def test_opening_an_up_to_date_store_writes_nothing(tmp_path):
    ResultsStore(tmp_path / "res").write(_run(), _records())
    path = tmp_path / "res" / "results.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.read_bytes()
    ResultsStore(tmp_path / "res").frame()
    assert path.read_bytes() == before


def _folder_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("version", [1, "current"])
def test_a_read_only_store_gives_its_run_keys_and_writes_nothing(tmp_path, version):
    folder = tmp_path / "res"
    if version == 1:
        _version_1_store(folder / "results.sqlite")
        expected = {("", "", "", "", "", 0)}
    else:
        store = ResultsStore(folder)
        store.write(_run(), _records())
        store.write(_run(seed=1), _records())
        expected = {tuple(getattr(_run(seed=s), k) for k in RUN_KEY) for s in (0, 1)}
    before = _folder_bytes(folder)
    read_only = ResultsStore(folder, read_only=True)
    assert read_only.run_keys() == expected
    assert _folder_bytes(folder) == before, "no migration, no -wal/-shm file, no write"
    with pytest.raises(StoreError):
        read_only.write(_run(seed=2), _records())
    assert read_only.run_keys() == expected


def test_a_read_only_store_must_exist(tmp_path):
    with pytest.raises(StoreError, match="no results store"):
        ResultsStore(tmp_path / "nothing", read_only=True)
    assert not (tmp_path / "nothing").exists()


def test_migration_4_makes_stored_provenance_reproducible(tmp_path):
    """Commands lose their output folders and display options, split files their machine path; no number moves."""
    store = ResultsStore(tmp_path)
    info = dataclasses.replace(_run(), command="python -m benchmarks run --method drl --protocol lowlabel "
                               "--results /abs/r --leaderboards /tmp/lb --no-progress --set latent_dim=2")
    store.write(info, [Record("accuracy", 0.5, labels=22, head="linear",
                              extra={"split_file": "/abs/r/artifacts/splits/digits-train-22-seed0.json", "lr": 0.1})])
    with closing(sqlite3.connect(store.path)) as con:
        con.execute("PRAGMA user_version = 3")
        con.commit()
    migrated = ResultsStore(tmp_path).frame()
    assert ResultsStore(tmp_path).schema_version == store_module.SCHEMA_VERSION
    assert migrated["command"].tolist() == ["python -m benchmarks run --method drl --protocol lowlabel "
                                            "--set latent_dim=2"]
    assert json.loads(migrated["setting"].iloc[0]) == {"split_file": "artifacts/splits/digits-train-22-seed0.json",
                                                        "lr": 0.1}
    assert migrated["value"].tolist() == [0.5]
