"""Many small classification heads trained as one batched model on cached features.

A probe needs one head per (head seed, learning rate, t): instead of a Python
loop over them, the heads are stacked along a leading dimension and evaluated
by batched matrix products. The heads of one seed see the same mini-batches
(the seed's own order and dropout masks), so the seeds' results are
independent draws. Each learning rate is its own parameter tensor (one
optimiser group each, so torch's Adam does the update); each tensor holds the
heads of every (seed, t). Selection is on validation only: every head keeps a
snapshot of its weights at its best validation epoch, and the test split is
scored once, with the chosen head of each (seed, t).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

# The follow-up's learning-rate grid for its probe and trajectory heads (the paper preset's).
FOLLOW_UP_LRS = (1e-3, 7.5e-4, 5e-4, 2.5e-4, 1e-4, 5e-5)
# How the heads' learning rate moves over training: the follow-up's constant lr, or annealed to zero.
SCHEDULES = ("constant", "cosine")


class BatchedHeads(nn.Module):
    """``T`` heads (linear, or Linear-ReLU-Dropout-Linear when ``hidden``) for one learning rate."""

    def __init__(self, n_heads: int, in_dim: int, n_classes: int, hidden: int | None,
                 dropout: float, generator: torch.Generator):
        super().__init__()
        dims = [in_dim, hidden, n_classes] if hidden else [in_dim, n_classes]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation
            self.weights.append(nn.Parameter(_uniform((n_heads, fan_in, fan_out), bound, generator)))
            self.biases.append(nn.Parameter(_uniform((n_heads, 1, fan_out), bound, generator)))
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        """(T, B, d) features -> (T, B, C) logits, head i reading x[i]; no dropout."""
        return self.scores(x).transpose(1, 2)

    def scores(self, x: Tensor, drop: Tensor | None = None) -> Tensor:
        """(T, B, d) features -> (T, C, B) logits: class-major, as the loss and accuracy read them.

        ``drop`` is the hidden layer's dropout as an additive (T, hidden, B) mask
        from ``dropout_mask``: 0 for a kept unit, -inf for a dropped one. None:
        no dropout. On a CPU, reductions over classes are several times faster
        along a middle dimension than along a short last one.
        """
        h = x.transpose(1, 2)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if i < last and drop is not None:
                # Bias plus mask, the product accumulated onto it in place: a dropped unit is -inf
                # before the ReLU, and 0 after it and in its gradient. The mask costs no pass of its
                # own over the (heads, hidden, batch) activations, which bound the MLP heads on a CPU.
                h = (b.transpose(1, 2) + drop).baddbmm_(w.transpose(1, 2), h)
            else:
                if i == last and drop is not None:
                    w = w / (1 - self.dropout)  # inverted dropout's scaling of the kept units
                h = torch.baddbmm(b.transpose(1, 2), w.transpose(1, 2), h)
            if i < last:
                h = F.relu(h, inplace=True)
        return h

    def dropout_mask(self, generators: Sequence[torch.Generator | None], batch: int,
                     device: torch.device) -> Tensor | None:
        """The hidden layer's additive dropout mask for ``scores`` (None without dropout): one
        (hidden, batch) draw per group of heads, group g from ``generators[g]`` (None: torch's
        global RNG), shared by its heads (as they share mini-batches); groups are equal and in order."""
        if len(self.weights) == 1 or self.dropout == 0:
            return None
        n_heads, _, hidden = self.weights[0].shape
        draws = torch.cat([torch.rand(1, hidden, batch, device=device, generator=g) for g in generators])
        mask = torch.zeros_like(draws).masked_fill_(draws < self.dropout, -math.inf)
        # (groups, hidden, batch) -> (heads, hidden, batch): a view for one group, one copy for several
        return mask.unsqueeze(1).expand(len(generators), n_heads // len(generators), hidden, batch).flatten(0, 1)


@dataclass
class HeadSelection:
    """What validation chose for each of the T feature sets."""

    lr: list[float]            # chosen learning rate per t
    epoch: list[int]           # chosen epoch (1-based) per t
    val_accuracy: list[float]  # validation accuracy of the chosen head per t
    test_accuracy: list[float]  # test accuracy of the chosen head per t (scored once)
    at_edge: list[bool] = field(default_factory=list)  # lr at an end of its grid, or still improving at the end
    epochs_run: list[int] = field(default_factory=list)  # per t: epochs its chosen lr trained (stall or limit)


def standardise(train: Tensor, *others: Tensor) -> list[Tensor]:
    """z-score every feature set with the statistics of its training codes."""
    mean = train.mean(dim=1, keepdim=True)
    std = train.std(dim=1, keepdim=True).clamp(min=1e-6)
    return [(x - mean) / std for x in (train, *others)]


def fit_select_score(*splits: tuple[Tensor, Tensor], **settings) -> HeadSelection:
    """One draw of every head: ``fit_select_score_seeds`` with ``head_seeds=1``, its only selection."""
    return fit_select_score_seeds(*splits, head_seeds=1, **settings)[0]


def fit_select_score_seeds(
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    n_classes: int,
    lrs: Sequence[float],
    epochs: int,
    batch_size: int,
    hidden: int | None,
    dropout: float,
    weight_decay: float,
    seed: int,
    head_seeds: int = 1,
    progress: bool = False,
    patience: int | None = None,
    schedule: str = "constant",
) -> list[HeadSelection]:
    """Train heads for every (head seed, lr, t) on ``train``, pick lr and epoch per (head seed, t) on
    ``val``, score ``test`` once; one selection per head seed.

    Features are (T, N, d) tensors, labels (N,) tensors, all on one device. Head
    seed s has its own initial weights, mini-batch order and dropout masks; head
    seed 0 draws from ``seed`` alone, so it does not depend on ``head_seeds``.
    ``schedule`` "constant" keeps each lr; "cosine" anneals it to zero over
    ``epochs`` (per step). With ``patience``, the heads of one lr stop once all
    of them have gone that many epochs without improving on validation
    (``epochs`` is then a limit); patience and "cosine" exclude each other. A
    selection is ``at_edge`` when its lr is an end of ``lrs`` or, with a constant
    lr, its lr reached the limit while its head was still improving (best epoch
    within the last ``patience`` epochs; without patience, the last epoch). Per (head seed, t) the epoch is each lr's best
    on validation, and the lr is chosen by ``one_standard_error_choice``.
    """
    with torch.random.fork_rng(devices=[]):  # dropout draws from the seed, caller's RNG untouched
        torch.manual_seed(seed)
        return _fit_select_score(train, val, test, n_classes, lrs, epochs, batch_size, hidden,
                                 dropout, weight_decay, seed, head_seeds, progress, patience, schedule)


def head_seed_generator(seed: int, head_seed: int, device: torch.device | str = "cpu",
                        stream: int = 0) -> torch.Generator:
    """Head seed 0's weights and batch order draw from ``seed`` itself; every other (head seed, stream)
    from an independent stream derived from it (stream 1: dropout masks, on the features' device)."""
    if head_seed == 0 and stream == 0:
        return torch.Generator(device=device).manual_seed(seed)
    derived = int(np.random.SeedSequence((seed, head_seed, stream)).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator(device=device).manual_seed(derived)


def _fit_select_score(train, val, test, n_classes, lrs, epochs, batch_size, hidden, dropout,
                      weight_decay, seed, n_seeds, progress, patience, schedule) -> list[HeadSelection]:
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule={schedule!r} is not allowed; valid: {', '.join(SCHEDULES)}")
    cosine = schedule == "cosine"
    if cosine and patience is not None:
        raise ValueError("a cosine schedule runs every epoch: give patience=None")
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = train, val, test
    n_t, n_train, in_dim = x_tr.shape
    n_heads = n_seeds * n_t  # seed-major: head s * T + t reads feature set t in seed s's order
    device = x_tr.device
    gens = [head_seed_generator(seed, s) for s in range(n_seeds)]
    # Head seed 0 keeps the single draw's dropout masks (torch's RNG, seeded by the caller's fork).
    mask_gens = [None] + [head_seed_generator(seed, s, device, stream=1) for s in range(1, n_seeds)]
    per_seed = [[BatchedHeads(n_t, in_dim, n_classes, hidden, dropout, g) for _ in lrs] for g in gens]
    heads = nn.ModuleList(_stack_heads([init[i] for init in per_seed]) for i in range(len(lrs))).to(device)
    optimiser = torch.optim.Adam(
        [{"params": h.parameters(), "lr": lr} for h, lr in zip(heads, lrs)], weight_decay=weight_decay,
        fused=True,  # one kernel per tensor: the heads are small, per-call overhead dominates
    )
    best_acc = torch.full((len(lrs), n_heads), -1.0, device=device)
    best_epoch = torch.zeros((len(lrs), n_heads), dtype=torch.long, device=device)
    snapshot = [[p.detach().clone() for p in h.parameters()] for h in heads]
    x_va, x_te = (x.repeat(n_seeds, 1, 1) for x in (x_va, x_te))  # every seed's heads read them
    def stalled(i: int, epoch: int) -> bool:
        return patience is not None and bool((epoch - best_epoch[i] >= patience).all())
    steps_per_epoch = -(-n_train // batch_size)

    desc = f"{'mlp' if hidden else 'linear'} heads x {len(lrs) * n_heads}"
    # Per lr: the epochs trained. Each lr stops on its own once all its heads have stalled, so a fast
    # lr's heads cost nothing while a slow one's run on (every lr keeps the same batches and masks).
    epochs_run = torch.zeros(len(lrs), dtype=torch.long)
    for epoch in tqdm(range(1, epochs + 1), desc=desc, disable=not progress, unit="epoch",
                      dynamic_ncols=True, mininterval=1.0):
        active = [i for i in range(len(lrs)) if not stalled(i, epoch - 1)]
        if not active:
            break  # every head has stalled: later epochs could only be chosen by chance
        epochs_run[active] = epoch
        orders = torch.stack([torch.randperm(n_train, generator=g) for g in gens]).to(device)  # (S, N)
        for step, start in enumerate(range(0, n_train, batch_size), start=(epoch - 1) * steps_per_epoch):
            if cosine:  # annealed to zero at the last step of ``epochs``
                for group, lr in zip(optimiser.param_groups, lrs):
                    group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / (epochs * steps_per_epoch)))
            idx = orders[:, start:start + batch_size]
            x = torch.cat([x_tr.index_select(1, i) for i in idx])  # (S*T, B, d)
            y = y_tr[idx].repeat_interleave(n_t, dim=0)  # (S*T, B)
            drop = heads[0].dropout_mask(mask_gens, idx.shape[1], device)
            # Sum over heads of each head's mean loss: every head's gradient is its own. A stopped
            # lr's parameters get no gradient, which Adam skips.
            loss = sum(_summed_head_losses(heads[i].scores(x, drop), y) for i in active)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            for i in active:
                acc = _accuracy(heads[i], x_va, y_va, batch_size * 8)
                improved = acc > best_acc[i]
                best_acc[i] = torch.where(improved, acc, best_acc[i])
                best_epoch[i] = torch.where(improved, epoch, best_epoch[i])
                for keep, p in zip(snapshot[i], heads[i].parameters()):
                    keep[improved] = p.detach()[improved]

    chosen = one_standard_error_choice(best_acc, len(y_va))  # (S*T,)
    cols = torch.arange(n_heads, device=device)
    with torch.no_grad():
        final = _stack_heads([BatchedHeads(n_t, in_dim, n_classes, hidden, dropout, g) for g in gens]).to(device)
        for p_final, *per_lr in zip(final.parameters(), *snapshot):
            p_final.copy_(torch.stack(per_lr)[chosen, cols])  # (L, S*T, ...) -> (S*T, ...)
        test_acc = _accuracy(final, x_te, y_te, batch_size * 8)
    lr, epoch_, val_acc, test_acc = (
        v.view(n_seeds, n_t).tolist() for v in (chosen, best_epoch[chosen, cols], best_acc[chosen, cols], test_acc))
    def at_edge(i: int, e: int) -> bool:
        # Still improving when the limit stopped its lr (without patience: best at the last epoch).
        # An annealed lr has converged for its budget by its last epochs: only the lr grid has ends.
        still_improving = int(epochs_run[i]) == epochs and e > epochs - (patience or 1)
        return at_grid_end(i, len(lrs)) or (still_improving and not cosine)
    return [HeadSelection(lr=[float(lrs[i]) for i in lr[s]], epoch=epoch_[s], val_accuracy=val_acc[s],
                          test_accuracy=test_acc[s], at_edge=[at_edge(i, e) for i, e in zip(lr[s], epoch_[s])],
                          epochs_run=[int(epochs_run[i]) for i in lr[s]]) for s in range(n_seeds)]


def _stack_heads(per_seed: list[BatchedHeads]) -> BatchedHeads:
    """One BatchedHeads holding the heads of several, in order (seed-major)."""
    stacked = per_seed[0]
    if len(per_seed) > 1:
        for name in ("weights", "biases"):
            params = getattr(stacked, name)
            for j in range(len(params)):
                params[j] = nn.Parameter(torch.cat([getattr(h, name)[j].detach() for h in per_seed]))
    return stacked


def _summed_head_losses(scores: Tensor, y: Tensor) -> Tensor:
    """The sum over heads of each head's mean cross-entropy; (H, C, B) logits, (H, B) labels."""
    return F.cross_entropy(scores, y) * len(scores)  # every head has B rows


def one_standard_error_choice(val_accuracy: Tensor, n_val: int) -> Tensor:
    """Per column of (G, H) validation accuracies over a grid of G ordered values, the index chosen.

    The one-standard-error rule (Hastie, Tibshirani & Friedman, ESL 7.10): every
    value within one binomial standard error of the best accuracy is as good as
    the best on this validation set; of those, the one nearest the middle of
    the grid is taken (ties: the first). A validation set's noise then never
    pushes a choice to an end of the grid: only a real trend does, and that is
    what ``at_edge`` reports.
    """
    best = val_accuracy.amax(dim=0)
    se = (best * (1 - best) / n_val).sqrt()
    within = val_accuracy >= best - se - 1e-9
    centre = (len(val_accuracy) - 1) / 2
    distance = (torch.arange(len(val_accuracy), device=val_accuracy.device) - centre).abs().unsqueeze(1)
    return distance.expand_as(within).masked_fill(~within, math.inf).argmin(dim=0)  # argmin: the first


def at_grid_end(index: int, size: int) -> bool:
    """A choice at an end of a grid of ``size`` values (a one-value grid chose nothing: both ends)."""
    return size == 1 or index in (0, size - 1)


def _accuracy(heads: BatchedHeads, x: Tensor, y: Tensor, chunk: int) -> Tensor:
    correct = torch.zeros(x.shape[0], device=x.device)
    for start in range(0, x.shape[1], chunk):
        pred = _first_argmax(heads.scores(x[:, start:start + chunk]))
        correct += (pred == y[start:start + chunk]).float().sum(dim=1)
    return correct / x.shape[1]


def _first_argmax(scores: Tensor) -> Tensor:
    """``scores.argmax(dim=1)`` (the first maximum), for (T, C, B): a max-reduction is far faster on a CPU."""
    n_classes = scores.shape[1]
    rank = torch.arange(n_classes, 0, -1, device=scores.device).view(1, -1, 1)  # C for class 0 ... 1 for C-1
    return n_classes - ((scores == scores.amax(dim=1, keepdim=True)) * rank).amax(dim=1)


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator) -> Tensor:
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound
