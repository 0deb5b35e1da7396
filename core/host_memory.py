"""Keep freed host memory in the process, so that each training step does not fault its pages in anew.

PyTorch's CPU tensors come straight from ``malloc``. A step's activations are
megabytes each (the probe's batched heads: 11 x 512 x 256 floats, 5.8 MB), and
glibc's defaults hand such blocks back to the kernel when they are freed (an
``mmap`` per block above the threshold, or trimming the top of the heap); the
next step then pays a page fault for every 4 KiB it touches again. Raising both
thresholds keeps the freed blocks for reuse: the batched MLP probe's heads fit
1.2x to 1.3x as fast on a CPU (README, Performance; the suite's pretraining
step gains nothing measurable), for a process footprint that stays near its
peak instead of shrinking between steps.

Only glibc (Linux) is tuned; elsewhere, or where the user chose glibc's malloc
settings through its environment variables (``GLIBC_TUNABLES=``, empty, keeps
glibc's defaults), nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import platform

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks up to 64 MiB come from the heap (glibc's adaptive threshold stops at 32 MiB), and up to
# 256 MiB of freed memory at the heap's top is kept. Setting either disables glibc's adaptation.
MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 256 << 20
# The variables through which glibc reads the same settings at start-up: a user who set one chose.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")


def on_glibc() -> bool:
    """Whether this process allocates through glibc's malloc, the one these settings are for."""
    return platform.libc_ver()[0] == "glibc"


def retain_freed_memory() -> bool:
    """Set glibc's malloc to keep freed blocks up to the thresholds above; True when it was set.

    Call it once at a process's start (the command line, each sweep worker, the
    performance scripts); it only affects allocations made after it.
    """
    if not on_glibc() or any(name in os.environ for name in USER_SETTINGS):
        return False
    mallopt = ctypes.CDLL(None).mallopt
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


# The performance scripts' ``--malloc``: the suite's setting, or glibc's own.
MALLOC_CHOICES = ("retain", "default")


def malloc_in_effect(choice: str) -> str:
    """Apply ``--malloc`` (one of MALLOC_CHOICES) and say what runs: "retain", or "default" where
    retaining was not asked for or cannot be set here (not glibc, or the user's own settings)."""
    if choice not in MALLOC_CHOICES:
        raise ValueError(f"malloc={choice!r} is not a setting; valid: {', '.join(MALLOC_CHOICES)}")
    return "retain" if choice == "retain" and retain_freed_memory() else "default"
