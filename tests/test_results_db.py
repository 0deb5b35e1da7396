"""--results-db (and $BENCHMARKS_RESULTS_DB): runs, dry runs, sweeps and leaderboards on one PostgreSQL
database; a bad URL or an unreachable server is one line, exit status 2, on every subcommand."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import optuna
import pytest

from benchmarks import sweep
from benchmarks.__main__ import main
from benchmarks.store import ResultsStore
from tests.conftest import usage_error


def _subcommand(name: str, tmp_path: Path) -> list[str]:
    """The arguments of a subcommand that opens the store, with the folders of this test."""
    folders = ["--results", str(tmp_path / "r")]
    run = ["--method", "drl", "--protocol", "probe", "--preset", "smoke", "--no-progress", *folders,
           "--leaderboards", str(tmp_path / "b")]
    return {"run": ["run", *run], "run --dry-run": ["run", *run, "--dry-run"],
            "sweep": ["sweep", *run, "--trials", "1"],
            "leaderboard": ["leaderboard", *folders, "--leaderboards", str(tmp_path / "b")],
            "leaderboard --check": ["leaderboard", *folders, "--leaderboards", str(tmp_path / "b"), "--check"],
            "results": ["results", *folders]}[name]


@pytest.mark.parametrize("command", ["run", "run --dry-run", "sweep", "leaderboard", "leaderboard --check", "results"])
def test_a_bad_url_is_one_line_naming_it_and_the_valid_forms(tmp_path, capsys, command):
    err = usage_error([*_subcommand(command, tmp_path), "--results-db", "mysql://me@db/results"], capsys)
    assert "--results-db mysql://me@db/results: unknown scheme 'mysql'; valid: postgresql://" in err
    assert "sqlite:///PATH" in err
    assert not (tmp_path / "r").exists() and not (tmp_path / "b").exists()


def test_the_environment_variable_is_the_fallback_and_named_when_bad(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCHMARKS_RESULTS_DB", "oracle://me@db/results")
    err = usage_error(["results", "--results", str(tmp_path / "r")], capsys)
    assert "BENCHMARKS_RESULTS_DB oracle://me@db/results: unknown scheme 'oracle'" in err
    assert main(["results", "--results", str(tmp_path / "r"), "--results-db", ""]) == 0  # the flag wins


@pytest.mark.parametrize("command", ["leaderboard", "leaderboard --check", "results", "run --dry-run"])
def test_an_unreachable_server_is_one_line_with_the_password_hidden(tmp_path, capsys, command):
    args = _subcommand(command, tmp_path)
    url = f"postgresql://me:secret@/results?host={tmp_path / 'no-server'}&port=1"
    if command == "run --dry-run":  # the plan says so instead of failing: nothing is written either way
        assert main([*args, "--results-db", url]) == 0
        out = capsys.readouterr().out
        assert "store postgresql://me:***@/results" in out and "store unreadable" in out and "secret" not in out
        return
    err = usage_error([*args, "--results-db", url], capsys)
    assert "cannot open results store postgresql://me:***@/results" in err and "secret" not in err


def _rows(capsys) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_a_run_on_postgresql_stores_there_and_caches_under_results(tmp_path, postgres_server, capsys, monkeypatch):
    """run, run --dry-run, results, leaderboard --check, all on one database; the caches stay local."""
    url = postgres_server.url()
    results, boards = tmp_path / "r", tmp_path / "b"
    args = ["run", "--method", "ae", "--protocol", "probe", "--preset", "smoke", "--no-progress",
            "--results", str(results), "--leaderboards", str(boards), "--results-db", url]
    assert main(args) == 0
    assert not (results / "results.sqlite").exists(), "the store is the database"
    assert list((results / "checkpoints").glob("*.pt")), "checkpoints stay under --results"
    capsys.readouterr()
    assert main(["results", "--results", str(results), "--results-db", url]) == 0
    rows = _rows(capsys)
    assert {r["method"] for r in rows} == {"ae"} and {r["metric"] for r in rows} >= {"accuracy"}
    assert "--results-db" not in rows[0]["command"] and "--results" not in rows[0]["command"]

    monkeypatch.setenv("BENCHMARKS_RESULTS_DB", url)  # the same database, named once for every command
    assert main(["results", "--results", str(tmp_path / "elsewhere")]) == 0
    assert _rows(capsys) == rows
    assert main([*args[:-2], "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert f"store {url}: 1 runs stored" in plan and "stored run will be replaced" in plan
    assert main(["leaderboard", "--results", str(tmp_path / "elsewhere"), "--leaderboards", str(boards), "--check"]) == 0
    assert f"{boards}/ is exactly what {url} generates" in capsys.readouterr().out
    assert ResultsStore(tmp_path, url=url).run_keys() == {("digits", "ae", "", "probe", "smoke", 0)}


def test_a_sweep_on_postgresql_keeps_its_study_in_the_results_database(tmp_path, postgres_server):
    url = postgres_server.url()
    storage = sweep.create_storage("", tmp_path / "r", url)
    assert storage.startswith("postgresql+psycopg://") and not (tmp_path / "r").exists()
    study = optuna.create_study(storage=storage, study_name="shared", direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    # Another worker, given the same database as --storage postgresql://... (psycopg, not psycopg2), sees them.
    again = optuna.load_study(study_name="shared", storage=sweep.create_storage(url, tmp_path / "other"))
    assert len(again.trials) == 2
    ResultsStore(tmp_path, url=url)  # the results store's tables live beside Optuna's
    assert sweep.create_storage("", tmp_path / "r", "") == f"sqlite:///{tmp_path / 'r' / 'optuna.sqlite'}"
    assert sweep.create_storage("sqlite:///x.db", tmp_path) == "sqlite:///x.db"
