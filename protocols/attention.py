"""Where along t the Transformer trajectory head looks: its CLS attention over the time tokens (follow-up paper)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.data import DataSplits
from core.records import Record
from core.validation import Integers, setting
from protocols.base import Encoded, register_protocol
from protocols.trajectory import (
    SequenceHeadConfig,
    TrajectoryInputs,
    check_train_images,
    fit_select_head,
    make_head,
    trajectory_times,
)


@dataclass(frozen=True)
class AttentionConfig(SequenceHeadConfig):
    attention_points: int = setting(11, Integers(2), smoke=3)  # K: the Transformer reads the codes at t = 0, 1/(K-1), ..., 1


@register_protocol
class Attention:
    name = "attention"
    config_cls = AttentionConfig
    metrics = ("attention", "attention_cls", "accuracy")
    test_metrics = ("attention", "attention_cls", "accuracy")  # all measured on the test split

    def feature_times(self, cfg: AttentionConfig) -> tuple[float, ...]:
        return trajectory_times(cfg.attention_points)

    notes = """
The `transformer` head of the `trajectory` protocol, trained the same way
(learning rate and epoch chosen on validation, on MNIST's `quick` preset from
the same 10000 labelled training images) on the codes at K = 11 times
t = 0, 0.1, ..., 1. `attention` at t is the softmax weight the CLS query puts
on the token of t in the last block application, averaged over the
Transformer's heads and over the test images; `attention_cls` is the weight
the CLS query keeps on itself (the weights over t and on CLS sum to 1). The
leaderboard shows mean and std over seeds. `accuracy` is the head's test
accuracy, for reading the weights against how well the head does. For a
static method every token holds the same code, so its weights show only
what the encoding of t alone draws attention to: a control. The follow-up
paper reads the attention of its 5-seed Transformer the same way.
"""

    def check_data(self, data: DataSplits, cfg: AttentionConfig) -> None:
        check_train_images(data, cfg)

    def run(self, encoded: Encoded, cfg: AttentionConfig) -> list[Record]:
        times = trajectory_times(cfg.attention_points)
        inputs = TrajectoryInputs.read(encoded, [times], cfg.trajectory_train_images)
        ts, (train, val, test) = inputs.at(times)
        in_dim = inputs.features[0].shape[-1]
        fitted = fit_select_head(
            lambda: make_head("transformer", len(times), in_dim, encoded.data.num_classes, cfg),
            ts, train, val, test, cfg=cfg, seed=encoded.seed, desc="transformer", progress=encoded.progress)
        weights = cls_attention(fitted.module, test[0], ts, cfg.trajectory_batch_size * 8)
        chosen = {"lr": fitted.lr, "epoch": fitted.epoch, "val_accuracy": fitted.val_accuracy,
                  **(inputs.split_info or {})}
        records = [Record("attention", float(weights[i]), t=t, extra=chosen) for i, t in enumerate(times)]
        records.append(Record("attention_cls", float(weights[-1]), extra=chosen))
        records.append(Record("accuracy", fitted.test_accuracy, points=len(times), head="transformer",
                              labels=inputs.train_images, extra=chosen))
        return records


@torch.no_grad()
def cls_attention(head, codes: torch.Tensor, ts: torch.Tensor, chunk: int) -> torch.Tensor:
    """Mean over images of the CLS query's attention weights: (K + 1,), the CLS token's own weight last."""
    head.eval()
    total = torch.zeros(codes.shape[1] + 1, device=codes.device)
    for start in range(0, len(codes), chunk):
        _, w = head.forward_with_attention(codes[start:start + chunk], ts, need_weights=True)
        total += w.sum(dim=0)
    return (total / len(codes)).cpu()
