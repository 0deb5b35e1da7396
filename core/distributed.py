"""Several processes under ``torchrun``: who this process is, joining the group, waiting for the others.

Outside ``torchrun`` (no ``WORLD_SIZE`` above 1) every helper is a no-op: one
process, rank 0, the main one.
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside ``torchrun``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> torch.device | None:
    """Join the process group ``torchrun`` describes; returns this rank's CUDA device, if any."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return None
    cuda = torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    # Leave the group while the interpreter is whole: gloo's worker threads, still alive when it tears
    # down, abort a finished process ("terminate called without an active exception", exit -6;
    # pytorch/pytorch#190489), and torchrun then fails the whole run.
    atexit.register(leave_distributed)
    if cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        return device
    return None


def leave_distributed() -> None:
    """Destroy the process group this process joined, if any (at exit: ``init_distributed`` registers it)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    return world()[0] == 0


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()
