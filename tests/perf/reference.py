"""The probe's heads trained the straightforward way: one head at a time, for the speed and equivalence checks.

``loop_fit_select_score`` is what ``protocols.batched.fit_select_score`` replaces:
for each t and each learning rate, one ``nn.Linear`` (or Linear-ReLU-Dropout-Linear)
head with its own Adam, trained alone. It starts from the batched heads' initial
weights and sees the same mini-batches in the same order (the same generator,
seeded the same way), then chooses epoch and learning rate on validation by the
same rule and scores the test split once. The batched version must reach the
same accuracies (tests/test_probe_loop_equivalence.py) and be much faster
(tests/perf/test_bench_probe.py).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from protocols.batched import (
    BatchedHeads,
    HeadSelection,
    head_seed_generator,
    one_standard_error_choice,
)


def loop_fit_select_score_seeds(train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
                                test: tuple[Tensor, Tensor], *, seed: int, head_seeds: int = 1,
                                **settings) -> list[HeadSelection]:
    """``fit_select_score_seeds``'s arguments and result, one head per (seed, t, lr) trained in a Python loop."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return [_loop_one_seed(train, val, test, head_seed_generator(seed, s), **settings)
                for s in range(head_seeds)]


def loop_fit_select_score(*splits: tuple[Tensor, Tensor], **settings) -> HeadSelection:
    """``fit_select_score``'s arguments and result: one draw of every head, trained in a Python loop."""
    return loop_fit_select_score_seeds(*splits, head_seeds=1, **settings)[0]


def _loop_one_seed(train, val, test, gen: torch.Generator, n_classes: int, lrs: Sequence[float], epochs: int,
                   batch_size: int, hidden: int | None, dropout: float, weight_decay: float) -> HeadSelection:
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = train, val, test
    n_t, n_train, in_dim = x_tr.shape
    # The batched version's draws, in its order: initial weights per lr, then one permutation per epoch.
    initial = [BatchedHeads(n_t, in_dim, n_classes, hidden, dropout, gen) for _ in lrs]
    orders = [torch.randperm(n_train, generator=gen).to(x_tr.device) for _ in range(epochs)]
    chosen: HeadSelection = HeadSelection([], [], [], [])
    for t in range(n_t):
        best = []  # per lr: (val accuracy, epoch, head at that epoch)
        for lr, init in zip(lrs, initial):
            head = _head(init, t, dropout).to(x_tr.device)
            optimiser = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
            best_acc, best_epoch, best_head = -1.0, 0, None
            for epoch in range(1, epochs + 1):
                head.train()
                for start in range(0, n_train, batch_size):
                    idx = orders[epoch - 1][start:start + batch_size]
                    loss = F.cross_entropy(head(x_tr[t, idx]), y_tr[idx])
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                acc = _accuracy(head, x_va[t], y_va)
                if acc > best_acc:
                    best_acc, best_epoch, best_head = acc, epoch, copy.deepcopy(head)
            best.append((best_acc, best_epoch, best_head))
        i = int(one_standard_error_choice(torch.tensor([[b[0]] for b in best]), len(y_va))[0])  # the same rule
        val_acc, epoch, head = best[i]
        chosen.lr.append(float(lrs[i]))
        chosen.epoch.append(epoch)
        chosen.val_accuracy.append(val_acc)
        chosen.test_accuracy.append(_accuracy(head, x_te[t], y_te))
    return chosen


def _head(init: BatchedHeads, t: int, dropout: float) -> nn.Sequential:
    """Head ``t`` of ``init`` as plain layers (nn.Linear stores its weight transposed)."""
    layers: list[nn.Module] = []
    for i, (w, b) in enumerate(zip(init.weights, init.biases)):
        linear = nn.Linear(w.shape[1], w.shape[2])
        with torch.no_grad():
            linear.weight.copy_(w[t].T)
            linear.bias.copy_(b[t, 0])
        layers.append(linear)
        if i < len(init.weights) - 1:
            layers += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


@torch.no_grad()
def _accuracy(head: nn.Module, x: Tensor, y: Tensor) -> float:
    head.eval()
    return float((head(x).argmax(dim=1) == y).float().mean())
