"""Trajectory heads: classify from K codes along t instead of one (the follow-up paper).

For each K in ``trajectory_points``, the K codes E(x, t) at t evenly spaced on
[0, 1] (K = 1: t = 0.5) are fed, ordered by t, to each head of
``trajectory_heads``: ``mlp`` (the concatenated codes), ``gru``,
``transformer``, and ``mlp-best-t``, the best *single* point among the K
(one MLP per point, the point chosen on validation): the baseline a
trajectory head has to beat on the same grid. Every head's learning rate and
epoch are chosen on the validation split; test is scored once.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from core.data import DataSplits
from core.presets import per_size
from core.records import Record
from core.validation import Checked, Choice, Integers, Items, Positive, setting, violation
from protocols.base import Encoded, register_protocol
from protocols.batched import (
    FOLLOW_UP_LRS,
    at_grid_end,
    fit_select_score,
    one_standard_error_choice,
    standardise,
)
from protocols.labels import check_label_counts, save_subset, stratified_subset
from protocols.sequence_heads import SEQUENCE_HEADS, ConcatMLP, GRUHead, TransformerHead

HEADS = (*SEQUENCE_HEADS, "mlp-best-t")
POINTS = (1, 2, 3, 6, 11, 21)


def trajectory_times(points: int) -> tuple[float, ...]:
    """K evenly spaced times on [0, 1], both ends included; the midpoint for K = 1."""
    if points == 1:
        return (0.5,)
    return tuple(round(i / (points - 1), 6) for i in range(points))


@dataclass(frozen=True)
class SequenceHeadConfig(Checked):
    """How the trajectory heads are trained (shared by ``trajectory`` and ``attention``)."""

    # quick: three learning rates, so a choice at an end of the grid means something, and early
    # stopping, so a head still improving at the limit is rare (with two rates and 30 epochs on
    # digits every choice sat at an end); paper: the follow-up's heads, width 256, 100 epochs, the
    # probe's learning-rate grid.
    trajectory_lrs: tuple[float, ...] = setting(FOLLOW_UP_LRS, Items(Positive(), nonempty=True), smoke=(1e-2,),
                                                quick=(1e-3, 3e-3, 1e-2), paper=FOLLOW_UP_LRS)
    trajectory_epochs: int = setting(100, Integers(1), smoke=5, quick=per_size(tiny=60, other=20), paper=100)
    # epochs without a validation improvement before a head stops
    trajectory_patience: int = setting(0, Integers(0, note="0: never"), quick=per_size(tiny=10, other=4))
    trajectory_batch_size: int = setting(256, Integers(1), smoke=64, quick=256, paper=256)
    # GRU state and Transformer width; the MLPs' hidden layer is twice this
    trajectory_width: int = setting(256, Integers(1), smoke=8, quick=64, paper=256)
    trajectory_dropout: float = 0.25
    trajectory_weight_decay: float = 1e-5
    # labelled training images the heads learn from; the heads cost O(K) per image, so on a CPU
    # quick has them learn from 10000 at most
    trajectory_train_images: int = setting(0, Integers(0, note="0: all"), quick=per_size(tiny=0, other=10_000))
    transformer_layers: int = setting(2, Integers(1))
    transformer_heads: int = setting(4, Integers(1), smoke=2)
    transformer_shared: bool = True  # one block applied transformer_layers times, as in the follow-up's code

    def __post_init__(self):
        super().__post_init__()
        if self.trajectory_width % self.transformer_heads:  # a check of two fields
            raise violation("trajectory_width", self.trajectory_width,
                            f"multiples of transformer_heads ({self.transformer_heads})")


@dataclass(frozen=True)
class TrajectoryConfig(SequenceHeadConfig):
    trajectory_points: tuple[int, ...] = setting(POINTS, Items(Integers(1), nonempty=True), smoke=(1, 2, 3))
    trajectory_heads: tuple[str, ...] = setting(HEADS, Items(Choice(HEADS), nonempty=True))


@dataclass
class FittedHead:
    """A head chosen on validation (learning rate and epoch) and its one test score."""

    module: nn.Module
    lr: float
    epoch: int
    val_accuracy: float
    test_accuracy: float
    at_edge: bool = False  # the lr at an end of its grid, or the best epoch the last one


def make_head(head: str, points: int, in_dim: int, n_classes: int, cfg: SequenceHeadConfig) -> nn.Module:
    width, dropout = cfg.trajectory_width, cfg.trajectory_dropout
    if head == "mlp":
        return ConcatMLP(points, in_dim, n_classes, 2 * width, dropout)
    if head == "gru":
        return GRUHead(in_dim, n_classes, width, dropout)
    if head == "transformer":
        return TransformerHead(in_dim, n_classes, width, dropout, cfg.transformer_layers,
                               cfg.transformer_heads, cfg.transformer_shared)
    raise ValueError(f"unknown sequence head {head!r}; valid: {', '.join(SEQUENCE_HEADS)}")


def fit_select_head(build: Callable[[], nn.Module], ts: Tensor, train: tuple[Tensor, Tensor],
                    val: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], cfg: SequenceHeadConfig,
                    seed: int, desc: str = "head", progress: bool = False) -> FittedHead:
    """Train one head per learning rate on (N, K, d) codes; keep each at its best validation epoch;
    choose the lr on validation (the probe's one-standard-error rule), score test once."""
    fitted = []
    for lr in cfg.trajectory_lrs:
        with torch.random.fork_rng(devices=[]):  # same initialisation and dropout draws for every lr
            torch.manual_seed(seed)
            fitted.append(_fit_one(build(), lr, ts, train, val, cfg, seed, f"{desc} lr={lr:g}", progress))
    i = int(one_standard_error_choice(torch.tensor([[f.val_accuracy] for f in fitted]), len(val[1]))[0])
    best = fitted[i]
    best.at_edge = at_grid_end(i, len(fitted)) or best.epoch == cfg.trajectory_epochs
    best.test_accuracy = accuracy(best.module, *test, ts, cfg.trajectory_batch_size * 8)
    return best


def _fit_one(head: nn.Module, lr: float, ts: Tensor, train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
             cfg: SequenceHeadConfig, seed: int, desc: str, progress: bool) -> FittedHead:
    (x_tr, y_tr), (x_va, y_va) = train, val
    head = head.to(x_tr.device)
    optimiser = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=cfg.trajectory_weight_decay)
    gen = torch.Generator().manual_seed(seed)
    best_acc, best_epoch, best_state = -1.0, 0, copy.deepcopy(head.state_dict())
    for epoch in tqdm(range(1, cfg.trajectory_epochs + 1), desc=desc, disable=not progress, unit="epoch",
                      dynamic_ncols=True, mininterval=1.0):
        head.train()
        order = torch.randperm(len(y_tr), generator=gen).to(x_tr.device)
        for start in range(0, len(order), cfg.trajectory_batch_size):
            idx = order[start:start + cfg.trajectory_batch_size]
            loss = F.cross_entropy(head(x_tr[idx], ts), y_tr[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        acc = accuracy(head, x_va, y_va, ts, cfg.trajectory_batch_size * 8)
        if acc > best_acc:
            best_acc, best_epoch, best_state = acc, epoch, copy.deepcopy(head.state_dict())
        elif cfg.trajectory_patience and epoch - best_epoch >= cfg.trajectory_patience:
            break  # validation has stalled: later epochs would not be chosen
    head.load_state_dict(best_state)
    return FittedHead(head.eval(), lr, best_epoch, best_acc, float("nan"))


@torch.no_grad()
def accuracy(head: nn.Module, x: Tensor, y: Tensor, ts: Tensor, chunk: int) -> float:
    head.eval()
    correct = sum(int((head(x[s:s + chunk], ts).argmax(-1) == y[s:s + chunk]).sum())
                  for s in range(0, len(y), chunk))
    return correct / len(y)


@dataclass
class TrajectoryInputs:
    """Standardised codes of the three splits at every t any K needs, read once from the cache."""

    ts: list[float]         # the union of the grids, sorted
    features: list[Tensor]  # train, val, test: (N, len(ts), d)
    labels: list[Tensor]
    static: bool            # codes ignore t: every t holds the same code
    train_images: int | None = None  # the size of the labelled training subset, None when all are used
    split_info: dict | None = None   # where that subset's indices are saved, and their hash

    @classmethod
    def read(cls, encoded: Encoded, grids: Sequence[Sequence[float]], train_images: int = 0
             ) -> TrajectoryInputs:
        """The codes at every t of ``grids``; the heads learn from ``train_images`` labelled
        training images (a stratified subset drawn from the seed, saved like lowlabel's), or all."""
        ts = sorted({t for grid in grids for t in grid})
        static = not encoded.method.time_conditioned
        read_ts = ts[:1] if static else ts  # a static method's code is the same at every t
        splits = ("train", "val", "test")
        feats = standardise(*(encoded.features(s, read_ts).to(encoded.device) for s in splits))
        if static:
            feats = [f.expand(len(ts), -1, -1) for f in feats]
        labels = [encoded.data.split(s).labels.to(encoded.device) for s in splits]
        inputs = cls(ts, [f.transpose(0, 1).contiguous() for f in feats], labels, static)
        if 0 < train_images < len(labels[0]):
            subset = stratified_subset(encoded.data.train.labels, train_images, encoded.seed)
            inputs.split_info = save_subset(subset, encoded.artifacts,
                                            f"{encoded.data.name}-train-{train_images}-seed{encoded.seed}")
            index = subset.to(encoded.device)
            inputs.features[0], inputs.labels[0] = inputs.features[0][index], inputs.labels[0][index]
            inputs.train_images = train_images
        return inputs

    def at(self, times: Sequence[float]) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """The (N, K, d) codes of every split at ``times`` (in order), with the labels, and ``times``."""
        index = [self.ts.index(t) for t in times]
        device = self.features[0].device
        splits = [(f[:, index], y) for f, y in zip(self.features, self.labels)]
        return torch.tensor(times, dtype=torch.float32, device=device), splits


def check_train_images(data: DataSplits, cfg: SequenceHeadConfig) -> None:
    """A labelled training subset of ``trajectory_train_images`` must be drawable from this data."""
    n = cfg.trajectory_train_images
    if 0 < n < len(data.train):  # 0 (or at least the split): all of them
        check_label_counts(data.train.labels, (n,), "trajectory_train_images")


@register_protocol
class Trajectory:
    name = "trajectory"
    config_cls = TrajectoryConfig
    metrics = ("accuracy",)
    test_metrics = ("accuracy",)

    def feature_times(self, cfg: TrajectoryConfig) -> tuple[float, ...]:
        return tuple(sorted({t for k in cfg.trajectory_points for t in trajectory_times(k)}))

    notes = """
For K in {1, 2, 3, 6, 11, 21}, the codes at K times evenly spaced on [0, 1]
(t = 0 and 1 included; K = 1 is t = 0.5), standardised with train statistics
and ordered by t, go to each head: `mlp` (the K codes concatenated, Linear -
ReLU - Dropout 0.25 - Linear, hidden 2 x width), `gru` (a GRU of the given
width over the sequence, dropout, Linear on the last state), `transformer`
(Linear to the width + dropout, a sinusoidal encoding of t itself, a learned
CLS token appended last, one post-norm block with 4 heads and FFN 2 x width
applied twice with shared weights, as in the follow-up's code; classify from
the CLS output), and `mlp-best-t`: one MLP per point of the K, the point with
the best validation accuracy reported: the best single t on the same grid,
which a trajectory head must beat. Adam, weight decay 1e-5, batch 256; the
learning rate (from `trajectory_lrs`) and epoch are chosen on the validation
split, the test split is scored once. A static method's codes are the same at
every t, so it is evaluated once, at K = 1, and reported at every K. The follow-up paper uses width
256, 100 epochs and 6 learning rates (the `paper` preset); the `quick` preset
uses width 64, learning rates {1e-3, 3e-3, 1e-2} (the middle one is the
one-standard-error rule's default, so either end is a real trend) and early
stopping: at most 60 epochs with patience 10 on digits and, on MNIST, at most
20 epochs with patience 4 on a stratified subset of 10000 labelled training images (`labels` column;
`trajectory_train_images`, 0 for all; its indices are saved under
`results/artifacts/splits/`, as the lowlabel protocol's). Run it with
`--set latent_dim=2` for the paper's 2-d latent.
"""

    def check_data(self, data: DataSplits, cfg: TrajectoryConfig) -> None:
        check_train_images(data, cfg)

    def run(self, encoded: Encoded, cfg: TrajectoryConfig) -> list[Record]:
        if not encoded.method.time_conditioned:
            # Its K codes are K copies of one: evaluated at K = 1, reported at every K.
            records = self._evaluate(encoded, cfg, {1: trajectory_times(1)})
            return [dataclasses.replace(r, points=k, extra={**r.extra, "evaluated_points": 1})
                    for k in cfg.trajectory_points for r in records]
        return self._evaluate(encoded, cfg, {k: trajectory_times(k) for k in cfg.trajectory_points})

    def _evaluate(self, encoded: Encoded, cfg: TrajectoryConfig, grids: dict[int, tuple[float, ...]]
                  ) -> list[Record]:
        inputs = TrajectoryInputs.read(encoded, list(grids.values()), cfg.trajectory_train_images)
        n_classes, in_dim = encoded.data.num_classes, inputs.features[0].shape[-1]
        records: list[Record] = []
        if "mlp-best-t" in cfg.trajectory_heads:
            records += _best_single_t(encoded, cfg, inputs, grids)
        for head in (h for h in cfg.trajectory_heads if h in SEQUENCE_HEADS):
            for k, times in grids.items():
                ts, splits = inputs.at(times)
                fitted = fit_select_head(functools.partial(make_head, head, k, in_dim, n_classes, cfg), ts, *splits,
                                         cfg=cfg, seed=encoded.seed, desc=f"{head} K={k}",
                                         progress=encoded.progress)
                records.append(Record("accuracy", fitted.test_accuracy, head=head, points=k,
                                      labels=inputs.train_images, extra={
                    "lr": fitted.lr, "epoch": fitted.epoch, "val_accuracy": fitted.val_accuracy,
                    "at_edge": fitted.at_edge, **(inputs.split_info or {})}))
        return records


def _best_single_t(encoded: Encoded, cfg: TrajectoryConfig, inputs: TrajectoryInputs,
                   grids: dict[int, tuple[float, ...]]) -> list[Record]:
    """One MLP per t of the union grid (batched), then per K the point best on validation."""
    ts = inputs.ts[:1] if inputs.static else inputs.ts
    per_t = [f[:, :len(ts)].transpose(0, 1) for f in inputs.features]  # (T, N, d)
    sel = fit_select_score(*zip(per_t, inputs.labels), n_classes=encoded.data.num_classes,
                           lrs=cfg.trajectory_lrs, epochs=cfg.trajectory_epochs,
                           batch_size=cfg.trajectory_batch_size, hidden=2 * cfg.trajectory_width,
                           dropout=cfg.trajectory_dropout, weight_decay=cfg.trajectory_weight_decay,
                           seed=encoded.seed, progress=encoded.progress)
    records = []
    for k, times in grids.items():
        candidates = [0] if inputs.static else [ts.index(t) for t in times]
        best = max(candidates, key=lambda i: (sel.val_accuracy[i], -i))
        records.append(Record("accuracy", sel.test_accuracy[best], head="mlp-best-t", points=k,
                              labels=inputs.train_images, extra={
            "t": None if inputs.static else ts[best], "lr": sel.lr[best], "epoch": sel.epoch[best],
            "val_accuracy": sel.val_accuracy[best], "at_edge": sel.at_edge[best], **(inputs.split_info or {})}))
    return records
