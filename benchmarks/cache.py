"""The two caches of a run: pretrained checkpoints and encoded features.

A checkpoint is keyed by a hash of everything that determines the trained
encoder (method, its config, the budget, the dataset fingerprint, the seed);
a second run of any protocol finds it and does not train again. Features are
keyed by (checkpoint, split, t): each is computed once and every protocol
reads it from here. Files are written atomically (temporary file, then
rename), so a killed run never leaves a half-written entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from benchmarks.data import DataSplits
from methods.base import Method

CACHE_FORMAT = 1  # bump when a change makes old checkpoints or features invalid


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-able object, independent of dict order."""
    text = json.dumps(obj, sort_keys=True, default=_jsonable, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)


def atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class CheckpointStore:
    def __init__(self, root: Path):
        self.root = Path(root) / "checkpoints"

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def snapshot_path(self, key: str) -> Path:
        """Where an unfinished pretraining keeps its resumable state (deleted when it finishes)."""
        return self.root / f"{key}.partial.pt"

    def load(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        if not path.exists():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def save(self, key: str, payload: dict[str, Any]) -> None:
        atomic_save(payload, self.path(key))


class FeatureCache:
    """``cache(split, ts)`` -> (len(ts), N, d) codes of a fitted method, computed once per (split, t)."""

    def __init__(self, root: Path, checkpoint: str, method: Method, data: DataSplits,
                 batch_size: int = 512, progress: bool = False):
        self.dir = Path(root) / "features" / checkpoint
        self.method, self.data, self.batch_size, self.progress = method, data, batch_size, progress
        self._memory: dict[tuple[str, str], torch.Tensor] = {}
        self.encoded_count = 0  # how many (split, t) were encoded rather than read: tests check reuse

    def _key(self, t: float) -> str:
        # A static method's codes do not depend on t: one entry serves every t.
        return f"t{t:.4f}" if self.method.time_conditioned else "static"

    def _path(self, split: str, key: str) -> Path:
        return self.dir / f"{split}_{key}.pt"

    def __call__(self, split: str, ts: Sequence[float]) -> torch.Tensor:
        keys = [self._key(float(t)) for t in ts]
        missing = {}
        for key, t in zip(keys, ts):
            if (split, key) in self._memory or key in missing:
                continue
            path = self._path(split, key)
            if path.exists():
                self._memory[(split, key)] = torch.load(path, weights_only=True)
            else:
                missing[key] = float(t)
        if missing:
            codes = self._encode(split, list(missing.values()))
            for i, key in enumerate(missing):
                atomic_save(codes[i].clone(), self._path(split, key))
                self._memory[(split, key)] = codes[i]
            self.encoded_count += len(missing)
        return torch.stack([self._memory[(split, key)] for key in keys])

    def _encode(self, split: str, ts: list[float]) -> torch.Tensor:
        """All requested t in one forward per batch: the batch is repeated over t."""
        images = self.data.split(split).images
        n, k = len(images), len(ts)
        t_all = torch.tensor(ts, dtype=torch.float32)
        chunk = max(self.batch_size // k, 1)
        out = []
        starts = tqdm(range(0, n, chunk), desc=f"encode {self.method.name} {split} at {k} t",
                      disable=not self.progress, unit="batch", dynamic_ncols=True, mininterval=1.0)
        for start in starts:
            x = images[start:start + chunk]
            b = len(x)
            z = self.method.encode(x.repeat(k, 1, 1, 1), t_all.repeat_interleave(b))
            out.append(z.view(k, b, -1).cpu())
        return torch.cat(out, dim=1)
