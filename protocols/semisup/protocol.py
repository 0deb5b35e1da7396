"""The ``semisup`` protocol: LaplaceNet per label count, its rows, and the page's notes."""

from __future__ import annotations

from typing import Any

from core.data import DataSplits
from core.records import Record
from core.seeding import seed_everything
from protocols.base import Encoded, register_protocol
from protocols.labels import save_subset
from protocols.semisup.config import SemisupConfig
from protocols.semisup.splits import balanced_subset, semisup_ladder, training_pool
from protocols.semisup.trainer import LaplaceNet


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
reverse) when on. SGD, Nesterov momentum 0.9, weight decay 5e-4 (not on t; `--set t_weight_decay=true` decays its logit too, as the reference), lr
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
            split = save_subset(labelled, encoded.artifacts, f"{data.name}-semisup-{n}-seed{seed}")
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
