"""The results store: one SQLite row per measured number, with its provenance.

Every protocol run ends in ``ResultsStore.write``: the records of one run
(dataset, method, variant, protocol, preset, seed) replace that run's previous
rows in a single transaction, so re-running a configuration never duplicates
it. Several processes (sweep workers, parallel runs) may write at once: the
database uses WAL journaling, a 60 s busy timeout and ``BEGIN IMMEDIATE``, and a
write still locked out after that is retried before it fails with a message
saying what to do. A process killed mid-write leaves the store as it was
before that write (SQLite rolls the unfinished transaction back on next open);
tests/test_store_concurrency.py checks both with real processes and SIGKILL.
Nothing but this module writes the database; the leaderboards read
``ResultsStore.frame()``.
"""

from __future__ import annotations

import io
import json
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks import provenance
from core.records import Record

FILENAME = "results.sqlite"
SCHEMA_VERSION = 4  # PRAGMA user_version; bump and add a step to _MIGRATIONS when the table changes
BUSY_TIMEOUT_S = 60.0
# A write locked out for BUSY_TIMEOUT_S is tried this many times in all: a run's numbers took
# minutes to hours to compute and should not be lost to one slow writer or a slow disk.
WRITE_ATTEMPTS = 3
EXPORT_FORMATS = ("csv", "json", "md")

# The identity of a run: rewriting it replaces its rows.
RUN_KEY = ("dataset", "method", "variant", "protocol", "preset", "seed")
# The table as schema version 1 created it; later versions add columns by migration.
_V1_COLUMNS = [
    "dataset", "method", "variant", "protocol", "preset", "seed",
    "metric", "value", "t", "labels", "head", "points", "setting",
    "config_hash", "checkpoint", "commit", "device",
    "wall_time_s", "pretrain_wall_time_s", "images_per_s", "peak_memory_mb",
    "versions", "config", "command", "created_at",
]  # fmt: skip
# Column order of frame() and of every export (v2: t2, the second time of a pairwise number).
COLUMNS = [*_V1_COLUMNS[:9], "t2", *_V1_COLUMNS[9:]]
# v3 keeps a run's identity and provenance once, in the table ``runs``; ``results`` holds the
# numbers and points to their run (one row per number would repeat kilobytes of config JSON).
RECORD_COLUMNS = ["metric", "value", "t", "t2", "labels", "head", "points", "setting"]
RUN_COLUMNS = [c for c in COLUMNS if c not in RECORD_COLUMNS]
# Row order of frame(): deterministic, most significant first.
SORT_COLUMNS = [
    "dataset", "protocol", "method", "variant", "preset", "seed",
    "metric", "head", "labels", "points", "t", "t2", "setting",
]  # fmt: skip
# Columns holding JSON text in the table (decoded to objects in the JSON export).
JSON_COLUMNS = ("setting", "versions", "config")

# SQL type of the columns that are not plain text (TEXT NOT NULL DEFAULT '').
_SQL_TYPES = {
    "seed": "INTEGER NOT NULL", "value": "REAL", "t": "REAL", "t2": "REAL", "labels": "INTEGER",
    "head": "TEXT", "points": "INTEGER", "wall_time_s": "REAL",
    "pretrain_wall_time_s": "REAL", "images_per_s": "REAL", "peak_memory_mb": "REAL",
}  # fmt: skip


def _column_sql(name: str) -> str:
    kind = _SQL_TYPES.get(name, "TEXT NOT NULL DEFAULT ''")
    return f'"{name}" {kind}'


_CREATE_TABLE_V1 = (
    "CREATE TABLE IF NOT EXISTS results (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    + ", ".join(_column_sql(c) for c in _V1_COLUMNS)
    + ")"
)
_CREATE_INDEX = "CREATE INDEX IF NOT EXISTS results_run ON results (" + ", ".join(RUN_KEY) + ")"

def _quoted(columns: Sequence[str], table: str = "") -> str:
    prefix = f"{table}." if table else ""
    return ", ".join(f'{prefix}"{c}"' for c in columns)


_RUN_MATCH = " AND ".join(f'runs."{k}" = results."{k}"' for k in RUN_KEY)
def _relative_split_file(setting: str | None) -> str | None:
    """A row's setting with its split file named relative to the results folder (artifacts/splits/...)."""
    extra = json.loads(setting) if setting else {}
    path = extra.get("split_file")
    if not isinstance(path, str) or "artifacts/" not in path:
        return setting
    extra["split_file"] = "artifacts/" + path.rsplit("artifacts/", 1)[1]
    return _to_json(extra)


def _make_provenance_reproducible(con: sqlite3.Connection) -> None:
    """v4: commands without output folders or display options; split files relative to the results
    folder. Neither changes a number: both only said where a run wrote, on the machine that ran it."""
    con.create_function("reproducible", 1, provenance.reproducible, deterministic=True)
    con.create_function("relative_split_file", 1, _relative_split_file, deterministic=True)
    con.execute("UPDATE runs SET command = reproducible(command) WHERE command != ''")
    con.execute("UPDATE results SET setting = relative_split_file(setting) WHERE setting LIKE '%\"split_file\"%'")


# version reached -> statements (SQL text, or a function of the connection) that take the schema
# there from the version before.
_MIGRATIONS: dict[int, tuple[str | Callable[[sqlite3.Connection], None], ...]] = {
    1: (_CREATE_TABLE_V1, _CREATE_INDEX),
    2: (f"ALTER TABLE results ADD COLUMN {_column_sql('t2')}",),
    3: (
        "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        + ", ".join(_column_sql(c) for c in RUN_COLUMNS) + f", UNIQUE ({_quoted(RUN_KEY)}))",
        # A run's rows share their provenance: take it from the run's first row.
        f"INSERT INTO runs ({_quoted(RUN_COLUMNS)}) SELECT {_quoted(RUN_COLUMNS)} FROM results "
        f"WHERE id IN (SELECT MIN(id) FROM results GROUP BY {_quoted(RUN_KEY)}) ORDER BY id",
        "CREATE TABLE numbers (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "run_id INTEGER NOT NULL REFERENCES runs (id), "
        + ", ".join(_column_sql(c) for c in RECORD_COLUMNS) + ")",
        f"INSERT INTO numbers (run_id, {_quoted(RECORD_COLUMNS)}) SELECT runs.id, "
        f"{_quoted(RECORD_COLUMNS, 'results')} FROM results JOIN runs ON {_RUN_MATCH} ORDER BY results.id",
        "DROP TABLE results",
        "ALTER TABLE numbers RENAME TO results",
        "CREATE INDEX results_run_id ON results (run_id)",
    ),
    4: (_make_provenance_reproducible,),
}


class StoreError(RuntimeError):
    """The store cannot be opened or written (bad path, newer schema, locked too long)."""


# Test hook: called inside write's transaction, after its rows are inserted and before COMMIT,
# so a test can kill the process at exactly that point. Always None outside tests.
_before_commit: Callable[[], None] | None = None


def _is_locked(err: sqlite3.Error) -> bool:
    return isinstance(err, sqlite3.OperationalError) and any(
        word in str(err) for word in ("database is locked", "database is busy"))


@dataclass(frozen=True)
class RunInfo:
    """Who produced a set of records, with what, where and how fast."""

    dataset: str
    method: str
    protocol: str
    preset: str
    seed: int
    variant: str = ""  # canonical "key=value,..." of user overrides; '' = preset defaults
    config_hash: str = ""  # hash of the full method + protocol config
    config: dict = field(default_factory=dict)  # the full config values
    checkpoint: str = ""  # checkpoint hash of the pretrained encoder
    commit: str = ""
    versions: dict = field(default_factory=dict)
    device: str = ""
    wall_time_s: float = 0.0  # protocol wall time
    pretrain_wall_time_s: float = 0.0
    images_per_s: float = 0.0  # pretraining throughput
    peak_memory_mb: float = 0.0
    command: str = ""  # the exact command line that produced the run


def _to_json(obj: Any) -> str:
    # sort_keys: the same config always gives the same text (diffs, grouping).
    return json.dumps(obj, sort_keys=True, default=str)


def _finite_or_none(x: float | None) -> float | None:
    # SQLite stores NaN as NULL anyway; make that explicit.
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _number_row(rec: Record) -> dict[str, Any]:
    return {
        "metric": rec.metric,
        "value": _finite_or_none(rec.value),
        "t": _finite_or_none(rec.t),
        "t2": _finite_or_none(rec.t2),
        "labels": None if rec.labels is None else int(rec.labels),
        "head": rec.head,
        "points": None if rec.points is None else int(rec.points),
        "setting": _to_json(rec.extra),
    }


def _run_row(run: RunInfo, created_at: str) -> dict[str, Any]:
    return {
        "dataset": run.dataset,
        "method": run.method,
        "variant": run.variant,
        "protocol": run.protocol,
        "preset": run.preset,
        "seed": int(run.seed),
        "config_hash": run.config_hash,
        "checkpoint": run.checkpoint,
        "commit": run.commit,
        "device": run.device,
        "wall_time_s": float(run.wall_time_s),
        "pretrain_wall_time_s": float(run.pretrain_wall_time_s),
        "images_per_s": float(run.images_per_s),
        "peak_memory_mb": float(run.peak_memory_mb),
        "versions": _to_json(run.versions),
        "config": _to_json(run.config),
        "command": run.command,
        "created_at": created_at,
    }


class ResultsStore:
    """An SQLite file ``directory/results.sqlite`` holding every result row.

    >>> store = ResultsStore("results")  # doctest: +SKIP
    >>> store.write(RunInfo("digits", "drl", "probe", "tiny", 0), records)  # doctest: +SKIP
    >>> store.frame().groupby(["method", "t"]).value.mean()  # doctest: +SKIP
    """

    def __init__(self, directory: str | Path, read_only: bool = False) -> None:
        """Open (creating or migrating it if needed) the store in ``directory``.

        ``read_only``: open an existing store as it is, creating, migrating and writing nothing
        (``run --dry-run``); ``run_keys`` reads any schema version, ``write`` fails.
        """
        self.directory = Path(directory)
        self.path = self.directory / FILENAME
        self.read_only = read_only
        if read_only:
            if not self.path.is_file():
                raise StoreError(f"no results store at {self.path}")
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create results directory {self.directory}: {e}") from e
        try:
            with closing(self._connect()) as con:
                self._set_wal(con)
                self._migrate(con)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open results store {self.path}: {e}") from e

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.directory)!r})"

    # -- connection and schema --------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            # Without a -wal file every committed row is in the main file: read it as immutable,
            # which creates nothing beside it (a read-only open of a WAL database leaves -wal/-shm).
            mode = "mode=ro" if Path(f"{self.path}-wal").exists() else "immutable=1"
            return sqlite3.connect(f"{self.path.absolute().as_uri()}?{mode}", uri=True, timeout=BUSY_TIMEOUT_S)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (BEGIN IMMEDIATE).
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        # WAL survives a killed process at any level; FULL also keeps the last commits through a
        # power cut (NORMAL may lose them). Its cost, one fsync per commit, is nothing next to
        # the minutes each run spends computing the numbers it commits.
        con.execute("PRAGMA synchronous=FULL")
        return con

    @staticmethod
    def _set_wal(con: sqlite3.Connection) -> None:
        # Switching to WAL needs an exclusive lock and may fail with "locked"
        # without waiting on the busy timeout when processes open a new file at once.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                con.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _migrate(self, con: sqlite3.Connection) -> None:
        con.execute("BEGIN IMMEDIATE")
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"results store {self.path} has schema version {version}, newer than "
                    f"this code's {SCHEMA_VERSION}; update the code"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for step in _MIGRATIONS[target]:
                    if callable(step):
                        step(con)
                    else:
                        con.execute(step)
            if version < SCHEMA_VERSION:  # only then: opening an up-to-date store writes nothing
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        with closing(self._connect()) as con:
            return con.execute("PRAGMA user_version").fetchone()[0]

    # -- writing ----------------------------------------------------------------

    def write(self, run: RunInfo, records: Sequence[Record]) -> int:
        """Replace the rows of ``run``'s key by ``records``; return how many were written."""
        created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        numbers = [_number_row(rec) for rec in records]
        key = [getattr(run, k) for k in RUN_KEY]
        where = " AND ".join(f'"{k}" = ?' for k in RUN_KEY)
        insert_run = (f"INSERT INTO runs ({_quoted(RUN_COLUMNS)}) "
                      f"VALUES ({', '.join(f':{c}' for c in RUN_COLUMNS)})")
        insert_numbers = (f"INSERT INTO results (run_id, {_quoted(RECORD_COLUMNS)}) "
                          f"VALUES (:run_id, {', '.join(f':{c}' for c in RECORD_COLUMNS)})")
        attempt = 1
        while True:
            try:
                with closing(self._connect()) as con:
                    con.execute("BEGIN IMMEDIATE")  # waits up to BUSY_TIMEOUT_S for other writers
                    try:
                        con.execute(f"DELETE FROM results WHERE run_id IN (SELECT id FROM runs WHERE {where})", key)
                        con.execute(f"DELETE FROM runs WHERE {where}", key)
                        run_id = con.execute(insert_run, _run_row(run, created_at)).lastrowid
                        con.executemany(insert_numbers, [{**n, "run_id": run_id} for n in numbers])
                        if _before_commit is not None:
                            _before_commit()
                        con.execute("COMMIT")
                    except BaseException:
                        if con.in_transaction:
                            con.execute("ROLLBACK")
                        raise
                return len(numbers)
            except sqlite3.Error as e:
                if not _is_locked(e):
                    raise StoreError(f"cannot write to results store {self.path}: {e}") from e
                if attempt == WRITE_ATTEMPTS:
                    raise StoreError(
                        f"results store {self.path} stayed locked by another process for "
                        f"{WRITE_ATTEMPTS * BUSY_TIMEOUT_S:.0f} s, so this run's numbers were not stored; "
                        "stop the hung writer (or move the store off a network filesystem) and rerun "
                        "the same command: its checkpoints and features are cached") from e
                attempt += 1

    # -- reading ----------------------------------------------------------------

    def run_keys(self) -> set[tuple]:
        """The key (``RUN_KEY`` values) of every stored run."""
        try:
            with closing(self._connect()) as con:
                version = con.execute("PRAGMA user_version").fetchone()[0]
                table = "runs" if version >= 3 else "results"  # before v3 every number carried its run's key
                return {tuple(row) for row in con.execute(f"SELECT DISTINCT {_quoted(RUN_KEY)} FROM {table}")}
        except sqlite3.Error as e:
            raise StoreError(f"cannot read results store {self.path}: {e}") from e

    def frame(self) -> pd.DataFrame:
        """All rows as a DataFrame, columns in ``COLUMNS`` order, deterministically sorted.

        ``t`` is float (NaN where absent), ``labels``/``points`` nullable Int64,
        ``head`` None where absent; ``setting``, ``versions``, ``config`` are JSON text.
        """
        # SQLite sorts NULL first; id breaks ties between otherwise identical rows.
        def qualified(c: str) -> str:
            return f'{"runs" if c in RUN_COLUMNS else "results"}."{c}"'

        order = ", ".join(qualified(c) for c in SORT_COLUMNS) + ", results.id"
        query = (f"SELECT {', '.join(qualified(c) for c in COLUMNS)} FROM results "
                 f"JOIN runs ON runs.id = results.run_id ORDER BY {order}")
        try:
            with closing(self._connect()) as con:
                rows = con.execute(query).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"cannot read results store {self.path}: {e}") from e
        df = pd.DataFrame.from_records(rows, columns=COLUMNS)
        return _typed(df)

    def export(self, fmt: str) -> str:
        """The whole store as text: ``"csv"``, ``"json"`` (list of row objects) or ``"md"``."""
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}")
        df = self.frame()
        # Whether the row's selection on a grid sat at an end of it (empty: no selection on a grid).
        df.insert(df.columns.get_loc("setting") + 1, "at_edge", df["setting"].map(setting_at_edge).astype(object))
        if fmt == "csv":
            buf = io.StringIO()
            # Default float formatting is repr: full precision. NaN/<NA> -> empty cell.
            df.to_csv(buf, index=False, na_rep="", lineterminator="\n")
            return buf.getvalue()
        if fmt == "json":
            return json.dumps(_json_rows(df), indent=1, sort_keys=False) + "\n"
        return _markdown(df)


def setting_at_edge(setting: object) -> bool | None:
    """Whether a row's ``setting`` JSON records a selection at an end of its grid; None when it records none."""
    if not isinstance(setting, str) or '"at_edge"' not in setting:
        return None
    value = json.loads(setting).get("at_edge")
    return None if value is None else bool(value)


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df["seed"] = df["seed"].astype("int64")
    for col in (
        "value",
        "t",
        "t2",
        "wall_time_s",
        "pretrain_wall_time_s",
        "images_per_s",
        "peak_memory_mb",
    ):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("labels", "points"):
        df[col] = df[col].astype("Int64")
    df["head"] = df["head"].astype(object).where(df["head"].notna(), None)
    return df.reset_index(drop=True)


def _plain(x: Any) -> Any:
    """A DataFrame cell as a JSON-ready Python value (missing -> None)."""
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return None
    if hasattr(x, "item"):  # numpy scalar
        return x.item()
    return x


def _json_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict(orient="records"):
        row = {c: _plain(rec[c]) for c in df.columns}
        for c in JSON_COLUMNS:
            row[c] = json.loads(row[c]) if row[c] else {}
        out.append(row)
    return out


def _md_cell(x: Any) -> str:
    x = _plain(x)
    if x is None:
        return ""
    return (repr(x) if isinstance(x, float) else str(x)).replace("|", "\\|").replace("\n", " ")


def _markdown(df: pd.DataFrame) -> str:
    # Hand-written rather than DataFrame.to_markdown, which needs the optional `tabulate`.
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    for rec in df.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(x) for x in rec) + " |")
    return "\n".join(lines) + "\n"
