"""core.host_memory: freed blocks stay in the process, so a step's activations are not faulted in anew.

Counted, not timed: the minor page faults of allocating and freeing a 40 MB
tensor (above glibc's largest adaptive threshold, so by default an mmap of fresh
pages each time) in a fresh interpreter, with and without the suite's setting,
once the heap has grown to hold it.
"""

import subprocess
import sys

import pytest

from core.host_memory import USER_SETTINGS, malloc_in_effect, on_glibc, retain_freed_memory

FAULTS_PER_ALLOCATION = """
import resource, sys, torch
from core.host_memory import malloc_in_effect
ran = malloc_in_effect(sys.argv[1])
for _ in range(10):  # 40 MB blocks: the heap grows to its steady state, faulting pages in either way
    torch.empty(10_000_000).fill_(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.empty(10_000_000).fill_(1.0)
print(ran, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def _faults_per_allocation(choice: str) -> tuple[str, float]:
    out = subprocess.run([sys.executable, "-c", FAULTS_PER_ALLOCATION, choice], capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], float(out[1])


@pytest.mark.skipif(not on_glibc(), reason="the setting is glibc's")
def test_retained_memory_is_reused_without_page_faults():
    assert _faults_per_allocation("default") == ("default", pytest.approx(10_000_000 * 4 / 4096, rel=0.2))
    ran, faults = _faults_per_allocation("retain")
    assert ran == "retain" and faults < 100  # a few for torch's own bookkeeping, not 9766 pages


@pytest.mark.skipif(not on_glibc(), reason="the setting is glibc's")
def test_a_users_own_malloc_settings_are_left_alone(monkeypatch):
    for name in USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert retain_freed_memory() is False
    assert malloc_in_effect("retain") == "default"


def test_an_unknown_malloc_setting_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match="malloc='jemalloc' is not a setting; valid: retain, default"):
        malloc_in_effect("jemalloc")
