"""The record of one measured number: what every protocol returns and the results store keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Record:
    """One measured number and the setting it was measured in.

    ``t``, ``t2``, ``labels``, ``head`` and ``points`` are the setting columns
    every leaderboard understands (None where they do not apply; ``t2`` is the
    second time of a number measured between two times); anything else a
    protocol wants to keep (the chosen learning rate, the epoch...) goes to
    ``extra`` and is stored as JSON beside the row. Keys of ``extra`` that start
    with ``test_`` are measured on the test split; all others record choices made
    without it (the contract tests check this).
    """

    metric: str
    value: float
    t: float | None = None
    labels: int | None = None
    head: str | None = None
    points: int | None = None
    t2: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
