"""The results store: round trip, replacement by run key, exports, concurrency, errors.

The tests taking ``open_store`` run once on SQLite and once on a real PostgreSQL server (conftest.py);
the migrations of old files are SQLite's alone.
"""

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
import sqlalchemy as sa

from benchmarks import store as store_module
from benchmarks.store import (
    COLUMNS,
    RUN_KEY,
    NoStoreError,
    ResultsStore,
    RunInfo,
    StoreError,
    run_lock_id,
)
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


def _count(store: ResultsStore, table: str) -> int:
    with store._engine.connect() as con:
        return con.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()


def test_round_trip(tmp_path, open_store):
    store = open_store("res")
    if store.dialect == "sqlite":
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


def test_schema_version_recorded(open_store):
    store = open_store()
    assert store.schema_version == store_module.SCHEMA_VERSION
    if store.dialect == "sqlite":
        with sqlite3.connect(store.path) as con:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    else:  # the version is a row of its own table, written once
        assert _count(store, store_module.VERSION_TABLE) == 1
        assert open_store().schema_version == store_module.SCHEMA_VERSION
        assert _count(store, store_module.VERSION_TABLE) == 1


def test_run_versions_give_each_runs_latest_commit_and_settings(open_store):
    store = open_store()
    store.write(_run(), _records())
    store.write(_run(commit="def456", config_hash="cfg2"), _records()[:1])  # the same run, recomputed
    store.write(_run(seed=1), _records())
    key = tuple(getattr(_run(), k) for k in RUN_KEY)
    assert store.run_versions() == {key: ("def456", "cfg2"), (*key[:-1], 1): ("abc123", "cfg1")}


def test_rewrite_same_key_replaces(open_store):
    store = open_store()
    store.write(_run(), _records())
    store.write(_run(), _records()[:2])
    store.write(_run(seed=1), _records())
    store.write(_run(variant="latent_dim=2"), _records())
    df = store.frame()
    assert len(df) == 2 + 4 + 4
    base = df[(df.seed == 0) & (df.variant == "")]
    assert sorted(base.metric) == ["accuracy", "accuracy"]


def test_frame_sorted_deterministically(open_store):
    a, b = open_store("a"), open_store("b")
    runs = [_run(seed=s, method=m) for s in (2, 0, 1) for m in ("vae", "ae", "drl")]
    for r in runs:
        a.write(r, _records())
    for r in reversed(runs):
        b.write(r, list(reversed(_records())))
    fa, fb = a.frame().drop(columns="created_at"), b.frame().drop(columns="created_at")
    assert fa.equals(fb)
    assert list(fa.method.unique()) == ["ae", "drl", "vae"]


def test_export_csv(open_store):
    store = open_store()
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


def test_export_json_and_md(open_store):
    store = open_store()
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


def test_the_csv_export_has_an_at_edge_column(open_store):
    store = open_store()
    store.write(_run(), _records())
    frame = pd.read_csv(io.StringIO(store.export("csv")))
    accuracy = frame[frame["metric"] == "accuracy"].sort_values("t")
    assert accuracy["at_edge"].isna().tolist() == [True, False] and accuracy["at_edge"].iloc[1]
    assert frame[frame["metric"] == "silhouette"]["at_edge"].isna().all()  # no selection on a grid


def test_export_bad_format(open_store):
    with pytest.raises(ValueError, match="'xlsx'.*csv, json, md"):
        open_store().export("xlsx")


# Concurrent writers and writers killed mid-write: tests/test_store_concurrency.py (real processes).


class _Holder:
    """Another writer that holds what ``store.write(run)`` must wait for: SQLite's write lock (an
    unfinished BEGIN IMMEDIATE), PostgreSQL's advisory lock on the run's key (an unfinished transaction)."""

    def __init__(self, store: ResultsStore, run: RunInfo) -> None:
        if store.dialect == "sqlite":
            self.con = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
            self.con.execute("BEGIN IMMEDIATE")
        else:
            self.con = store._engine.raw_connection()
            self.con.cursor().execute("SELECT pg_advisory_xact_lock(%s)", (run_lock_id([getattr(run, k) for k in RUN_KEY]),))

    def release(self) -> None:
        self.con.rollback()

    def close(self) -> None:
        self.con.close()


def test_a_write_locked_out_is_retried_then_fails_with_what_to_do(open_store, monkeypatch):
    store = open_store()
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    monkeypatch.setattr(store_module, "WRITE_ATTEMPTS", 2)
    holder = _Holder(store, _run())  # another writer that never finishes
    try:
        start = time.monotonic()
        with pytest.raises(StoreError) as err:
            store.write(_run(), _records())
        assert time.monotonic() - start >= 2 * 0.2  # it waited once per attempt
        message = str(err.value)
        locked = "stayed locked by another process" if store.dialect == "sqlite" else "stayed held by another session"
        assert store.location in message and locked in message
        assert "numbers were not stored" in message and "rerun the same command" in message
        assert "\n" not in message
        if store.dialect == "postgresql":  # a writer of another run does not wait for it
            assert store.write(_run(seed=7), _records()) == 4
    finally:
        holder.release()
        holder.close()
    assert store.write(_run(), _records()) == 4


def test_a_lock_released_during_the_retries_lets_the_write_through(open_store, monkeypatch):
    store = open_store()
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    monkeypatch.setattr(store_module, "WRITE_ATTEMPTS", 10)
    holder = _Holder(store, _run())
    release = threading.Timer(0.5, holder.release)  # longer than one busy timeout
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


def test_provenance_is_kept_once_per_run(open_store):
    store = open_store()
    store.write(_run(), _records())
    store.write(_run(seed=1), _records())
    store.write(_run(), _records()[:1])  # rewriting a run replaces its run row and its numbers
    assert _count(store, "runs") == 2
    assert _count(store, "results") == 1 + len(_records())
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
    # a version 1 store kept no per-run provenance, so none of its runs counts as current
    assert set(read_only.run_versions()) == (set() if version == 1 else expected)
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


# -- PostgreSQL: the same store on a server (tests/postgres.py starts one; skipped where it cannot) ---------


def _tricky_runs() -> list[tuple[RunInfo, list[Record]]]:
    """Runs whose values test the round trip and the sort: NULLs, NaN, long floats, big integers, non-ASCII
    and mixed-case text (SQLite sorts text by its bytes, PostgreSQL by its collation unless told)."""
    records = [*_records(),
               Record("accuracy", float("nan"), t=0.5, head="Zeta"), Record("accuracy", 1e-300, t=0.5, head="alpha"),
               Record("accuracy", 2 / 3, t=0.5, head="\u00e9t\u00e9"), Record("mi", -1.5, t=0.25, t2=0.75),
               Record("svm_accuracy", 0.1, labels=2**40, points=7, extra={"k": "\u2603", "at_edge": False}),
               Record("accuracy", 0.3, head="linear"), Record("accuracy", 0.31, t=0.5)]  # NULL among values
    runs = [_run(), _run(seed=2**31 + 5, method="Vae"), _run(method="ae", variant="latent_dim=2",
                                                          wall_time_s=float("nan"), images_per_s=1e12),
            _run(dataset="mnist", protocol="mi", commit="", config={"nested": {"b": [1, 2.5, None]}})]
    return [(run, records[i:] if i % 2 else records) for i, run in enumerate(runs)]


def test_postgresql_gives_the_frame_sqlite_gives(tmp_path, postgres_server, monkeypatch):
    """The same runs written to either database read back as exactly the same DataFrame and exports."""
    monkeypatch.setattr(store_module, "_now", lambda: "2025-01-02T03:04:05+00:00")
    sqlite_store = ResultsStore(tmp_path / "sqlite")
    pg_store = ResultsStore(tmp_path / "pg", url=postgres_server.url())
    for run, records in _tricky_runs():
        for store in (sqlite_store, pg_store):
            store.write(run, records)
    run, records = _tricky_runs()[1]
    for store in (sqlite_store, pg_store):
        store.write(run, records[:3])  # replacing a run, on both
    expected = sqlite_store.frame()
    assert len(expected) == 11 + 3 + 11 + 8
    pd.testing.assert_frame_equal(pg_store.frame(), expected, check_exact=True)
    for fmt in store_module.EXPORT_FORMATS:
        assert pg_store.export(fmt) == sqlite_store.export(fmt)
    assert pg_store.run_keys() == sqlite_store.run_keys()


def test_postgresql_has_the_same_tables_and_a_version_record(tmp_path, postgres_server):
    store = ResultsStore(tmp_path, url=postgres_server.url())
    columns = {t: {c["name"]: c for c in sa.inspect(store._engine).get_columns(t)} for t in ("runs", "results")}
    assert list(columns["runs"]) == ["id", *store_module.RUN_COLUMNS]
    assert list(columns["results"]) == ["id", "run_id", *store_module.RECORD_COLUMNS]
    assert str(columns["runs"]["commit"]["type"]) == "TEXT" and not columns["runs"]["commit"]["nullable"]
    assert str(columns["runs"]["seed"]["type"]) == "BIGINT" and str(columns["results"]["value"]["type"]) == "DOUBLE PRECISION"
    assert not (tmp_path / "results.sqlite").exists()  # the folder keeps the caches, not the store
    with store._engine.connect() as con:
        con.exec_driver_sql(f"UPDATE {store_module.VERSION_TABLE} SET version = 99")
        con.commit()
    with pytest.raises(StoreError, match="schema version 99, newer than this code's"):
        ResultsStore(tmp_path, url=store.url)


def test_a_postgresql_store_opened_read_only_creates_and_writes_nothing(tmp_path, postgres_server):
    url = postgres_server.url()
    with pytest.raises(NoStoreError, match="no results store at"):
        ResultsStore(tmp_path, read_only=True, url=url)
    with pytest.raises(NoStoreError):  # still none: the read-only open created nothing
        ResultsStore(tmp_path, read_only=True, url=url)
    ResultsStore(tmp_path, url=url).write(_run(), _records())
    read_only = ResultsStore(tmp_path, read_only=True, url=url)
    assert read_only.run_keys() == {tuple(getattr(_run(), k) for k in RUN_KEY)}
    with pytest.raises(StoreError, match="read-only transaction"):
        read_only.write(_run(seed=2), _records())
    assert len(read_only.frame()) == 4


@pytest.mark.parametrize("url, why", [
    ("mysql://me@db/results", "unknown scheme 'mysql'"),
    ("results/results.sqlite", "not a database URL"),
    ("postgresql+psycopg2://me@db/results", "driver 'psycopg2'"),
    ("postgresql://me@db", "it names no database"),
    ("sqlite://", "it names no file"),
])
def test_a_bad_url_says_what_is_valid(tmp_path, url, why):
    with pytest.raises(StoreError) as err:
        ResultsStore(tmp_path, url=url)
    message = str(err.value)
    assert why in message and url in message and "valid: postgresql://USER" in message and "sqlite:///PATH" in message
    assert "\n" not in message


def test_an_unreachable_server_is_one_line_with_the_url_its_password_hidden(tmp_path):
    pytest.importorskip("psycopg", reason="psycopg is not installed")
    url = f"postgresql://me:secret@/results?host={tmp_path / 'no-server'}&port=1"
    with pytest.raises(StoreError) as err:
        ResultsStore(tmp_path, url=url)
    message = str(err.value)
    assert message.startswith("cannot open results store postgresql://me:***@/results") and "valid:" in message
    assert "secret" not in message and "\n" not in message


def test_a_write_that_loses_the_server_is_retried_then_fails_with_what_to_do(tmp_path, postgres_server,
                                                                             monkeypatch):
    store = ResultsStore(tmp_path, url=postgres_server.url())
    monkeypatch.setattr(store_module, "RECONNECT_PAUSE_S", 0.01)
    monkeypatch.setattr(store_module, "WRITE_ATTEMPTS", 2)
    gone = sa.engine.make_url(store_module.database_url(store.url)).update_query_dict({"host": str(tmp_path / "gone")})
    monkeypatch.setattr(store, "_engine", store_module._pg_engine(gone, read_only=False))
    with pytest.raises(StoreError, match="failed 2 attempts .*numbers were not stored; check the server") as err:
        store.write(_run(), _records())
    assert "\n" not in str(err.value)


def test_without_the_server_binaries_the_postgresql_tests_skip_saying_what_is_missing(monkeypatch):
    from tests import postgres

    monkeypatch.setattr(postgres.shutil, "which", lambda _: None)
    monkeypatch.setattr(postgres.glob, "glob", lambda _: [])
    monkeypatch.setattr(postgres, "EXTRA_FOLDERS", ())
    why = postgres.missing()
    assert why is not None and "no PostgreSQL server binaries (initdb, pg_ctl, postgres)" in why
    assert "apt-get install postgresql" in why
