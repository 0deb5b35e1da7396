"""A run the store already holds at this commit with these settings is skipped; ``--rerun`` recomputes it."""

import pytest

from benchmarks import provenance
from benchmarks.__main__ import main
from benchmarks.plan import is_current
from benchmarks.store import ResultsStore
from methods.base import Method
from protocols.probe import Probe

CLEAN = "a" * 40


def _run(tmp_path, *extra: str) -> int:
    return main(["run", "--method", "drl", "--protocol", "probe", "--preset", "smoke", "--no-progress",
                 "--results", str(tmp_path / "r"), "--leaderboards", str(tmp_path / "b"), *extra])


def _stored(tmp_path):
    return ResultsStore(tmp_path / "r", read_only=True).frame()[["commit", "created_at"]].drop_duplicates()


def _forbid_computing(monkeypatch):
    def forbidden(*_a, **_k):
        raise AssertionError("a run stored at this commit must not be computed again")

    for cls, name in ((Method, "fit"), (Method, "encode"), (Probe, "run")):
        monkeypatch.setattr(cls, name, forbidden)


@pytest.fixture
def stored_at_clean_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "git_commit", lambda: CLEAN)
    assert _run(tmp_path) == 0
    return tmp_path


def test_a_run_stored_at_this_commit_is_skipped_without_pretraining(stored_at_clean_commit, monkeypatch, capsys):
    tmp_path = stored_at_clean_commit
    before = _stored(tmp_path)
    for ckpt in (tmp_path / "r" / "checkpoints").glob("*.pt"):
        ckpt.unlink()  # even with its checkpoint gone, nothing is pretrained again
    _forbid_computing(monkeypatch)
    capsys.readouterr()
    assert _run(tmp_path) == 0
    assert "drl seed 0 probe: stored at this commit with these settings; skipped" in capsys.readouterr().err
    assert _stored(tmp_path).equals(before)


def test_the_dry_run_says_which_runs_would_be_skipped(stored_at_clean_commit, capsys):
    capsys.readouterr()
    assert _run(stored_at_clean_commit, "--seeds", "0,1", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "drl seed 0: nothing to compute (every run stored at this commit)" in out
    assert "drl seed 0 probe: stored at this commit with these settings, skipped (--rerun recomputes it)" in out
    assert "drl seed 1 probe: new run" in out
    assert "1 evaluations (1 new, 0 replacing stored runs; 1 stored at this commit, skipped)" in out
    assert _run(stored_at_clean_commit, "--seeds", "0,1", "--dry-run", "--rerun") == 0
    assert "2 evaluations (1 new, 1 replacing stored runs; 0 stored at this commit, skipped)" in capsys.readouterr().out


def _count_probe_runs(monkeypatch) -> list:
    calls, run = [], Probe.run

    def counted(self, *args, **kwargs):
        calls.append(1)
        return run(self, *args, **kwargs)

    monkeypatch.setattr(Probe, "run", counted)
    return calls


def test_rerun_recomputes_and_is_not_part_of_the_stored_command(stored_at_clean_commit, monkeypatch):
    calls = _count_probe_runs(monkeypatch)
    assert _run(stored_at_clean_commit, "--rerun") == 0
    assert len(calls) == 1 and len(_stored(stored_at_clean_commit)) == 1
    command = ResultsStore(stored_at_clean_commit / "r", read_only=True).frame().command.iloc[0]
    assert "--rerun" not in command


@pytest.mark.parametrize("commit", ["b" * 40, CLEAN + "+dirty", ""])
def test_a_run_at_other_or_unknown_code_is_recomputed(stored_at_clean_commit, monkeypatch, commit):
    monkeypatch.setattr(provenance, "git_commit", lambda: commit)
    calls = _count_probe_runs(monkeypatch)
    assert _run(stored_at_clean_commit) == 0
    assert len(calls) == 1 and list(_stored(stored_at_clean_commit).commit) == [commit]


def test_is_current_needs_the_same_clean_commit_and_settings():
    assert is_current((CLEAN, "h"), CLEAN, "h")
    assert not is_current((CLEAN, "h"), CLEAN, "other settings")
    assert not is_current((CLEAN, "h"), "b" * 40, "h")
    assert not is_current((CLEAN + "+dirty", "h"), CLEAN + "+dirty", "h")
    assert not is_current(("", "h"), "", "h")
    assert not is_current(None, CLEAN, "h")
