"""Where a number came from: code version, package versions, hardware."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
from collections.abc import Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import torch

# Where a run reads and writes and how it displays progress are the reader's choice, not part of what
# produced a number: a stored command names no data or output folder (nor a machine path through one;
# the data's fingerprint is in the checkpoint key) and no results database (nor the password in its URL),
# so it runs as written from a fresh clone with the data laid out as the README says.
OUTPUT_OPTIONS = ("--data-root", "--results", "--leaderboards", "--results-db")
# Nor does it keep the flags that change what is shown or recomputed, not what a number is.
DISPLAY_OPTIONS = ("--no-progress", "--rerun")
COMMAND_PREFIX = "python -m benchmarks"


def reproduction_command(argv: Sequence[str]) -> str:
    """``python -m benchmarks`` + ``argv`` without its output folders and display options."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in OUTPUT_OPTIONS:
            skip = True  # its value follows
        elif arg in DISPLAY_OPTIONS or arg.split("=", 1)[0] in OUTPUT_OPTIONS:
            continue
        else:
            kept.append(arg)
    return f"{COMMAND_PREFIX} {shlex.join(kept)}"


def reproducible(command: str) -> str:
    """A stored command line made reproducible: ``reproduction_command`` of its arguments."""
    words = shlex.split(command)
    prefix = shlex.split(COMMAND_PREFIX)
    if words[:len(prefix)] != prefix:
        return command  # not one of ours (a hand-made store): leave it as it is
    return reproduction_command(words[len(prefix):])


PACKAGES = ("torch", "torchvision", "timm", "lightly", "scikit-learn", "numpy", "pandas")
REPO = Path(__file__).resolve().parent.parent


# A tree copied without its .git (to a GPU node, say) names the commit it was copied at here.
COMMIT_ENV = "BENCHMARKS_COMMIT"


@lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD's hash, with '+dirty' when tracked code (not results) differs from it; outside git,
    ``$BENCHMARKS_COMMIT`` (the commit a copied tree came from, as ``git_commit`` gave it there) or ''."""
    try:
        head = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".",
                     ":(exclude)results", ":(exclude)leaderboards")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get(COMMIT_ENV, "")
    return head + ("+dirty" if dirty else "")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                          check=True, timeout=10).stdout.strip()


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = ""
    return versions


def device_name(device: torch.device) -> str:
    """Where numbers came from, precisely enough to explain why two runs of one seed differ: on a CPU
    the model and the vector instructions torch's kernels use (AVX2 and AVX-512 kernels round
    differently, so pretraining drifts apart) and the thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return (f"cpu ({_cpu_model()}, {torch.backends.cpu.get_cpu_capability()}, "
            f"{torch.get_num_threads()} threads)")


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
