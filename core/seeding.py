"""Seeding: one call seeds every random generator the suite draws from."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed every generator a method may draw from (lightly's transforms use numpy and random)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
