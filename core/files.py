"""Verified atomic files: every cache file of the suite is written and read here.

``save_verified`` writes the ``torch.save`` bytes behind a one-line header
holding their SHA-256 and length, through ``atomic_write``: to a temporary
file, fsynced, then renamed over the target. A killed run therefore never
leaves a half-written file, and a file damaged later (a truncated copy, a full
disk, a flipped bit; ``torch.load`` itself reads a flipped byte without
complaint) is caught by ``load_verified``, which raises ``CorruptCacheError``
naming the file, what is wrong and what to do. The digest lives in the file
rather than in a sidecar so that data and digest are replaced by one rename
and can never disagree after a crash; the price is that these files are read
with ``load_verified``, not plain ``torch.load``.

A bad file is never used and never deleted: ``load_or_set_aside`` moves it
aside to ``<file>.corrupt`` (kept for inspection; delete it when done), logs a
warning and returns None, so that the caller recomputes it. Files written
before digests existed (plain ``torch.save`` output) still load, and get their
digest the first time ``load_or_set_aside`` reads them.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

__all__ = [
    "RECOMPUTE_ADVICE",
    "CorruptCacheError",
    "atomic_write",
    "free_name",
    "load_or_set_aside",
    "load_verified",
    "quarantine",
    "save_verified",
]

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


def save_verified(obj: Any, path: str | Path) -> None:
    """``torch.save`` ``obj`` to ``path`` with its SHA-256, atomically and durably."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getbuffer()
    header = b"%sv1 %s %d\n" % (_MAGIC, hashlib.sha256(payload).hexdigest().encode(), len(payload))

    def write(fh: BinaryIO) -> None:
        fh.write(header)
        fh.write(payload)

    atomic_write(path, write)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Replace ``path`` all at once by what ``write(fh)`` writes, durably.

    ``write`` fills a temporary file beside ``path`` (created with the permissions a
    plain ``open`` gives); it is flushed, fsynced, renamed over ``path``, and the
    rename is fsynced too. Readers see the old file or the new one, never a part;
    on any error (``OSError`` from an unwritable folder included, which is raised)
    the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
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
    dest = free_name(path, ".corrupt")
    try:
        os.replace(path, dest)
    except FileNotFoundError:
        return None
    return dest


def safe_name(name: str) -> str:
    """A file-system-safe form of a name ('folder:/x/y' -> 'folder-x-y')."""
    # Leading dots are stripped too, so no name can become '..' or a hidden file.
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "unnamed"


def free_name(path: Path, suffix: str) -> Path:
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
