"""The shared pretraining loop: resumable, mixed precision, one or several processes.

Every method trains through ``train``: Adam with linear warm-up, gradient
clipping, an EMA of the encoder, on-device batches of the training tensor.
What this module adds around that loop:

- **Resume.** Every ``checkpoint_every`` steps a snapshot (modules, EMA,
  optimiser, scheduler, the batch sampler's permutation and every RNG) is
  written atomically; a rerun of the same command continues from it and ends
  with the same weights as an uninterrupted run on the same device. The
  snapshot is deleted once the final checkpoint exists.
- **Speed.** bf16 autocast (``precision``) and channels-last tensors (``layout``),
  by default on CUDA and on request on a CPU; fused Adam; optionally
  ``torch.compile`` of every trained module, on CUDA with CUDA graphs
  (``compile_mode="reduce-overhead"``: each compiled forward and backward
  replays as one launch, which at the paper preset's batch of 100 is what
  keeps a fast GPU busy).
- **Several processes.** Under ``torchrun`` every rank draws the same global
  batch (rank 0's permutation, broadcast) and takes its slice; the method's
  loss runs as the forward of one module (``_Objective``) wrapped in
  ``DistributedDataParallel``, which starts every rank from rank 0's weights
  and averages gradients in buckets overlapped with the backward pass
  (``find_unused_parameters``: a method may leave modules unused on a step).
  On CUDA BatchNorm is synchronised, so the ranks together see what one
  process would.
  Random draws inside ``loss`` (noise, t) use a per-rank stream. Only rank 0
  writes files.

Why not PyTorch Lightning's Trainer: its per-step overhead is small (0.1 to
0.8 ms on a tiny CPU model on this suite's 2-core machine), but resuming
mid-epoch bit for bit needs the sampler's on-device permutation and every RNG
stream restored, which its checkpoints do not hold.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from core.distributed import barrier, world
from core.files import load_or_set_aside, save_verified
from core.presets import per_size
from core.validation import Checked, Choice, Integers, Interval, Positive, setting

if TYPE_CHECKING:
    from timm.utils import ModelEmaV3

    from core.data import ImageData

PRECISIONS = ("auto", "fp32", "bf16")
LAYOUTS = ("auto", "channels_last", "contiguous")
# torch.compile's modes: "reduce-overhead" also records CUDA graphs (on CUDA; a CPU compiles without them).
COMPILE_MODES = ("default", "reduce-overhead")
COMPILED_MODE = "_compiled_mode"  # the attribute recording the mode a trained module was compiled in
# Options that change how fast a run is, not what it learns: not part of a run's identity.
SPEED_SETTINGS = ("layout", "compile", "compile_mode", "checkpoint_every")
SNAPSHOT_FORMAT = 1


class TrainingSetupError(ValueError):
    """The run cannot start as asked (world size, batch size): the user's to fix."""


# The reference warms the learning rate up over 5k of its 70k steps.
REFERENCE_WARMUP_FRACTION = 5_000 / 70_000


def warmup_for(iterations: int) -> int:
    return round(iterations * REFERENCE_WARMUP_FRACTION)


@dataclass(frozen=True)
class Budget(Checked):
    """How much pretraining a method gets: the same for every method of a comparison."""

    # quick is sized by measurement on one CPU core: digits pretrains in about 2 minutes, MNIST in
    # about 12 (0.45 s per MNIST step of 64 images); paper is the reference's 70k steps of 100.
    iterations: int = setting(2000, Integers(1), smoke=20, quick=1000, paper=70_000)
    batch_size: int = setting(128, Integers(1), smoke=32, quick=per_size(tiny=128, other=64), paper=100)
    # The reference's optimiser for every method: Adam 2e-4, warmed up over 5k of its 70k steps
    # (quick and paper keep that ratio at any --set iterations=N: benchmarks.presets).
    lr: float = setting(2e-4, Positive(), smoke=1e-3, quick=2e-4, paper=2e-4)
    warmup: int = setting(100, Integers(0), smoke=5, quick=warmup_for(1000), paper=5000)  # steps
    grad_clip: float = setting(1.0, Positive(), smoke=1.0, quick=1.0, paper=1.0)
    ema_decay: float = setting(0.999, Interval(0, 1, closed="left"), smoke=0.9, quick=0.995, paper=0.999)

    @property
    def images_seen(self) -> int:
        return self.iterations * self.batch_size


class Trainable(Protocol):
    """What the loop needs of a method; ``methods.base.Method`` is one (the loop does not import it)."""

    name: str
    device: torch.device
    modules: nn.ModuleDict
    ema: ModelEmaV3

    def param_groups(self) -> list[dict[str, Any]]: ...
    def prepare(self, images: Tensor) -> Any: ...
    def loss(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]: ...
    def after_step(self, step: int) -> None: ...


@dataclass(frozen=True)
class TrainOptions(Checked):
    """How pretraining runs on the hardware. Only ``precision`` changes what is learned."""

    precision: str = setting("auto", Choice(PRECISIONS))  # auto: bf16 autocast on CUDA, fp32 elsewhere
    layout: str = setting("auto", Choice(LAYOUTS))  # of the images and weights; auto: channels-last on CUDA
    compile: bool = False         # torch.compile every trained module (first steps are slower)
    compile_mode: str = setting("default", Choice(COMPILE_MODES))  # torch.compile's mode, with compile
    # steps between resumable snapshots
    checkpoint_every: int = setting(500, Integers(0, note="0: none"))

    SETTING_HINTS: ClassVar[dict[str, str]] = {
        "channels_last": "the layout setting replaced it: layout=channels_last, contiguous or auto"}

    def resolved_precision(self, device: torch.device) -> str:
        if self.precision == "auto":
            return "bf16" if device.type == "cuda" else "fp32"
        return self.precision

    def resolved_channels_last(self, device: torch.device) -> bool:
        """``auto`` is channels-last on CUDA only. On a CPU it is faster at the paper preset's 32x32
        (README, Performance), but it changes what a seed draws (randn_like and dropout fill NHWC
        memory in order): CPU reruns of the stored rows, which were contiguous, would stop reproducing
        them bit for bit. So a CPU takes it when asked."""
        if self.layout == "auto":
            return device.type == "cuda"
        return self.layout == "channels_last"

    def uses_cuda_graphs(self, device: torch.device) -> bool:
        """Compiled in ``reduce-overhead`` mode on CUDA: the steps replay recorded CUDA graphs."""
        return self.compile and self.compile_mode == "reduce-overhead" and device.type == "cuda"


@dataclass
class History:
    steps: int = 0
    losses: list[float] = field(default_factory=list)  # mean loss per logging window
    wall_time_s: float = 0.0
    images_per_s: float = 0.0
    peak_memory_mb: float = 0.0
    resumed_from: int = 0  # the step a resumed run continued from (0: trained in one go)


LOG_WINDOW = 50  # steps per logged mean loss


# -- the loop ----------------------------------------------------------------------------------
@dataclass
class _Run:
    """One pretraining run's state: built by ``_start``, advanced by ``_step``, closed by ``_finish``."""

    method: Trainable
    budget: Budget
    options: TrainOptions
    modules: nn.ModuleDict
    params: list[nn.Parameter]  # every trained parameter, across the optimiser's groups
    images: Tensor
    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    sampler: BatchSampler
    rank: int
    world_size: int
    channels_last: bool
    bf16: bool
    cuda_graphs: bool  # compiled in reduce-overhead mode on CUDA: each step marks its start
    history: History = field(default_factory=History)
    start_step: int = 0
    elapsed: float = 0.0  # seconds trained before a resume
    # This log window's losses and terms, left on the device: reading them (a host-device sync, which
    # stalls a GPU) happens once per window and before a snapshot, not every step.
    window: list[tuple[Tensor, dict[str, Tensor]]] = field(default_factory=list)
    objective: nn.Module | None = None  # the loss as a module: DistributedDataParallel under torchrun


class _Objective(nn.Module):
    """The method's loss as a module's forward, so that DistributedDataParallel can wrap it: its one
    submodule is the method's ``modules``, which ``loss`` calls directly."""

    def __init__(self, method: Trainable):
        super().__init__()
        self.trained = method.modules
        self._method = (method,)  # a tuple, not an attribute nn.Module would register

    def forward(self, images: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        method = self._method[0]
        return method.loss(method.prepare(images))


def train(method: Trainable, data: ImageData, budget: Budget, options: TrainOptions = TrainOptions(),
          progress: bool = True, on_step: Callable[[int], None] | None = None,
          snapshot_path: Path | None = None, log: Callable[[str], None] | None = None) -> History:
    """Pretrain ``method`` for ``budget.iterations`` steps, resuming from ``snapshot_path`` if it holds one.

    Each step: the method's loss on a batch, backward, gradient clip, one optimiser step over the
    method's parameter groups (``Method.param_groups``), the scheduler, the encoder's EMA, then the
    method's own ``after_step`` (a momentum target's update, for BYOL-like methods).
    """
    run = _start(method, data, budget, options)
    _resume(run, snapshot_path, log)
    run.modules.train()
    started = time.perf_counter()
    bar = tqdm(range(run.start_step, budget.iterations), desc=f"pretrain {method.name}",
               disable=not progress or run.rank != 0, unit="step", dynamic_ncols=True, mininterval=1.0,
               initial=run.start_step, total=budget.iterations)
    for step in bar:
        _step(run, step)
        done = step + 1
        if len(run.window) == LOG_WINDOW or done == budget.iterations:
            _log_window(run, done, bar)
        if (snapshot_path is not None and options.checkpoint_every and done % options.checkpoint_every == 0
                and done < budget.iterations):
            _snapshot(run, done, snapshot_path, run.elapsed + time.perf_counter() - started)
        if on_step is not None:
            on_step(done)
    return _finish(run, time.perf_counter() - started)


def _start(method: Trainable, data: ImageData, budget: Budget, options: TrainOptions) -> _Run:
    """Modules on their device and layout (synchronised BatchNorm, rank 0's initialisation on every
    rank, compiled if asked), the optimiser over the method's groups, the warm-up schedule, the sampler."""
    rank, world_size = world()
    if budget.batch_size % world_size:
        raise TrainingSetupError(f"batch_size {budget.batch_size} is not divisible by the {world_size} "
                                 f"processes; choose a multiple of {world_size}")
    device = method.device
    modules = method.modules
    if world_size > 1 and device.type == "cuda":
        modules = nn.SyncBatchNorm.convert_sync_batchnorm(modules)  # BatchNorm over the global batch
        method.modules = modules
    if world_size > 1:
        if rank:  # rank 0 keeps the single-process stream; the others draw their own noise
            seed = torch.initial_seed() + rank
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)
    channels_last = options.resolved_channels_last(device)
    if channels_last:  # the EMA copy too: its per-step lerp is one fused kernel only when layouts match
        modules.to(memory_format=torch.channels_last)
        method.ema.module.to(memory_format=torch.channels_last)
    if options.compile:
        for module in modules.values():
            # A second fit in the same mode reuses the compiled module; another mode compiles anew.
            if getattr(module, COMPILED_MODE, None) != options.compile_mode:
                module.compile(mode=options.compile_mode)
                setattr(module, COMPILED_MODE, options.compile_mode)
    method.ema.decay = budget.ema_decay
    groups = method.param_groups()
    params = [p for group in groups for p in group["params"]]
    optimiser = torch.optim.Adam(groups, lr=budget.lr, fused=device.type == "cuda")
    warmup = max(budget.warmup, 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / warmup))
    images = data.images.to(device)
    objective = None
    if world_size > 1:  # rank 0's weights on every rank, then gradients averaged in the backward pass
        objective = DistributedDataParallel(
            _Objective(method), device_ids=[device] if device.type == "cuda" else None,
            find_unused_parameters=True,
            broadcast_buffers=False)  # each rank keeps its BatchNorm statistics (synchronised on CUDA)
    return _Run(method, budget, options, modules, params, images, optimiser, scheduler,
                BatchSampler(len(images), budget.batch_size, device), rank, world_size, channels_last,
                bf16=options.resolved_precision(device) == "bf16", cuda_graphs=options.uses_cuda_graphs(device),
                objective=objective)


def _resume(run: _Run, snapshot_path: Path | None, log: Callable[[str], None] | None) -> None:
    """Continue from the snapshot at ``snapshot_path``, if there is one: weights, optimiser, sampler, RNGs."""
    snapshot = _load_snapshot(snapshot_path)
    if snapshot is None:
        return
    if len(snapshot["rng"]) != run.world_size:
        raise TrainingSetupError(
            f"{snapshot_path} was written by {len(snapshot['rng'])} processes, this run has {run.world_size}; "
            f"rerun with {len(snapshot['rng'])} or delete the file to restart")
    run.start_step, run.elapsed = snapshot["step"], snapshot["elapsed_s"]
    run.window = [(torch.tensor(value, device=run.method.device), {}) for value in snapshot["window"]]
    run.modules.load_state_dict(snapshot["modules"])
    run.method.ema.module.load_state_dict(snapshot["ema"])
    run.optimiser.load_state_dict(snapshot["optimiser"])
    run.scheduler.load_state_dict(snapshot["scheduler"])
    run.sampler.load_state_dict(snapshot["sampler"])
    run.history.losses, run.history.resumed_from = snapshot["losses"], run.start_step
    set_rng_state(snapshot["rng"][run.rank])
    if log:
        log(f"{run.method.name}: resuming pretraining from step {run.start_step} of {run.budget.iterations} "
            f"({snapshot_path})")


def _step(run: _Run, step: int) -> None:
    """One optimisation step on this rank's slice of the next global batch."""
    method = run.method
    if run.cuda_graphs:
        # A new iteration: the graphs' outputs of the last step (all consumed by now) may be overwritten.
        torch.compiler.cudagraph_mark_step_begin()
    rows = run.sampler.next()
    if run.world_size > 1:  # this rank's slice of the global batch
        rows = rows.chunk(run.world_size)[run.rank]
    batch = run.images[rows]
    if run.channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    with torch.autocast(method.device.type, dtype=torch.bfloat16, enabled=run.bf16):
        loss, terms = run.objective(batch) if run.objective is not None else method.loss(method.prepare(batch))
    reported = loss.detach()
    if run.world_size > 1:  # the global batch's loss; every rank sees the same value (and stops together)
        reported = reported.clone()
        dist.all_reduce(reported)
        reported /= run.world_size
    run.optimiser.zero_grad(set_to_none=True)
    loss.backward()  # under DDP, also the gradient average over ranks
    nn.utils.clip_grad_norm_(run.params, run.budget.grad_clip)
    run.optimiser.step()
    run.scheduler.step()
    method.ema.update(run.modules["encoder"], step=step)
    method.after_step(step)
    run.window.append((reported, terms))


def _log_window(run: _Run, done: int, bar: tqdm) -> None:
    values = _checked_losses(run.method.name, run.window, done)
    run.history.losses.append(sum(values) / len(values))
    bar.set_postfix(loss=f"{run.history.losses[-1]:.4g}")
    run.window = []


def _snapshot(run: _Run, done: int, path: Path, elapsed_s: float) -> None:
    """Everything a rerun needs to continue from step ``done`` bit for bit (written by rank 0)."""
    saved_window = _checked_losses(run.method.name, run.window, done)  # never snapshot diverged weights
    rngs = [rng_state()]
    if run.world_size > 1:
        rngs = [None] * run.world_size
        dist.all_gather_object(rngs, rng_state())
    if run.rank == 0:
        _save_snapshot(path, {
            "format": SNAPSHOT_FORMAT, "step": done, "elapsed_s": elapsed_s, "window": saved_window,
            "losses": run.history.losses, "modules": run.modules.state_dict(),
            "ema": run.method.ema.module.state_dict(), "optimiser": run.optimiser.state_dict(),
            "scheduler": run.scheduler.state_dict(), "sampler": run.sampler.state_dict(), "rng": rngs,
        })
    barrier()


def _finish(run: _Run, trained_s: float) -> History:
    """The history (throughput of the steps this process ran), modules back to eval and contiguous."""
    history, budget = run.history, run.budget
    history.steps = budget.iterations
    history.wall_time_s = run.elapsed + trained_s
    history.images_per_s = budget.batch_size * (budget.iterations - run.start_step) / max(trained_s, 1e-9)
    device = run.method.device
    if device.type == "cuda":
        history.peak_memory_mb = torch.cuda.max_memory_allocated(device) / 2**20
    if run.channels_last:
        run.modules.to(memory_format=torch.contiguous_format)
        run.method.ema.module.to(memory_format=torch.contiguous_format)
    run.modules.eval()
    return history


def history_from_dict(saved: dict[str, Any]) -> History:
    """A History from a checkpoint, including ones written before fields were added."""
    names = set(History.__dataclass_fields__)
    return History(**{k: v for k, v in saved.items() if k in names})


# -- pieces ------------------------------------------------------------------------------------
class BatchSampler:
    """Epochs of a random permutation, cut into batches (the last partial batch is dropped)."""

    def __init__(self, n: int, batch_size: int, device: torch.device):
        batch_size = min(batch_size, n)
        self.n, self.batch_size, self.device = n, batch_size, device
        self.per_epoch = max(n // batch_size, 1)
        self._perm: Tensor | None = None
        self._i = math.inf

    def next(self) -> Tensor:
        if self._i >= self.per_epoch:
            self._perm, self._i = torch.randperm(self.n, device=self.device), 0
            if world()[1] > 1:  # one global batch: every rank uses rank 0's permutation
                dist.broadcast(self._perm, src=0)
        batch = self._perm[self._i * self.batch_size:(self._i + 1) * self.batch_size]
        self._i += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"perm": None if self._perm is None else self._perm.cpu(), "i": self._i}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        perm = state["perm"]
        self._perm = None if perm is None else perm.to(self.device)
        self._i = state["i"]


def rng_state() -> dict[str, Any]:
    """Every generator a method or the loop draws from, as tensors and plain values (weights-only loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])


def _checked_losses(name: str, window: list[tuple[Tensor, dict[str, Tensor]]], done: int) -> list[float]:
    """The window's losses as floats (one device sync); a non-finite one stops the run, naming its step.

    The steps after a divergence (at most a window's worth) are never logged or snapshot.
    """
    if not window:
        return []
    values = torch.stack([loss.float() for loss, _ in window]).tolist()
    for i, value in enumerate(values):
        if not math.isfinite(value):
            terms = {k: round(float(v), 6) for k, v in window[i][1].items()}
            raise FloatingPointError(f"{name}: non-finite loss {value} at step {done - len(window) + i}; "
                                     f"loss terms {terms}; lower lr or check the data")
    return values


def _save_snapshot(path: Path, payload: dict[str, Any]) -> None:
    save_verified(payload, path)


def _load_snapshot(path: Path | None) -> dict[str, Any] | None:
    """The snapshot at ``path``; None if absent, or corrupt (moved aside with a warning: start over)."""
    if path is None:
        return None
    snapshot = load_or_set_aside(path, "pretraining snapshot", "pretraining from step 0")
    if snapshot is None or snapshot.get("format") != SNAPSHOT_FORMAT:
        return None
    return snapshot
