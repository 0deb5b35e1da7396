"""Which commit a run records: git's HEAD, or, in a copy without .git, the commit the copy names."""

import subprocess

from benchmarks import provenance

# conftest replaces provenance.git_commit for the session's runs; this is the real one.
git_commit = provenance.git_commit


def _real_git_commit():
    git_commit.cache_clear()
    try:
        return git_commit()
    finally:
        git_commit.cache_clear()


def test_a_tree_without_git_records_the_commit_it_was_copied_at(monkeypatch):
    def no_repository(*_args):
        raise subprocess.CalledProcessError(128, "git", stderr="fatal: not a git repository")

    monkeypatch.setattr(provenance, "_git", no_repository)
    monkeypatch.setenv(provenance.COMMIT_ENV, "a" * 40 + "+dirty")
    assert _real_git_commit() == "a" * 40 + "+dirty"
    monkeypatch.delenv(provenance.COMMIT_ENV)
    assert _real_git_commit() == ""


def test_git_wins_over_the_variable(monkeypatch):
    monkeypatch.setattr(provenance, "_git", lambda *args: "b" * 40 if args[0] == "rev-parse" else "")
    monkeypatch.setenv(provenance.COMMIT_ENV, "a" * 40)
    assert _real_git_commit() == "b" * 40
