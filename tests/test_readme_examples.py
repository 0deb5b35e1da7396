"""The README's smallest working examples of a new method, protocol and dataset run as written: each
block is copied into a scratch package beside the project's (the source tree is never written) and
the three run together at the smoke preset."""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt

from tests.test_discovery import REPO, assert_listed, run_with_extra_modules


def _examples() -> dict[str, str]:
    """``path -> code`` of every README block fenced as ```python <path>."""
    tokens = MarkdownIt().parse((REPO / "README.md").read_text())
    return {tok.info.split()[1]: tok.content for tok in tokens
            if tok.type == "fence" and len(tok.info.split()) == 2 and tok.info.split()[0] == "python"}


def test_the_extending_examples_are_listed_and_run(tmp_path: Path):
    examples = _examples()
    assert sorted(examples) == ["datasets/digits_flipped.py", "methods/masked_ae.py", "protocols/knn.py"]
    extra = tmp_path / "extra"
    for path, code in examples.items():
        (extra / path).parent.mkdir(parents=True, exist_ok=True)
        (extra / path).write_text(code)
    assert_listed(extra, tmp_path, {"masked-ae": "methods.masked_ae", "knn": "protocols.knn",
                                    "digits-flipped": "datasets.digits_flipped"})
    run = run_with_extra_modules(extra, tmp_path / "results", "run", "--method", "masked-ae", "--protocol", "knn",
                                 "--dataset", "digits-flipped", "--preset", "smoke", "--no-progress",
                                 "--set", "mask_fraction=0.3", "--leaderboards", str(tmp_path / "lb"))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    page = (tmp_path / "lb" / "digits-flipped" / "knn.md").read_text()
    assert "masked-ae" in page
