"""Shared inputs of the benchmarks (``tox -e bench``): the quick preset on the embedded digits.

Every benchmark module here is marked ``bench`` (excluded from the default run) and
sized like the suite's default run: digits, the quick preset's encoder, its
11 values of t. The ratio of each batched/loop pair is printed after the
benchmark table when the run writes ``--benchmark-json`` (``tests/perf/ratios.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from core.data import DataSplits
from core.host_memory import retain_freed_memory
from datasets import load_dataset
from methods.base import Method
from protocols.base import DEFAULT_T_VALUES
from tests.conftest import preset_method
from tests.perf.ratios import pair_role, ratio_lines

SPLITS = ("train", "val", "test")


RATIO_LINES = pytest.StashKey[list[str]]()
THROUGHPUT_LINES: list[str] = []  # GPU throughput benchmarks append one line each


def pytest_benchmark_update_json(config, benchmarks, output_json):
    config.stash[RATIO_LINES] = ratio_lines(output_json["benchmarks"])


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's tables
def pytest_terminal_summary(terminalreporter, config):
    for title, lines in (("batched vs loop (min times)", config.stash.get(RATIO_LINES, [])),
                         ("pretraining throughput", THROUGHPUT_LINES)):
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run every loop benchmark right after its batched partner (same module and parametrisation)
    instead of after all the batched ones: these machines' speed drifts by a fifth over minutes, and a
    pair measured minutes apart carries that drift into its ratio."""
    roles = [pair_role(item.name) for item in items]
    batched_at = {(item.path, role[0], role[2]): position for position, (item, role) in enumerate(zip(items, roles))
                  if role and role[1] == "batched"}

    def place(position: int) -> tuple[float, int]:
        item, role = items[position], roles[position]
        partner = batched_at.get((item.path, role[0], role[2])) if role and role[1] != "batched" else None
        return (position, 0) if partner is None else (partner + 0.5, position)  # after it, loops in order

    items[:] = [items[position] for position in sorted(range(len(items)), key=place)]


@pytest.fixture(scope="session", autouse=True)
def command_line_malloc() -> None:
    """Time everything under the malloc setting that ``python -m benchmarks`` runs with (core.host_memory)."""
    retain_freed_memory()


def quick_method(name: str, data: DataSplits, **overrides) -> Method:
    """A freshly initialised method with the quick preset's settings for ``data`` (seed 0)."""
    return preset_method(name, data, "quick", **overrides)[0]


@dataclass
class Codes:
    """Codes of every split at the 11 default t, as the feature cache holds them: (T, N, d)."""

    ts: list[float]
    features: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]


@pytest.fixture(scope="session")
def digits() -> DataSplits:
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_drl(digits) -> Method:
    """The quick preset's DRL at initialisation: its codes have the shapes and cost of a trained one's."""
    return quick_method("drl", digits)


@pytest.fixture(scope="session")
def digits_codes(digits, digits_drl) -> Codes:
    ts = list(DEFAULT_T_VALUES)
    features = {}
    for split in SPLITS:
        images = digits.split(split).images
        features[split] = torch.stack([digits_drl.encode(images, torch.full((len(images),), t)) for t in ts])
    return Codes(ts, features, {split: digits.split(split).labels for split in SPLITS})
