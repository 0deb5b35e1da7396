"""Speed-ups of the batched implementations over their loops, from a pytest-benchmark JSON file.

    python -m tests.perf.ratios bench.json

Each benchmark group pairs ``test_*_batched`` with ``test_*_loop`` (per
parametrisation), and with any loop variant ``test_*_loop_<variant>``; the
ratio is loop time / batched time, both the minimum over rounds (the least
disturbed by other work on a shared machine). Targets apply to the plain loop.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

# How much faster the batched version must be: the first (group, words of the parametrisation) that
# matches. Issue 7 set 20x for the probe and 1.5x for trajectory encoding; issue 18 4x for the MLP
# probe on a CPU (bound by arithmetic there) and 10x for the converged linear probe against a loop of
# scikit-learn fits.
TARGETS: list[tuple[str, frozenset[str], float]] = [
    ("probe", frozenset({"mlp", "cpu"}), 4.0),
    ("probe", frozenset(), 20.0),
    ("trajectory", frozenset(), 1.5),
    ("logistic", frozenset(), 10.0),
]


def target_for(group: str, param: str) -> float | None:
    words = set(re.findall(r"[\w.]+", param))
    return next((target for g, needs, target in TARGETS if g == group and needs <= words), None)


def pair_role(name: str) -> tuple[str, str, str] | None:
    """A benchmark's place in a pair: (stem, "batched" or "loop[_variant]", parametrisation), for names
    like ``test_probe_batched[mlp-paper-cpu]``; None for a benchmark that is not half of a pair."""
    match = re.fullmatch(r"(test_\w+?)_(batched|loop(?:_\w+)?)(\[.*\])?", name)
    return None if match is None else (match.group(1), match.group(2), match.group(3) or "")


def ratio_lines(benchmarks: list[dict[str, Any]]) -> list[str]:
    """One line per (group, param, loop variant) that has both a ``_batched`` and a ``_loop`` benchmark."""
    pairs: dict[tuple[str, str], dict[str, float]] = {}
    for b in benchmarks:
        role = pair_role(b["name"])
        if role:
            _, kind, param = role
            pairs.setdefault((b["group"] or "", param), {})[kind] = b["stats"]["min"]
    lines = []
    for (group, param), times in sorted(pairs.items()):
        loops = sorted(kind for kind in times if kind.startswith("loop"))
        for loop in loops if "batched" in times else []:
            ratio = times[loop] / times["batched"]
            target = target_for(group, param) if loop == "loop" else None
            verdict = "" if target is None else f" (target {target:g}x{'' if ratio >= target else ', not met'})"
            lines.append(f"{group}{param}: batched is {ratio:.1f}x faster than {loop}{verdict}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.perf.ratios BENCHMARK_JSON", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        benchmarks = json.loads(path.read_text())["benchmarks"]
    except (OSError, ValueError, KeyError) as err:
        print(f"cannot read benchmarks from {path}: {err}", file=sys.stderr)
        return 2
    lines = ratio_lines(benchmarks)
    print("\n".join(lines) if lines else f"no batched/loop pairs in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
