"""Pretraining under torchrun: two gloo processes on the CPU learn what one process learns."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from core.distributed import leave_distributed

REPO = Path(__file__).resolve().parents[1]


def _torchrun(processes: int, *module_args: str) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` in ``processes`` processes under torchrun, one thread each; it must succeed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={processes}", "-m", *module_args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]  # the workers' tracebacks, not just the exit status
    return done


def _train(processes: int, out: Path) -> dict:
    _torchrun(processes, "tests.workers.ddp_train", str(out))
    return torch.load(out, weights_only=True)


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    one = _train(1, tmp_path / "one.pt")
    two = _train(2, tmp_path / "two.pt")
    # float32 sums in another order drift by a few 1e-6 over 30 steps on some CPUs; a missing or doubled
    # gradient average moves the weights by 1e-2 and more.
    for part in one["state"]:
        for name, tensor in one["state"][part].items():
            torch.testing.assert_close(two["state"][part][name], tensor, rtol=1e-5, atol=2e-5,
                                       msg=f"{part}.{name}")
    torch.testing.assert_close(two["losses"], one["losses"], rtol=1e-5, atol=1e-7)  # all-reduced means
    assert (one["ddp"], two["ddp"]) == (0, 1), "two processes average gradients through DistributedDataParallel"


def test_the_command_line_under_torchrun_stores_each_run_once_from_rank_0(tmp_path):
    results = tmp_path / "results"
    done = _torchrun(2, "benchmarks", "run", "--method", "ae,simclr", "--protocol", "probe", "--preset", "smoke",
                     "--no-progress", "--results", str(results), "--leaderboards", str(tmp_path / "boards"))
    assert done.stderr.count("ae seed 0: pretraining 20 steps") == 1  # rank 0 alone logs
    assert done.stderr.count("simclr seed 0: pretraining 20 steps") == 1  # NT-Xent gathers across ranks
    with sqlite3.connect(results / "results.sqlite") as db:
        runs = db.execute("SELECT method, protocol, seed FROM runs ORDER BY method").fetchall()
    assert runs == [("ae", "probe", 0), ("simclr", "probe", 0)]
    assert (tmp_path / "boards" / "digits" / "probe.md").exists()


def test_leaving_destroys_the_group_and_is_safe_to_repeat(monkeypatch):
    # init_distributed registers it at exit: a gloo group alive at interpreter teardown aborts the process.
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29533")
    dist.init_process_group("gloo", rank=0, world_size=1)
    leave_distributed()
    assert not dist.is_initialized()
    leave_distributed()  # outside a group: nothing to do
