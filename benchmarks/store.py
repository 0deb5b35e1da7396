"""The results store: one row per measured number, with its provenance, in SQLite or PostgreSQL.

Every protocol run ends in ``ResultsStore.write``: the records of one run
(dataset, method, variant, protocol, preset, seed) replace that run's previous
rows in a single transaction, so re-running a configuration never duplicates
it. Several processes (sweep workers, parallel runs) may write at once.

One implementation on SQLAlchemy Core serves two databases:

- the embedded default, an SQLite file ``RESULTS/results.sqlite``: WAL
  journaling, a 60 s busy timeout and ``BEGIN IMMEDIATE``; a write still
  locked out after that is retried before it fails with a message saying what
  to do. A process killed mid-write leaves the store as it was before that
  write (SQLite rolls the unfinished transaction back on next open). Old files
  are migrated in place (``PRAGMA user_version``).
- a PostgreSQL database (``--results-db postgresql://...``) that workers on
  many machines share: the same two tables and columns, created on first use
  with a schema-version record (table ``schema_version``); a write is one
  transaction that first takes a transaction-scoped advisory lock on its run
  key, so two writers of the same run serialise (the last one wins, whole) and
  writers of different runs do not wait for each other. A killed client's
  transaction is rolled back by the server.

tests/test_store_concurrency.py checks both databases with real processes and
SIGKILL. Nothing but this module writes the store; the leaderboards read
``ResultsStore.frame()``, which is the same DataFrame from either database.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import quoted_name

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


# -- PostgreSQL: the same tables, made by SQLAlchemy ---------------------------------------------

# The forms --results-db accepts (error messages list them).
URL_FORMS = ("postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE, postgresql://USER@/DATABASE?host=SOCKET_FOLDER "
             "or sqlite:///PATH (default: RESULTS/results.sqlite)")
# Seconds a PostgreSQL client waits for the server to answer a connection attempt.
CONNECT_TIMEOUT_S = 10
# Between attempts of a write that lost its PostgreSQL connection (a server restart, a network blip).
RECONNECT_PAUSE_S = 5.0
# The PostgreSQL record of the schema version (SQLite keeps it in PRAGMA user_version).
VERSION_TABLE = "schema_version"
# Advisory lock (pg_advisory_xact_lock) that serialises the creation of the tables on first use.
_CREATE_LOCK_ID = int.from_bytes(hashlib.sha256(b"benchmarks results store: create").digest()[:8], "big", signed=True)
_PG_TYPES = {"INTEGER": sa.BigInteger, "REAL": sa.Double, "TEXT": sa.Text}  # SQLite's are 64-bit too


def _pg_column(name: str) -> sa.Column:
    """The PostgreSQL column that holds what the SQLite column ``_column_sql(name)`` holds, quoted."""
    kind = _SQL_TYPES.get(name, "TEXT NOT NULL DEFAULT ''")
    type_ = _PG_TYPES[kind.split()[0]]()
    default = {"server_default": ""} if "DEFAULT ''" in kind else {}
    return sa.Column(quoted_name(name, True), type_, nullable="NOT NULL" not in kind, **default)


_PG = sa.MetaData()
_PG_RUNS = sa.Table("runs", _PG, sa.Column(quoted_name("id", True), sa.BigInteger, primary_key=True),
                    *(_pg_column(c) for c in RUN_COLUMNS), sa.UniqueConstraint(*RUN_KEY, name="runs_key"))
_PG_RESULTS = sa.Table("results", _PG, sa.Column(quoted_name("id", True), sa.BigInteger, primary_key=True),
                       sa.Column(quoted_name("run_id", True), sa.BigInteger, sa.ForeignKey("runs.id"),
                                 nullable=False, index=True),
                       *(_pg_column(c) for c in RECORD_COLUMNS))
_PG_VERSION = sa.Table(VERSION_TABLE, _PG, sa.Column("version", sa.Integer, nullable=False))
# SQLite's tables as untyped column lists: values reach the sqlite3 driver untouched (no SQLAlchemy
# type processing), so the file holds, and frame() returns, exactly what the plain-sqlite3 store did.
_SQLITE_RUNS = sa.table("runs", *(sa.column(quoted_name(c, True)) for c in ("id", *RUN_COLUMNS)))
_SQLITE_RESULTS = sa.table("results", *(sa.column(quoted_name(c, True))
                                        for c in ("id", "run_id", *RECORD_COLUMNS)))


class StoreError(RuntimeError):
    """The store cannot be opened or written (bad path or URL, newer schema, locked too long)."""


class NoStoreError(StoreError):
    """A read-only open found no store there (nothing has been written yet)."""


# Test hook: called inside write's transaction, after its rows are inserted and before COMMIT,
# so a test can kill the process at exactly that point. Always None outside tests.
_before_commit: Callable[[], None] | None = None


def _is_locked(err: BaseException) -> bool:
    """SQLite's 'locked/busy' after the busy timeout, PostgreSQL's lock_timeout (SQLSTATE 55P03)."""
    if isinstance(err, sqlite3.Error):
        return isinstance(err, sqlite3.OperationalError) and any(
            word in str(err) for word in ("database is locked", "database is busy"))
    return getattr(err, "sqlstate", None) == "55P03"


def _pg_retry(err: BaseException) -> str | None:
    """Whether a new attempt may not meet a PostgreSQL failure: "conflict" (a serialisation failure, a
    deadlock), "connection" (lost or refused: a server restarting, a network blip), else None (a bad
    password, a missing database, a constraint: the same again)."""
    if not isinstance(err, sa_exc.DBAPIError):
        return None
    sqlstate = getattr(err.orig, "sqlstate", None)
    if sqlstate in ("40001", "40P01"):
        return "conflict"
    if err.connection_invalidated or (isinstance(err, sa_exc.OperationalError)
                                      and (sqlstate is None or sqlstate[:2] in ("08", "57"))):
        return "connection"
    return None


def _driver_error(err: BaseException) -> BaseException:
    """The driver's own exception (sqlite3 or psycopg) inside SQLAlchemy's wrapper."""
    return err.orig if isinstance(err, sa_exc.DBAPIError) and err.orig is not None else err


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def database_url(text: str, source: str = "results database") -> URL:
    """``text`` (a ``--results-db`` value) as the SQLAlchemy URL the store connects to.

    ``postgresql://`` and ``postgres://`` go through psycopg (``postgresql+psycopg://``); ``sqlite:///PATH``
    names a store file. Anything else is a StoreError naming ``source``, the value and the valid forms.
    """
    def bad(why: str) -> StoreError:
        return StoreError(f"{source} {shown_url(text)}: {why}; valid: {URL_FORMS}")

    try:
        url = make_url(text)
    except (sa_exc.ArgumentError, ValueError):
        raise bad("not a database URL") from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise bad(f"driver {driver!r}: the store talks to PostgreSQL through psycopg")
        if not url.database:
            raise bad("it names no database")
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise bad(f"driver {driver!r}: the store opens SQLite files with Python's sqlite3")
        if not url.database or url.database == ":memory:":
            raise bad("it names no file (an in-memory store would lose every run)")
        return url.set(drivername="sqlite")
    raise bad(f"unknown scheme {url.drivername!r}")


def shown_url(text: str) -> str:
    """A URL as messages print it: as given, but for its password."""
    try:
        url = make_url(text)
    except (sa_exc.ArgumentError, ValueError):
        return text
    return url.render_as_string(hide_password=True) if url.password else text


def store_file(directory: str | Path, url: str | None = None) -> Path | None:
    """The SQLite file of the store ``ResultsStore(directory, url=url)`` opens; None for a server database."""
    if not url:
        return Path(directory) / FILENAME
    parsed = database_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" else None


def run_lock_id(key: Sequence[Any]) -> int:
    """The PostgreSQL advisory lock (a signed 64-bit number) a write of the run ``key`` takes."""
    digest = hashlib.sha256(_to_json(["benchmarks results store: run", *key]).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


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
    # SQLite stores NaN as NULL anyway; make that explicit (PostgreSQL would keep NaN).
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
    """Every result row: an SQLite file ``directory/results.sqlite``, or the database at ``url``.

    >>> store = ResultsStore("results")  # doctest: +SKIP
    >>> store = ResultsStore("results", url="postgresql://me@db.lab/benchmarks")  # doctest: +SKIP
    >>> store.write(RunInfo("digits", "drl", "probe", "tiny", 0), records)  # doctest: +SKIP
    >>> store.frame().groupby(["method", "t"]).value.mean()  # doctest: +SKIP
    """

    def __init__(self, directory: str | Path, read_only: bool = False, url: str | None = None) -> None:
        """Open (creating or migrating it if needed) the store in ``directory``, or at ``url``.

        ``url``: ``postgresql://...`` (a server database; its tables are created on first use) or
        ``sqlite:///PATH`` (a store file elsewhere than ``directory``); see ``database_url``.
        ``read_only``: open an existing store as it is, creating, migrating and writing nothing
        (``run --dry-run``); ``run_keys`` reads any schema version, ``write`` fails.
        """
        self.directory = Path(directory)
        self.read_only = read_only
        self.url = url or None
        parsed = database_url(url) if url else None
        self.dialect = parsed.get_backend_name() if parsed else "sqlite"
        if self.dialect == "sqlite":
            self.path: Path | None = Path(parsed.database) if parsed else self.directory / FILENAME
            self.location = str(self.path)
            self._engine = sa.create_engine("sqlite://", creator=self._connect, poolclass=NullPool)
            self._runs, self._results = _SQLITE_RUNS, _SQLITE_RESULTS
        else:
            self.path = None
            self.location = shown_url(url)
            self._engine = _pg_engine(parsed, read_only)
            self._runs, self._results = _PG_RUNS, _PG_RESULTS
        if self.dialect == "postgresql":
            self._open_postgresql()
            return
        if read_only:
            if not self.path.is_file():
                raise NoStoreError(f"no results store at {self.path}")
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create results directory {self.path.parent}: {e}") from e
        try:
            with self._engine.connect() as con:
                self._set_wal(con)
                self._migrate(con)
        except (sa_exc.DBAPIError, sqlite3.Error) as e:
            raise StoreError(f"cannot open results store {self.path}: {_driver_error(e)}") from e

    def __repr__(self) -> str:
        if self.url:
            return f"ResultsStore({str(self.directory)!r}, url={self.location!r})"
        return f"ResultsStore({str(self.directory)!r})"

    # -- connection and schema --------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """A new sqlite3 connection to the store file (SQLAlchemy's ``creator``: one per use, no pool)."""
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
    def _set_wal(con: sa.Connection) -> None:
        # Switching to WAL needs an exclusive lock and may fail with "locked"
        # without waiting on the busy timeout when processes open a new file at once.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                con.exec_driver_sql("PRAGMA journal_mode=WAL")
                return
            except sa_exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _migrate(self, con: sa.Connection) -> None:
        con.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            version = con.exec_driver_sql("PRAGMA user_version").scalar_one()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"results store {self.path} has schema version {version}, newer than "
                    f"this code's {SCHEMA_VERSION}; update the code"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for step in _MIGRATIONS[target]:
                    if callable(step):
                        step(con.connection.driver_connection)
                    else:
                        con.exec_driver_sql(step)
            if version < SCHEMA_VERSION:  # only then: opening an up-to-date store writes nothing
                con.exec_driver_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.exec_driver_sql("COMMIT")
        except BaseException:
            con.exec_driver_sql("ROLLBACK")
            raise

    def _open_postgresql(self) -> None:
        """Check the server database: reachable, its schema version known; create the tables on first use."""
        try:
            with self._engine.connect() as con:
                version = self._pg_version(con)
                if version is None and not self.read_only:
                    # Workers starting at once: one creates the tables, the others wait, then find them.
                    con.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.literal(_CREATE_LOCK_ID, sa.BigInteger))))
                    version = self._pg_version(con)
                    if version is None:
                        _PG.create_all(con)
                        con.execute(sa.insert(_PG_VERSION).values(version=SCHEMA_VERSION))
                        version = SCHEMA_VERSION
                    con.commit()
        except sa_exc.DBAPIError as e:
            raise StoreError(f"cannot open results store {self.location}: {_one_line(_driver_error(e))}; valid: "
                             f"a running PostgreSQL server and an existing database, {URL_FORMS}") from e
        if version is None:
            raise NoStoreError(f"no results store at {self.location} (its tables are created by the first "
                               "command that opens it for writing)")
        if version > SCHEMA_VERSION:
            raise StoreError(f"results store {self.location} has schema version {version}, newer than "
                             f"this code's {SCHEMA_VERSION}; update the code")
        # No PostgreSQL store older than version 4 exists; a future version adds its migration here.

    @staticmethod
    def _pg_version(con: sa.Connection) -> int | None:
        if con.execute(sa.select(sa.func.to_regclass(VERSION_TABLE))).scalar_one() is None:
            return None
        return con.execute(sa.select(sa.func.max(_PG_VERSION.c.version))).scalar_one()

    @property
    def schema_version(self) -> int:
        with self._engine.connect() as con:
            if self.dialect == "postgresql":
                return self._pg_version(con) or 0
            return con.exec_driver_sql("PRAGMA user_version").scalar_one()

    @contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        """A write transaction on a new connection: committed at the end, rolled back on any exception.

        SQLite: ``BEGIN IMMEDIATE`` waits up to the busy timeout for other writers, then holds the
        write lock. PostgreSQL: a lock wait inside it (``lock_timeout``) gives up after as long.
        """
        with self._engine.connect() as con:
            if self.dialect == "sqlite":
                con.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                con.exec_driver_sql(f"SET LOCAL lock_timeout = {int(BUSY_TIMEOUT_S * 1000)}")  # ms
            try:
                yield con
                if _before_commit is not None:
                    _before_commit()
                con.commit()
            except BaseException:
                con.rollback()
                raise

    # -- writing ----------------------------------------------------------------

    def write(self, run: RunInfo, records: Sequence[Record]) -> int:
        """Replace the rows of ``run``'s key by ``records``; return how many were written."""
        created_at = _now()
        numbers = [_number_row(rec) for rec in records]
        runs, results = self._runs, self._results
        key = [getattr(run, k) for k in RUN_KEY]
        match = sa.and_(*(runs.c[k] == v for k, v in zip(RUN_KEY, key)))
        attempt = 1
        while True:
            try:
                with self._transaction() as con:
                    if self.dialect == "postgresql":  # writers of this run wait here for each other
                        con.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.literal(run_lock_id(key),
                                                                                       sa.BigInteger))))
                    con.execute(sa.delete(results).where(results.c.run_id.in_(sa.select(runs.c.id).where(match))))
                    con.execute(sa.delete(runs).where(match))
                    row = _run_row(run, created_at)
                    if self.dialect == "sqlite":
                        run_id = con.execute(sa.insert(runs), row).lastrowid
                    else:
                        run_id = con.execute(sa.insert(runs).returning(runs.c.id), row).scalar_one()
                    if numbers:
                        con.execute(sa.insert(results), [{**n, "run_id": run_id} for n in numbers])
                return len(numbers)
            except (sa_exc.DBAPIError, sqlite3.Error) as wrapped:
                e = _driver_error(wrapped)
                locked = _is_locked(e)
                retry = "locked" if locked else _pg_retry(wrapped) if self.dialect == "postgresql" else None
                if retry is None:
                    raise StoreError(f"cannot write to results store {self.location}: {_message(e)}") from wrapped
                if attempt == WRITE_ATTEMPTS:
                    raise StoreError(self._gave_up(e, locked)) from wrapped
                if retry == "connection":  # give a restarting server a moment
                    time.sleep(RECONNECT_PAUSE_S)
                attempt += 1

    def _gave_up(self, err: BaseException, locked: bool) -> str:
        if self.dialect == "sqlite":
            return (f"results store {self.path} stayed locked by another process for "
                    f"{WRITE_ATTEMPTS * BUSY_TIMEOUT_S:.0f} s, so this run's numbers were not stored; "
                    "stop the hung writer (or move the store off a network filesystem) and rerun "
                    "the same command: its checkpoints and features are cached")
        if locked:
            return (f"results store {self.location}: this run's lock stayed held by another session for "
                    f"{WRITE_ATTEMPTS * BUSY_TIMEOUT_S:.0f} s, so this run's numbers were not stored; "
                    "end the hung session (pg_locks, pg_terminate_backend) and rerun the same command: "
                    "its checkpoints and features are cached")
        return (f"results store {self.location} failed {WRITE_ATTEMPTS} attempts ({_one_line(err)}), so this "
                "run's numbers were not stored; check the server and rerun the same command: its checkpoints "
                "and features are cached")

    # -- reading ----------------------------------------------------------------

    def run_keys(self) -> set[tuple]:
        """The key (``RUN_KEY`` values) of every stored run."""
        try:
            with self._engine.connect() as con:
                if self.dialect == "sqlite":
                    version = con.exec_driver_sql("PRAGMA user_version").scalar_one()
                    if version < 3:  # before v3 every number carried its run's key
                        return {tuple(row) for row in con.exec_driver_sql(
                            f"SELECT DISTINCT {_quoted(RUN_KEY)} FROM results")}
                return {tuple(row) for row in con.execute(sa.select(*(self._runs.c[k] for k in RUN_KEY)).distinct())}
        except (sa_exc.DBAPIError, sqlite3.Error) as e:
            raise StoreError(f"cannot read results store {self.location}: {_message(_driver_error(e))}") from e

    def run_versions(self) -> dict[tuple, tuple[str, str]]:
        """(commit, config hash) of every stored run, by its key (``RUN_KEY`` values).

        A store older than schema 3 kept no per-run provenance table: it gives nothing here, so no run of it
        counts as current (the first write migrates it)."""
        try:
            with self._engine.connect() as con:
                if self.dialect == "sqlite" and con.exec_driver_sql("PRAGMA user_version").scalar_one() < 3:
                    return {}
                columns = [self._runs.c[k] for k in (*RUN_KEY, "commit", "config_hash")]
                return {tuple(row[:-2]): (row[-2], row[-1]) for row in con.execute(sa.select(*columns))}
        except (sa_exc.DBAPIError, sqlite3.Error) as e:
            raise StoreError(f"cannot read results store {self.location}: {_message(_driver_error(e))}") from e

    def _sorted(self, column: sa.ColumnElement) -> sa.ColumnElement:
        """ORDER BY ``column`` as SQLite sorts it: NULL first, text by its bytes (code points)."""
        if self.dialect == "sqlite":
            return column
        if column.name in _SORTED_AS_TEXT:
            column = column.collate("C")
        return sa.nulls_first(column.asc())

    def frame(self) -> pd.DataFrame:
        """All rows as a DataFrame, columns in ``COLUMNS`` order, deterministically sorted.

        ``t`` is float (NaN where absent), ``labels``/``points`` nullable Int64,
        ``head`` None where absent; ``setting``, ``versions``, ``config`` are JSON text.
        """
        runs, results = self._runs, self._results

        def qualified(c: str) -> sa.ColumnElement:
            return (runs if c in RUN_COLUMNS else results).c[c]

        # SQLite sorts NULL first (PostgreSQL is told to); id breaks ties between otherwise identical rows.
        query = (sa.select(*(qualified(c) for c in COLUMNS))
                 .select_from(results.join(runs, runs.c.id == results.c.run_id))
                 .order_by(*(self._sorted(qualified(c)) for c in SORT_COLUMNS), results.c.id))
        try:
            with self._engine.connect() as con:
                rows = [tuple(row) for row in con.execute(query)]
        except (sa_exc.DBAPIError, sqlite3.Error) as e:
            raise StoreError(f"cannot read results store {self.location}: {_message(_driver_error(e))}") from e
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


# The sort columns holding text (PostgreSQL compares them under the "C" collation, as SQLite does).
_SORTED_AS_TEXT = {c for c in SORT_COLUMNS if _SQL_TYPES.get(c, "TEXT").startswith("TEXT")}


def _message(err: BaseException) -> str:
    """An error as the store reports it: sqlite3's as it is, psycopg's (several lines) on one line."""
    return str(err) if isinstance(err, sqlite3.Error) else _one_line(err)


def _pg_engine(url: URL, read_only: bool) -> sa.Engine:
    """An engine without a pool: a connection per use (a write per protocol run), none kept open to be
    inherited by a forked worker; ``read_only`` connections run read-only transactions."""
    args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        args["connect_timeout"] = CONNECT_TIMEOUT_S
    if read_only:
        args["options"] = f"{url.query.get('options', '')} -c default_transaction_read_only=on".strip()
    try:
        return sa.create_engine(url, poolclass=NullPool, connect_args=args)
    except ImportError as e:  # psycopg is a dependency; a bare environment may still lack it
        raise StoreError(f"results store {shown_url(url.render_as_string(hide_password=False))} needs psycopg "
                         f"({e}); install it: pip install 'psycopg[binary]'") from e


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
