"""Semi-supervised classification: LaplaceNet (Sellars, Aviles-Rivero, Schonlieb
2021) with its feature extractor initialised from the method's encoder, as the
DRL paper's Table 1 uses it.

The classifier is a *copy* of the method's EMA encoder (WRN-28-2 at the paper
preset) plus a Linear layer on its code; the evaluated checkpoint is never
touched. For a time-conditioned encoder, t is one learnable scalar
``sigmoid(p)``, initialised at ``t_init`` (0.5), optionally chosen first by the
paper's training-loss scan over 11 values of t. The method ``none`` (random
initialisation, no time path) is LaplaceNet's own baseline.

Loop: supervised warm-up epochs on the labelled images, then rounds of
(1) codes of every pool image in eval mode, (2) pseudo-labels by label
spreading on their cosine k-NN graph (``protocols.label_spreading``), (3) one
epoch over the pseudo-labelled images, each batch joined by labelled images
(weak augmentation for labelled, strong for pseudo-labelled,
``protocols.augment``), optionally mixed up (timm's Mixup), ``aug_num``
augmented copies per image. SGD with Nesterov momentum and a per-step cosine
schedule (timm). The test split is scored once, with the final model.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.scheduler import CosineLRScheduler
from torch import Tensor, nn
from tqdm.auto import tqdm

from core.data import DataSplits
from core.presets import per_size
from core.records import Record
from core.seeding import seed_everything
from core.validation import Checked, Choice, Integers, Interval, Items, Positive, setting, violation
from methods.base import Method
from protocols.augment import SEMISUP_AUGMENT_BACKENDS, SEMISUP_AUGMENTERS
from protocols.base import Encoded, register_protocol
from protocols.label_spreading import pseudo_labels
from protocols.labels import REFERENCE_TRAIN_SIZE, save_subset

# A dataset without published label counts (its registration's semisup_labels) gets CIFAR-10's
# fractions of its 50000 training images, in whole images per class.
REFERENCE_LADDER = (100, 500, 1000, 2000, 4000)
T_SCAN = tuple(float(t) for t in np.linspace(0.001, 1.0, 11))  # the paper's scan (Appendix G)
EVAL_BATCH = 512


@dataclass(frozen=True)
class SemisupConfig(Checked):
    # The paper's "--set init=..." is --method here: the stored method column is the initialisation.
    SETTING_HINTS: ClassVar[dict[str, str]] = {
        "init": "the semisup initialisation is the method itself; run --method NAME --protocol semisup "
                "(none: a random initialisation)"}

    # empty: the dataset's ladder (the papers' counts where they report it, else proportional)
    semisup_labels: tuple[int, ...] = setting((), Items(Integers(1), note="empty: the dataset's ladder"))
    mixup: bool = False                    # the DRL paper's Table 1 is without mixup
    mixup_alpha: float = setting(1.0, Positive())
    # paper: LaplaceNet as the DRL paper ran it (Appendix G), 100 supervised warm-up epochs, 260
    # rounds, LaplaceNet's batch of 100 with 16 labelled, 3 augmented copies, the whole training
    # split; quick: cut to CPU minutes, 30 warm-up epochs, 15 rounds, one augmented copy, and on
    # MNIST a pool of 10000 training images (labelled ones included) rather than 54000.
    semisup_warmup_epochs: int = setting(100, Integers(0), smoke=10, quick=30, paper=100)
    semisup_rounds: int = setting(260, Integers(1), smoke=3, quick=15, paper=260)
    semisup_lr: float = setting(0.03, Positive())
    semisup_momentum: float = 0.9
    semisup_weight_decay: float = 5e-4
    # images per step, labelled included
    semisup_batch_size: int = setting(100, Integers(1), smoke=32, quick=64, paper=100)
    # labelled images in each step of a round
    semisup_labelled_batch: int = setting(16, Integers(1), smoke=8, quick=16, paper=16)
    # augmented copies of every image per step
    semisup_aug_num: int = setting(3, Integers(1), smoke=1, quick=1, paper=3)
    semisup_k: int = setting(50, Integers(1), smoke=10)
    semisup_alpha: float = setting(0.99, Interval(0.0, 1.0, closed="neither"))
    semisup_cg_iterations: int = setting(30, Integers(1))
    semisup_cg_tol: float = setting(1e-3, Positive())
    semisup_align_iterations: int = setting(100, Integers(0), smoke=10)
    # else the pool size (CPU budgets)
    semisup_train_images: int = setting(0, Integers(0, note="0: the whole training split"),
                                        quick=per_size(tiny=0, other=10_000), paper=0)
    learn_t: bool = True
    t_init: float = setting(0.5, Interval(0.0, 1.0, closed="neither"))  # t = sigmoid(p)
    t_scan: bool = False                   # choose the starting t by the training-loss scan
    # t's learning rate relative to the weights' (its gradient is small)
    t_lr_scale: float = setting(1.0, Positive())
    # batched: on the run's device
    semisup_augment_backend: str = setting("torchvision", Choice(SEMISUP_AUGMENT_BACKENDS))

    def __post_init__(self):
        super().__post_init__()
        if not self.semisup_labelled_batch < self.semisup_batch_size:  # a check of two fields
            raise violation("semisup_labelled_batch", self.semisup_labelled_batch,
                            f"integers < semisup_batch_size ({self.semisup_batch_size})")


# -- label splits ----------------------------------------------------------------------


def semisup_ladder(published: tuple[int, ...], n_train: int, n_classes: int,
                   counts: tuple[int, ...] = ()) -> tuple[int, ...]:
    """``counts`` if given; the papers' ladder for the dataset (``published``); else CIFAR-10's, in proportion."""
    if counts:
        return counts
    if published:
        return published
    per_class = {max(1, round(k * n_train / REFERENCE_TRAIN_SIZE / n_classes)) for k in REFERENCE_LADDER}
    return tuple(p * n_classes for p in sorted(per_class))


def balanced_subset(labels: Tensor, n: int, seed: int) -> Tensor:
    """``n / classes`` indices of every class, drawn from (labels, n, seed) alone: shared by every init."""
    n_classes = int(labels.max()) + 1
    per_class, rest = divmod(n, n_classes)
    sizes = torch.bincount(labels, minlength=n_classes)
    if rest or per_class < 1 or per_class > int(sizes.min()):
        raise ValueError(f"cannot draw a balanced set of {n} labels from {n_classes} classes with "
                         f"{int(sizes.min())} to {int(sizes.max())} images each; valid: multiples of "
                         f"{n_classes} up to {n_classes * int(sizes.min())}")
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(labels.numpy() == c), per_class, replace=False) for c in range(n_classes)]
    return torch.from_numpy(np.sort(np.concatenate(picked)))


def training_pool(n_train: int, labelled: Tensor, size: int, seed: int) -> Tensor:
    """The labelled images plus random others, ``size`` in all (0 or >= n_train: every image)."""
    if size == 0 or size >= n_train:
        return torch.arange(n_train)
    if size < len(labelled):
        raise ValueError(f"semisup_train_images={size} is smaller than the {len(labelled)} labelled images")
    others = np.setdiff1d(np.arange(n_train), labelled.numpy())
    extra = np.random.default_rng(seed + 1).choice(others, size - len(labelled), replace=False)
    return torch.from_numpy(np.sort(np.concatenate([labelled.numpy(), extra])))


# -- the classifier ----------------------------------------------------------------------


class SemisupClassifier(nn.Module):
    """A trainable copy of the method's encoder at a learnable t, and a Linear layer on its code."""

    def __init__(self, method: Method, num_classes: int, t_init: float = 0.5, learn_t: bool = True):
        super().__init__()
        self.encoder = copy.deepcopy(method.ema.module).train()
        for p in self.encoder.parameters():
            p.requires_grad_(True)
        self._codes = method.codes  # the method's own reading of its encoder (noise level of t, mean code...)
        self.time_conditioned = method.time_conditioned
        logit = torch.logit(torch.tensor(float(t_init)))
        self.t_logit = nn.Parameter(logit, requires_grad=learn_t and method.time_conditioned)
        self.head = nn.Linear(method.cfg.latent_dim, num_classes)

    @property
    def t(self) -> float | None:
        return float(torch.sigmoid(self.t_logit.detach())) if self.time_conditioned else None

    def set_t(self, t: float) -> None:
        t = min(max(t, 1e-4), 1.0 - 1e-4)  # sigmoid reaches neither 0 nor 1: the scan's t = 1 is 0.9999
        with torch.no_grad():
            self.t_logit.fill_(math.log(t / (1.0 - t)))

    def features(self, x: Tensor) -> Tensor:
        """Normalised images -> the code the graph is built on (the 128-d pooled vector in WRN-28-2)."""
        t = torch.sigmoid(self.t_logit).expand(x.shape[0])
        return self._codes(self.encoder, x, t)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


# -- the loop ------------------------------------------------------------------------------


@dataclass
class SemisupResult:
    test_accuracy: float
    val_accuracy: float
    warmup_test_accuracy: float
    pseudo_label_accuracy: list[float]  # per round, on the pool's unlabelled images
    t_start: float | None
    t_final: float | None


class LaplaceNet:
    """One semi-supervised training of a classifier initialised from ``method``."""

    def __init__(self, method: Method, data: DataSplits, cfg: SemisupConfig, labelled: Tensor, pool: Tensor,
                 device: torch.device, progress: bool = False):
        self.method, self.data, self.cfg, self.device, self.progress = method, data, cfg, device, progress
        c, h, _ = data.image_shape
        self.augment = SEMISUP_AUGMENTERS[cfg.semisup_augment_backend](h, hflip=c == 3)  # flips: natural images only
        # Fixed for the whole run: the labelled images, the pool, and where the labelled ones sit in it.
        self.labelled_data, self.pool_data = data.train.subset(labelled), data.train.subset(pool)
        in_pool = torch.isin(pool, labelled)
        self.labelled_rows, self.unlabelled_rows = torch.nonzero(in_pool).flatten(), torch.nonzero(~in_pool).flatten()
        # The training images sit where the augmenter reads them, copied there once (the batched one runs on
        # the run's device, as pretraining keeps its training set there): a step copies no images or labels.
        self.images_device = device if self.augment.runs_on_device else torch.device("cpu")
        self.labelled_images = self.labelled_data.images.to(self.images_device)
        self.labelled_labels = self.labelled_data.labels.to(self.images_device)
        self.pool_images = self.pool_data.images.to(self.images_device)
        self.model = SemisupClassifier(method, data.num_classes, cfg.t_init, cfg.learn_t).to(device)
        self.mixup = (Mixup(mixup_alpha=cfg.mixup_alpha, cutmix_alpha=0.0, label_smoothing=0.0,
                            num_classes=data.num_classes, mode="batch") if cfg.mixup else None)
        self.soft_ce = SoftTargetCrossEntropy()
        decay = [p for n, p in self.model.named_parameters() if n != "t_logit"]
        self.optimiser = torch.optim.SGD(
            [{"params": decay, "weight_decay": cfg.semisup_weight_decay},
             {"params": [self.model.t_logit], "weight_decay": 0.0,  # t is a setting, not a weight
              "lr": cfg.semisup_lr * cfg.t_lr_scale}],
            lr=cfg.semisup_lr, momentum=cfg.semisup_momentum, nesterov=True)
        warmup_steps = cfg.semisup_warmup_epochs * self._steps(len(labelled), cfg.semisup_batch_size)
        unlabelled_batch = cfg.semisup_batch_size - cfg.semisup_labelled_batch
        round_steps = cfg.semisup_rounds * self._steps(len(pool) - len(labelled), unlabelled_batch)
        self.total_steps = max(warmup_steps + round_steps, 1)
        self.scheduler = CosineLRScheduler(self.optimiser, t_initial=self.total_steps, lr_min=0.0,
                                           t_in_epochs=False)
        self.step = 0
        self.first_non_finite_step = torch.tensor(-1, device=device)

    @staticmethod
    def _steps(n: int, batch: int) -> int:
        return max(math.ceil(n / batch), 1)

    # -- pieces --------------------------------------------------------------------------
    def _train_step(self, images: Tensor, labels: Tensor, strong: Tensor) -> None:
        """One SGD step on ``aug_num`` augmented copies of the batch (``strong``, on the host, marks the
        pseudo-labelled rows). Images and labels are read on ``images_device``: on the batched backend a step
        sends the GPU only its indices and draws, without waiting for it."""
        copies = self.cfg.semisup_aug_num
        x = self.method.normalise(self.augment.views(images, strong, copies))
        y = labels.repeat(copies).to(self.device, non_blocking=True)
        if self.mixup is not None and len(x) >= 2:
            x, y = x[: len(x) // 2 * 2], y[: len(y) // 2 * 2]  # timm's batch mixup pairs the batch with its flip
            x, soft = self.mixup(x, y)
        else:
            soft = nn.functional.one_hot(y, self.data.num_classes).float()
        self.model.train()
        loss = self.soft_ce(self.model(x), soft)
        # Noted on the device and read once per epoch (_stop_if_diverged): a per-step read stalls a GPU.
        diverged = ~torch.isfinite(loss.detach()) & (self.first_non_finite_step < 0)
        self.first_non_finite_step = torch.where(diverged, self.step, self.first_non_finite_step)
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        self.step += 1
        self.scheduler.step_update(self.step)

    def _stop_if_diverged(self) -> None:
        step = int(self.first_non_finite_step)
        if step >= 0:
            raise FloatingPointError(f"semisup ({self.method.name}): non-finite loss at step {step}; "
                                     f"lower semisup_lr or check the data")

    @torch.no_grad()
    def _eval_outputs(self, images: Tensor, features: bool = False) -> Tensor:
        self.model.eval()
        out = []
        for start in range(0, len(images), EVAL_BATCH):
            x = self.method.normalise(images[start:start + EVAL_BATCH])
            out.append((self.model.features(x) if features else self.model(x)).float().cpu())
        return torch.cat(out)

    def accuracy(self, split: str) -> float:
        part = self.data.split(split)
        return float((self._eval_outputs(part.images).argmax(1) == part.labels).float().mean())

    def _labelled_loss(self) -> float:
        logits = self._eval_outputs(self.labelled_data.images)
        return float(nn.functional.cross_entropy(logits, self.labelled_data.labels))

    def scan_t(self) -> float:
        """The paper's scan: the labelled training loss at 11 values of t; start from the lowest."""
        losses = []
        for t in T_SCAN:
            self.model.set_t(t)
            losses.append(self._labelled_loss())
        best = T_SCAN[int(np.argmin(losses))]
        self.model.set_t(best)
        return best

    def warmup_epoch(self) -> None:
        images, labels = self.labelled_images, self.labelled_labels
        order = torch.randperm(len(images)).to(self.images_device, non_blocking=True)
        for start in range(0, len(order), self.cfg.semisup_batch_size):
            batch = order[start:start + self.cfg.semisup_batch_size]
            self._train_step(images[batch], labels[batch], torch.zeros(len(batch), dtype=torch.bool))
        self._stop_if_diverged()

    def assign_pseudo_labels(self) -> tuple[Tensor, float]:
        """Pseudo-labels of the pool (labelled rows keep theirs) and their accuracy on the unlabelled rows."""
        codes = self._eval_outputs(self.pool_images, features=True).to(self.device)
        true, rows, cfg = self.pool_data.labels, self.labelled_rows, self.cfg
        labels = pseudo_labels(codes, rows, true[rows], self.data.num_classes, k=cfg.semisup_k,
                               alpha=cfg.semisup_alpha, cg_iterations=cfg.semisup_cg_iterations,
                               cg_tol=cfg.semisup_cg_tol, align_iterations=cfg.semisup_align_iterations)
        hidden = self.unlabelled_rows  # their true labels are measured against, never trained on
        accuracy = float((labels[hidden] == true[hidden]).float().mean()) if len(hidden) else 1.0
        return labels, accuracy

    def round_epoch(self, labels: Tensor) -> None:
        """One pass over the pool's pseudo-labelled images, each batch joined by labelled ones."""
        cfg, images, unlabelled = self.cfg, self.pool_images, self.unlabelled_rows
        labels = labels.to(self.images_device, non_blocking=True)
        per_step = cfg.semisup_batch_size - cfg.semisup_labelled_batch
        order = unlabelled[torch.randperm(len(unlabelled))]
        cycle = _Cycle(self.labelled_rows)
        for start in range(0, max(len(order), 1), per_step):
            pseudo = order[start:start + per_step]
            known = cycle.take(cfg.semisup_labelled_batch)
            batch = torch.cat([known, pseudo]).to(self.images_device, non_blocking=True)
            strong = torch.cat([torch.zeros(len(known), dtype=torch.bool), torch.ones(len(pseudo), dtype=torch.bool)])
            self._train_step(images[batch], labels[batch], strong)
        self._stop_if_diverged()

    def fit(self) -> SemisupResult:
        cfg = self.cfg
        bar = tqdm(total=cfg.semisup_warmup_epochs + cfg.semisup_rounds, desc=f"semisup {self.method.name}",
                   disable=not self.progress, unit="epoch", dynamic_ncols=True, mininterval=1.0)
        for _ in range(cfg.semisup_warmup_epochs):
            self.warmup_epoch()
            bar.update()
        warmup_accuracy = self.accuracy("test")
        t_start = self.scan_t() if cfg.t_scan and self.model.time_conditioned else self.model.t
        pseudo_accuracy = []
        for _ in range(cfg.semisup_rounds):
            labels, accuracy = self.assign_pseudo_labels()
            pseudo_accuracy.append(accuracy)
            self.round_epoch(labels)
            bar.update()
            bar.set_postfix(pseudo=f"{accuracy:.3f}", t="-" if self.model.t is None else f"{self.model.t:.3f}")
        bar.close()
        return SemisupResult(self.accuracy("test"), self.accuracy("val"), warmup_accuracy, pseudo_accuracy,
                             t_start, self.model.t)


class _Cycle:
    """Endless shuffled passes over ``items``: LaplaceNet's labelled share of every batch."""

    def __init__(self, items: Tensor):
        self.items, self.queue = items, items[:0]

    def take(self, n: int) -> Tensor:
        while len(self.queue) < n:
            self.queue = torch.cat([self.queue, self.items[torch.randperm(len(self.items))]])
        out, self.queue = self.queue[:n], self.queue[n:]
        return out


# -- the protocol ------------------------------------------------------------------------


@register_protocol
class Semisup:
    name = "semisup"
    config_cls = SemisupConfig
    fine_tunes = True  # trains a copy of the encoder: reads images, not cached codes

    def feature_times(self, cfg: SemisupConfig) -> tuple[float, ...]:
        return ()
    metrics = ("accuracy", "warmup_accuracy", "val_accuracy", "pseudo_label_accuracy", "t_final")
    test_metrics = ("accuracy", "warmup_accuracy")
    summary = {"title": "Table 1: test accuracy by label count, initialisation and mixup",
               "row": "labels", "columns": ("method", "head"), "metrics": ("accuracy", "t_final"),
               "hide": ("mixup", "semisup_labels")}  # the head and the row say these
    notes = """
LaplaceNet (Sellars et al. 2021) with its feature extractor initialised from the
method's encoder, as in the DRL paper's Table 1: rows are label counts, columns
the initialisation (the method; `none` is a random initialisation, LaplaceNet's
own baseline) with and without mixup (`--set mixup=true`). The classifier is a
copy of the method's encoder (WRN-28-2 at the `paper` preset; the quick preset's
small residual CNN on digits and MNIST) plus a Linear layer on its code. A
time-conditioned encoder reads one learnable t = sigmoid(p), initialised at
0.5 (`t_init`), or at the lowest labelled training loss among 11 values of t
after the warm-up (`--set t_scan=true`, the paper's Appendix G); `t_final` is
where it ends.

Loop: `semisup_warmup_epochs` supervised epochs on the labelled images; then
`semisup_rounds` rounds of: codes of every pool image (eval mode, no
augmentation); exact cosine k-NN graph (k = 50, self excluded, negative
similarities clipped to 0, symmetrised by element-wise max,
D^-1/2 W D^-1/2); label spreading (I - 0.99 W) Z = Y by conjugate gradient (30
iterations, tolerance 1e-3, scipy); clip at 0, row-normalise, labelled rows
reset; distribution alignment (100 steps, each clipped to [0.99, 1.01]); hard
pseudo-labels; one epoch over the pseudo-labelled images with
`semisup_labelled_batch` labelled images in every batch of `semisup_batch_size`
(weak augmentation: flip for colour images, reflect-padded crop, RandAugment 1
op, Cutout; strong: RandAugment 2 ops; per image on the CPU with torchvision,
or with `--set semisup_augment_backend=batched` the same per-image draws
applied a batch at a time on the run's device, for GPUs), `semisup_aug_num`
augmented copies, timm's batch Mixup (one lambda, the batch paired with its
reverse) when on. SGD, Nesterov momentum 0.9, weight decay 5e-4 (not on t), lr
0.03 with a per-step cosine decay (timm). LaplaceNet's command-line defaults:
batch 100 with 16 labelled, k = 50, mixup alpha 1; `aug_num` 3 as in its paper.

The labelled images are balanced (the same count per class), drawn from the
run's seed alone and saved under `results/artifacts/splits/`, so every
initialisation of a seed sees the same labels (paired comparisons); LaplaceNet's
20 fixed CIFAR splits cannot be mapped onto the JPEG CIFAR-10 used here. Label
counts: CIFAR-10 100/500/1000/2000/4000, CIFAR-100 1000/4000/10000/20000,
Mini-ImageNet 4000/10000, other datasets CIFAR-10's fractions of 50000 images.
`pseudo_label_accuracy` is measured against the hidden labels of the pool's
unlabelled training images (the last round's; every round's in the row's
`per_round`); `warmup_accuracy` is the test accuracy after the supervised
warm-up alone. The test split is scored once, with the final model; no
checkpoint is chosen. The quick preset trains far less than the paper: 30
warm-up epochs, 15 rounds, batches of 64 with 16 labelled, one augmented copy,
and on MNIST a pool of 10000 training images (labelled ones included). The
`paper` preset holds Table 1's settings: 100 warm-up epochs, 260 rounds,
WRN-28-2, the whole training split.
"""

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {"semisup_lr": trial.suggest_float("semisup_lr", 0.01, 0.1, log=True)}

    def check_data(self, data: DataSplits, cfg: SemisupConfig) -> None:
        labels = data.train.labels
        for n in semisup_ladder(data.semisup_labels, len(labels), data.num_classes, cfg.semisup_labels):
            training_pool(len(labels), balanced_subset(labels, n, seed=0), cfg.semisup_train_images, seed=0)

    def run(self, encoded: Encoded, cfg: SemisupConfig) -> list[Record]:
        data, seed = encoded.data, encoded.seed
        train_labels = data.train.labels
        head = "mixup" if cfg.mixup else "no mixup"
        records: list[Record] = []
        for n in semisup_ladder(data.semisup_labels, len(train_labels), data.num_classes, cfg.semisup_labels):
            labelled = balanced_subset(train_labels, n, seed)
            name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{data.name}-semisup-{n}-seed{seed}")
            split = save_subset(labelled, encoded.artifacts, name)
            pool = training_pool(len(train_labels), labelled, cfg.semisup_train_images, seed)
            seed_everything(seed)
            result = LaplaceNet(encoded.method, data, cfg, labelled, pool, encoded.device, encoded.progress).fit()
            common = {**split, "pool": len(pool), "rounds": cfg.semisup_rounds}
            t_info = {} if result.t_final is None else {"t_start": result.t_start, "t_final": result.t_final}
            records += [
                Record("accuracy", result.test_accuracy, labels=n, head=head, extra={**common, **t_info}),
                Record("warmup_accuracy", result.warmup_test_accuracy, labels=n, head=head, extra=common),
                Record("val_accuracy", result.val_accuracy, labels=n, head=head, extra=common),
                Record("pseudo_label_accuracy", result.pseudo_label_accuracy[-1], labels=n, head=head,
                       extra={**common, "per_round": [round(a, 6) for a in result.pseudo_label_accuracy]}),
            ]
            if result.t_final is not None:
                records.append(Record("t_final", result.t_final, labels=n, head=head, extra={**common, **t_info}))
        return records
