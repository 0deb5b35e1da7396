"""LaplaceNet's loop: supervised warm-up, then rounds of label spreading and one pseudo-labelled epoch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from timm.scheduler import CosineLRScheduler
from torch import Tensor, nn
from tqdm.auto import tqdm

from core.data import DataSplits
from methods.base import Method
from protocols.augment import SEMISUP_AUGMENTERS
from protocols.label_spreading import pseudo_labels
from protocols.semisup.config import SemisupConfig
from protocols.semisup.model import SemisupClassifier

T_SCAN = tuple(float(t) for t in np.linspace(0.001, 1.0, 11))  # the paper's scan (Appendix G)
EVAL_BATCH = 512


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
             {"params": [self.model.t_logit],  # t is a setting, not a weight, unless asked as the reference
              "weight_decay": cfg.semisup_weight_decay if cfg.t_weight_decay else 0.0,
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
