"""The two caches of a run: pretrained checkpoints and encoded features.

A checkpoint is keyed by a hash of everything that determines the trained
encoder (method, its config, the budget, the dataset fingerprint, the seed);
a second run of any protocol finds it and does not train again. Features are
keyed by (checkpoint, split, t): each is computed once and every protocol
reads it from here.

Every file is a verified file (``core.files``): written atomically with its
SHA-256, checked when read.

A bad file is never used and never deleted. Both caches are recomputable, so
the stores move a corrupt entry aside to ``<file>.corrupt`` (kept for
inspection; delete it when done), print a warning and recompute it. A corrupt
checkpoint is reported loudly, since recomputing it means pretraining again.
Files written before digests existed (plain ``torch.save`` output) still load;
the stores add the digest to them the first time they read them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from core.data import DataSplits
from core.files import free_name, load_or_set_aside, save_verified
from methods.base import Method

CACHE_FORMAT = 1  # bump when a change makes old checkpoints or features invalid

log = logging.getLogger(__name__)


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-able object, independent of dict order."""
    text = json.dumps(obj, sort_keys=True, default=_jsonable, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)


def features_folder(results: Path, checkpoint: str) -> Path:
    """Where ``FeatureCache`` keeps the codes of one pretrained encoder (set aside with its checkpoint)."""
    return Path(results) / "features" / checkpoint


class CheckpointStore:
    """Pretrained encoders, one verified file ``checkpoints/<key>.pt`` per key."""

    def __init__(self, root: Path):
        self.results = Path(root)
        self.root = self.results / "checkpoints"

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def snapshot_path(self, key: str) -> Path:
        """Where an unfinished pretraining keeps its resumable state (deleted when it finishes)."""
        return self.root / f"{key}.partial.pt"

    def load(self, key: str) -> dict[str, Any] | None:
        """The checkpoint saved under ``key``; None if absent or corrupt (moved aside, reported).

        The features cached for a corrupt checkpoint are set aside too (``<key>.stale``): they
        encode the lost encoder, and the retrained one differs from it on another device or
        thread count (README, Determinism).
        """
        path = self.path(key)
        existed = path.exists()
        payload = load_or_set_aside(path, "checkpoint", "pretraining it again", loud=True)
        codes = features_folder(self.results, key)
        if payload is None and existed and codes.is_dir():
            dest = free_name(codes, ".stale")
            try:
                codes.rename(dest)
            except FileNotFoundError:  # another process set them aside first
                return None
            log.warning("features of corrupt checkpoint %s set aside to %s; encoding again", key, dest)
        return payload

    def save(self, key: str, payload: dict[str, Any]) -> None:
        save_verified(payload, self.path(key))


# Rows (images x times) per encoder forward. On a CPU, activations that stay in cache beat a
# bigger batch (the trajectory benchmark in tests/perf runs at this size); a GPU wants as many
# rows as fill it.
ROWS_PER_FORWARD = {"cpu": 192, "cuda": 2048}


def rows_per_forward(method: Method) -> int:
    return ROWS_PER_FORWARD.get(getattr(method, "device", torch.device("cpu")).type, 512)


def encode_in_chunks(method: Method, images: torch.Tensor, ts: Sequence[float], rows: int | None = None,
                     progress: bool = False, desc: str = "encode") -> torch.Tensor:
    """(K, N, d) codes of ``images`` at each of the K ``ts``, on the CPU.

    All K times in one forward per chunk of images (the chunk repeated over t), each forward
    about ``rows`` (default ``rows_per_forward``) images x times.
    """
    t_all = torch.tensor(list(ts), dtype=torch.float32)
    chunk = max((rows or rows_per_forward(method)) // len(t_all), 1)
    starts = tqdm(range(0, len(images), chunk), desc=desc, disable=not progress, unit="batch",
                  dynamic_ncols=True, mininterval=1.0)
    return torch.cat([method.encode_times(images[i:i + chunk], t_all).cpu() for i in starts], dim=1)


class FeatureCache:
    """``cache(split, ts)`` -> (len(ts), N, d) codes of a fitted method, computed once per (split, t)."""

    def __init__(self, root: Path, checkpoint: str, method: Method, data: DataSplits,
                 batch_size: int | None = None, progress: bool = False):
        self.dir = features_folder(root, checkpoint)
        self.method, self.data, self.progress = method, data, progress
        self.batch_size = batch_size or rows_per_forward(method)
        self._memory: dict[tuple[str, str], torch.Tensor] = {}
        self.encoded_count = 0  # how many (split, t) were encoded rather than read: tests check reuse

    def _key(self, t: float) -> str:
        # A static method's codes do not depend on t: one entry serves every t.
        return f"t{t:.4f}" if self.method.time_conditioned else "static"

    def _path(self, split: str, key: str) -> Path:
        return self.dir / f"{split}_{key}.pt"

    def cached_file(self, split: str, t: float) -> Path:
        """The file that holds (or will hold) the codes of ``split`` at ``t``."""
        return self._path(split, self._key(float(t)))

    def __call__(self, split: str, ts: Sequence[float]) -> torch.Tensor:
        keys = [self._key(float(t)) for t in ts]
        missing = {}
        for key, t in zip(keys, ts):
            if (split, key) in self._memory or key in missing:
                continue
            codes = load_or_set_aside(self._path(split, key), "feature cache entry", "recomputing it")
            if codes is not None:
                self._memory[(split, key)] = codes
            else:
                missing[key] = float(t)
        if missing:
            codes = self._encode(split, list(missing.values()))
            for i, key in enumerate(missing):
                save_verified(codes[i].clone(), self._path(split, key))
                self._memory[(split, key)] = codes[i]
            self.encoded_count += len(missing)
        return torch.stack([self._memory[(split, key)] for key in keys])

    def _encode(self, split: str, ts: list[float]) -> torch.Tensor:
        return encode_in_chunks(self.method, self.data.split(split).images, ts, self.batch_size, self.progress,
                                desc=f"encode {self.method.name} {split} at {len(ts)} t")
