"""The settings of the semi-supervised protocol (LaplaceNet), with their presets and constraints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from core.presets import per_size
from core.validation import Checked, Choice, Integers, Interval, Items, Positive, setting, violation
from protocols.augment import SEMISUP_AUGMENT_BACKENDS


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
    # The reference decays t's logit with the weights, pulling t to 0.5: in training mode that is the
    # only force on it (the BatchNorm after each block's t bias removes a bias the whole batch shares).
    t_weight_decay: bool = False
    # batched: on the run's device
    semisup_augment_backend: str = setting("torchvision", Choice(SEMISUP_AUGMENT_BACKENDS))

    def __post_init__(self):
        super().__post_init__()
        if not self.semisup_labelled_batch < self.semisup_batch_size:  # a check of two fields
            raise violation("semisup_labelled_batch", self.semisup_labelled_batch,
                            f"integers < semisup_batch_size ({self.semisup_batch_size})")
