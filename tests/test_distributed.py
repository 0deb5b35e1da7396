"""Pretraining under torchrun: two gloo processes on the CPU learn what one process learns."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def _torchrun(processes: int, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={processes}", "-m", "tests.workers.ddp_train", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]  # the workers' tracebacks, not just the exit status
    return torch.load(out, weights_only=True)


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    one = _torchrun(1, tmp_path / "one.pt")
    two = _torchrun(2, tmp_path / "two.pt")
    # float32 sums in another order drift by a few 1e-6 over 30 steps on some CPUs; a missing or doubled
    # gradient average moves the weights by 1e-2 and more.
    for part in one["state"]:
        for name, tensor in one["state"][part].items():
            torch.testing.assert_close(two["state"][part][name], tensor, rtol=1e-5, atol=2e-5,
                                       msg=f"{part}.{name}")
    torch.testing.assert_close(two["losses"], one["losses"], rtol=1e-5, atol=1e-7)  # all-reduced means
    assert (one["ddp"], two["ddp"]) == (0, 1), "two processes average gradients through DistributedDataParallel"


def test_the_command_line_under_torchrun_stores_each_run_once_from_rank_0(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "benchmarks",
         "run", "--method", "ae,simclr", "--protocol", "probe", "--preset", "smoke", "--no-progress",
         "--results", str(results), "--leaderboards", str(tmp_path / "boards")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count("ae seed 0: pretraining 20 steps") == 1  # rank 0 alone logs
    assert done.stderr.count("simclr seed 0: pretraining 20 steps") == 1  # NT-Xent gathers across ranks
    with sqlite3.connect(results / "results.sqlite") as db:
        runs = db.execute("SELECT method, protocol, seed FROM runs ORDER BY method").fetchall()
    assert runs == [("ae", "probe", 0), ("simclr", "probe", 0)]
    assert (tmp_path / "boards" / "digits" / "probe.md").exists()
