"""The two caches of a run: pretrained checkpoints and encoded features.

A checkpoint is keyed by a hash of everything that determines the trained
encoder (method, its config, the budget, the dataset fingerprint, the seed);
a second run of any protocol finds it and does not train again. Features are
keyed by (checkpoint, split, t): each is computed once and every protocol
reads it from here.

Every file is written by ``save_verified``: the ``torch.save`` bytes behind a
one-line header holding their SHA-256 and length, written to a temporary file,
fsynced, then renamed over the target. A killed run therefore never leaves a
half-written entry, and a file damaged later (a truncated copy, a full disk, a
flipped bit; ``torch.load`` itself reads a flipped byte without complaint) is
caught by ``load_verified``, which raises ``CorruptCacheError`` naming the
file, what is wrong and what to do. The digest lives in the file rather than
in a sidecar so that data and digest are replaced by one rename and can never
disagree after a crash; the price is that these files are read with
``load_verified``, not plain ``torch.load``.

A bad file is never used and never deleted. Both caches are recomputable, so
the stores move a corrupt entry aside to ``<file>.corrupt`` (kept for
inspection; delete it when done), print a warning and recompute it. A corrupt
checkpoint is reported loudly, since recomputing it means pretraining again.
Files written before digests existed (plain ``torch.save`` output) still load;
the stores add the digest to them the first time they read them.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from core.data import DataSplits
from methods.base import Method

CACHE_FORMAT = 1  # bump when a change makes old checkpoints or features invalid
# Header of a verified file: b"BENCHMARKS-SHA256 v1 <64 hex digits> <payload bytes>\n".
_MAGIC = b"BENCHMARKS-SHA256 "
_HEADER = re.compile(rb"BENCHMARKS-SHA256 v1 ([0-9a-f]{64}) ([0-9]+)\n")
_MAX_HEADER = 128
RECOMPUTE_ADVICE = "delete it (or move it aside) and rerun the same command to recompute it"

log = logging.getLogger(__name__)


class CorruptCacheError(ValueError):
    """A cached file is truncated, altered or unreadable: its contents must not be used."""

    def __init__(self, path: str | Path, problem: str, advice: str = RECOMPUTE_ADVICE,
                 identity: tuple[int, int] | None = None):
        self.path, self.problem = Path(path), problem
        self.identity = identity  # (st_dev, st_ino) of the file that was read: quarantine moves only that one
        super().__init__(f"{path}: {problem}; {advice}")


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-able object, independent of dict order."""
    text = json.dumps(obj, sort_keys=True, default=_jsonable, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)


def save_verified(obj: Any, path: str | Path) -> None:
    """``torch.save`` ``obj`` to ``path`` with its SHA-256, atomically and durably."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getbuffer()
    header = b"%sv1 %s %d\n" % (_MAGIC, hashlib.sha256(payload).hexdigest().encode(), len(payload))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(header)
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())  # the bytes reach the disk before the rename can
        os.replace(tmp, path)
        _fsync_directory(path.parent)  # and the rename itself survives a power cut
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not possible on every platform (Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_verified(path: str | Path, map_location: Any = "cpu") -> Any:
    """The object ``save_verified`` wrote to ``path``, after checking its digest.

    Raises ``CorruptCacheError`` if the file is truncated, altered or unreadable.
    A file without a digest (written before digests existed) is loaded unverified.
    """
    return _load(Path(path), map_location)[0]


def _load(path: Path, map_location: Any = "cpu") -> tuple[Any, bool]:
    """(object, whether it was verified by a digest); raises CorruptCacheError."""
    try:
        with open(path, "rb") as fh:
            stat = os.fstat(fh.fileno())
            data = fh.read()
    except FileNotFoundError:
        raise
    except OSError as err:
        raise CorruptCacheError(path, f"unreadable ({err.strerror or err})") from err
    identity = (stat.st_dev, stat.st_ino)

    def corrupt(problem: str) -> CorruptCacheError:
        return CorruptCacheError(path, problem, identity=identity)

    if not data:
        raise corrupt("empty (0 bytes; truncated)")
    if data.startswith(_MAGIC) or _MAGIC.startswith(data):
        header = _HEADER.match(data[:_MAX_HEADER])
        if header is None:
            newline = data.find(b"\n", 0, _MAX_HEADER)
            raise corrupt("truncated (inside its header)" if newline < 0 and len(data) < _MAX_HEADER
                          else "damaged header (no valid SHA-256 digest)")
        expected, size = header.group(1).decode(), int(header.group(2))
        payload = memoryview(data)[header.end():]
        if len(payload) < size:
            raise corrupt(f"truncated ({len(payload)} of {size} bytes)")
        if len(payload) > size:
            raise corrupt(f"{len(payload) - size} bytes longer than written")
        actual = hashlib.sha256(payload).hexdigest()
        if actual != expected:
            raise corrupt(f"SHA-256 mismatch (content changed after writing: {actual[:12]}... "
                          f"instead of {expected[:12]}...)")
        # The bytes are exactly those written: a load error here is a bug, not damage; let it raise.
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True), True
    try:  # legacy file: nothing to verify against, but it must at least load
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True), False
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise corrupt(f"unreadable (no digest and torch.load fails: {reason[:200]})") from err


def quarantine(err: CorruptCacheError) -> Path | None:
    """Move the corrupt file of ``err`` aside to ``<file>.corrupt`` (``.corrupt.1``... if taken).

    Returns the new path, or None if the file was already gone or replaced (another
    process moved it aside or recomputed it first): a good file is never moved.
    """
    path = err.path
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    if err.identity is not None and (stat.st_dev, stat.st_ino) != err.identity:
        return None
    dest = _free_name(path, ".corrupt")
    try:
        os.replace(path, dest)
    except FileNotFoundError:
        return None
    return dest


def _free_name(path: Path, suffix: str) -> Path:
    """``path`` + ``suffix``, or + ``suffix.1``, ``.2``... : earlier ones are kept."""
    dest, n = path.with_name(path.name + suffix), 0
    while dest.exists():
        n += 1
        dest = path.with_name(f"{path.name}{suffix}.{n}")
    return dest


def load_or_set_aside(path: Path, what: str, consequence: str, loud: bool = False) -> Any | None:
    """The verified contents of ``path``; None when absent or corrupt (then moved aside, with a warning)."""
    if not path.exists():
        return None
    try:
        obj, verified = _load(path)
    except FileNotFoundError:
        return None
    except CorruptCacheError as err:
        try:
            dest = quarantine(err)
        except OSError as move_err:  # e.g. a read-only folder: the user must act
            raise CorruptCacheError(path, f"{err.problem}; could not move it aside ({move_err.strerror})") from err
        moved = f"moved aside to {dest.name}" if dest else "already moved aside by another process"
        prefix = f"CORRUPT {what.upper()}" if loud else f"corrupt {what}"
        log.warning("%s %s: %s; %s, %s (delete the .corrupt file once you no longer need it)",
                    prefix, path, err.problem, moved, consequence)
        return None
    if not verified:
        try:
            save_verified(obj, path)  # seal the legacy file: from now on damage to it is caught
        except OSError as err:
            log.debug("could not add a digest to legacy cache file %s (%s)", path, err)
    return obj


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
            dest = _free_name(codes, ".stale")
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
