"""Adding a component is one new file: a copy of an existing method, protocol or dataset module under a new
file name, with new registered names, is listed and runs, and no other file is touched. The copies live in a
temporary folder added to the package's search path, so the source tree is never written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _copy(package: str, module: str, renames: dict[str, str], dest: Path) -> None:
    text = (REPO / package / f"{module}.py").read_text()
    for old, new in renames.items():
        assert old in text, old
        text = text.replace(old, new)
    folder = dest / package
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}_copy.py").write_text(text)


def run_with_extra_modules(extra: Path, results: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m benchmarks ARGS` with the modules under `extra/<package>/` added to each package."""
    code = ("import sys, datasets, methods, protocols\n"
            f"for p in (datasets, methods, protocols): p.__path__.append(str({str(extra)!r}) + '/' + p.__name__)\n"
            "from benchmarks.__main__ import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, "-c", code, *args, "--results", str(results)] if args[0] == "run" else
                          [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def assert_listed(extra: Path, tmp_path: Path, modules: dict[str, str]) -> None:
    """`python -m benchmarks list` shows each name with the module that defines it."""
    listed = run_with_extra_modules(extra, tmp_path / "results", "list")
    assert listed.returncode == 0, listed.stderr
    for name, module in modules.items():
        assert any(line.split() == [name, module] for line in listed.stdout.splitlines()), (name, listed.stdout)


def test_a_copied_module_is_discovered_listed_and_run(tmp_path):
    extra = tmp_path / "extra"
    _copy("methods", "simclr", {'name = "simclr"': 'name = "simclr-copy"',
                                'name = "simclr-gauss"': 'name = "simclr-gauss-copy"'}, extra)
    _copy("protocols", "svm", {'name = "svm"': 'name = "svm-copy"'}, extra)
    _copy("datasets", "digits", {'@register_dataset("digits")': '@register_dataset("digits-copy")',
                                 'name="digits"': 'name="digits-copy"'}, extra)
    assert_listed(extra, tmp_path, {"simclr-copy": "methods.simclr_copy", "svm-copy": "protocols.svm_copy",
                                    "digits-copy": "datasets.digits_copy"})
    run = run_with_extra_modules(extra, tmp_path / "results", "run", "--method", "simclr-gauss-copy",
                                 "--protocol", "svm-copy", "--dataset", "digits-copy", "--preset", "smoke",
                                 "--no-progress", "--leaderboards", str(tmp_path / "lb"))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert (tmp_path / "lb" / "digits-copy" / "svm-copy.md").is_file()
