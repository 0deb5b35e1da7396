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

The package, one job a module: ``config`` (the settings), ``splits`` (labelled
images and the pool), ``model`` (the classifier), ``trainer`` (the loop) and
``protocol`` (the registered protocol and its rows).
"""

from protocols.semisup.config import SemisupConfig
from protocols.semisup.model import SemisupClassifier
from protocols.semisup.protocol import Semisup
from protocols.semisup.splits import (
           REFERENCE_LADDER,
           balanced_subset,
           semisup_ladder,
           training_pool,
)
from protocols.semisup.trainer import EVAL_BATCH, T_SCAN, LaplaceNet, SemisupResult

__all__ = ["EVAL_BATCH", "REFERENCE_LADDER", "T_SCAN", "LaplaceNet", "Semisup", "SemisupClassifier",
           "SemisupConfig", "SemisupResult", "balanced_subset", "semisup_ladder", "training_pool"]
