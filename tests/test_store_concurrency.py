"""The results store under real processes: concurrent writers and SIGKILL lose, duplicate or split nothing.

Every test runs on SQLite and on a real PostgreSQL server (conftest.py's ``store_url``): the writers are
separate processes, each with its own connections, as sweep workers on one or many machines would be.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import multiprocessing.synchronize
import os
import random
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from benchmarks import store as store_module
from benchmarks.store import ResultsStore, RunInfo
from core.records import Record

# fork: a child starts in milliseconds (no re-import of torch) and the store keeps no connection
# open to inherit; each child still opens its own connections, as a separate sweep worker would.
CTX = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def _info(method: str, seed: int) -> RunInfo:
    return RunInfo(dataset="digits", method=method, protocol="probe", preset="tiny", seed=seed,
                   config={"lr": 0.001}, command="python -m benchmarks run")


def _records(n: int, writer: int | str) -> list[Record]:
    """n rows numbered 0..n-1, each naming the writer: a mixed or partial run is visible in the rows."""
    return [Record("accuracy", float(i), t=i / max(n, 1), head="linear", extra={"writer": writer})
            for i in range(n)]


def _integrity(store: ResultsStore) -> tuple[str, int]:
    """SQLite's integrity check ('ok'; PostgreSQL keeps its own), and the numbers without their run."""
    orphans = "SELECT COUNT(*) FROM results WHERE run_id NOT IN (SELECT id FROM runs)"
    if store.dialect != "sqlite":
        with store._engine.connect() as con:
            return "ok", con.exec_driver_sql(orphans).scalar_one()
    with closing(sqlite3.connect(store.path)) as con:
        return con.execute("PRAGMA integrity_check").fetchone()[0], con.execute(orphans).fetchone()[0]


def _rows_by_run(store: ResultsStore) -> dict[tuple[str, int], list[tuple[float, object]]]:
    rows: dict[tuple[str, int], list[tuple[float, object]]] = {}
    for rec in store.frame().itertuples():
        rows.setdefault((rec.method, rec.seed), []).append((rec.value, json.loads(rec.setting)["writer"]))
    return {k: sorted(v) for k, v in rows.items()}


N_OWN, N_SHARED = 12, 4  # per worker: its own runs, and runs every worker rewrites


def _concurrent_writer(directory: str, url: str | None, worker: int, start: mp.synchronize.Barrier) -> None:
    store = ResultsStore(directory, url=url)  # on a new PostgreSQL database, all four create its tables at once
    start.wait(timeout=60)  # all workers write at once
    for i in range(N_OWN):
        store.write(_info(f"w{worker}", i), _records(3 + i % 4, worker))
        # Every worker also rewrites the same shared runs, each with its own row count.
        store.write(_info("shared", i % N_SHARED), _records(2 + worker, worker))


def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path, store_url):
    workers = 4
    start = CTX.Barrier(workers)
    url = store_url()
    procs = [CTX.Process(target=_concurrent_writer, args=(str(tmp_path), url, w, start)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * workers

    store = ResultsStore(tmp_path, url=url)
    assert _integrity(store) == ("ok", 0)
    runs = _rows_by_run(store)
    assert len(runs) == workers * N_OWN + N_SHARED
    for w in range(workers):
        for i in range(N_OWN):
            n = 3 + i % 4
            assert runs[(f"w{w}", i)] == [(float(j), w) for j in range(n)], (w, i)
    for i in range(N_SHARED):
        # The last writer wins, whole: all rows from one worker, exactly its count, none doubled.
        writer = runs[("shared", i)][0][1]
        assert runs[("shared", i)] == [(float(j), writer) for j in range(2 + writer)], i


def _write_then_hang(directory: str, url: str | None, method: str, seed: int, n: int, ready: str) -> None:
    def hang() -> None:  # inside the transaction: rows inserted, not yet committed
        Path(ready).touch()
        time.sleep(120)

    store_module._before_commit = hang
    ResultsStore(directory, url=url).write(_info(method, seed), _records(n, "killed"))


def _wait_for(path: Path, proc: mp.Process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.is_alive(), f"child exited with {proc.exitcode} before reaching the write"
        assert time.monotonic() < deadline, "child never reached the write"
        time.sleep(0.01)


@pytest.mark.parametrize("seed", [3, 99], ids=["rewriting-a-run", "a-new-run"])
def test_killed_inside_a_write_leaves_the_store_as_before(tmp_path, store_url, seed):
    url = store_url()
    store = ResultsStore(tmp_path, url=url)
    for i in range(6):
        store.write(_info("drl", i), _records(4, "before"))
    before = _rows_by_run(store)

    ready = tmp_path / "in_transaction"
    child = CTX.Process(target=_write_then_hang, args=(str(tmp_path), url, "drl", seed, 500, str(ready)))
    child.start()
    _wait_for(ready, child)
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL

    reopened = ResultsStore(tmp_path, url=url)
    assert _integrity(reopened) == ("ok", 0)
    assert _rows_by_run(reopened) == before  # run 3 keeps its old rows; run 99 is absent
    start = time.monotonic()
    reopened.write(_info("drl", seed), _records(2, "after"))  # the dead writer's lock (run lock) is gone
    assert time.monotonic() - start < 5
    assert _rows_by_run(reopened)[("drl", seed)] == [(0.0, "after"), (1.0, "after")]


ROWS_PER_RUN = 300


def _write_forever(directory: str, url: str | None, first: int, log: str) -> None:
    store = ResultsStore(directory, url=url)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    for i in range(first, first + 100_000):
        store.write(_info("loop", i), _records(ROWS_PER_RUN, i))
        os.write(fd, f"{i}\n".encode())  # unbuffered: what is logged was committed


def test_killed_at_random_points_never_leaves_a_partial_run(tmp_path, store_url):
    rng = random.Random(0)
    url = store_url()
    ResultsStore(tmp_path, url=url)
    present: set[int] = set()
    for kill in range(5):
        log = tmp_path / f"committed_{kill}.txt"
        first = len(present)
        child = CTX.Process(target=_write_forever, args=(str(tmp_path), url, first, str(log)))
        child.start()
        time.sleep(rng.uniform(0.1, 0.5))
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
        assert child.exitcode == -signal.SIGKILL

        store = ResultsStore(tmp_path, url=url)
        assert _integrity(store) == ("ok", 0)
        runs = _rows_by_run(store)
        for (_, seed), rows in runs.items():
            assert rows == [(float(j), seed) for j in range(ROWS_PER_RUN)], f"run {seed} is partial"
        new = {seed for _, seed in runs} - present
        reported = {int(line) for line in log.read_text().split()} if log.exists() else set()
        # Every commit the child reported survives; at most the one in flight got in unreported.
        assert reported <= new and len(new - reported) <= 1
        present |= new
        assert present == set(range(len(present)))
    assert len(present) >= 5, "the writers should have committed runs between kills"
