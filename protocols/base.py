"""The Evaluation interface, the records it returns, and the protocol registry.

A protocol evaluates a *frozen* encoder: it reads codes through the shared
feature cache (``Encoded.features``), chooses its own hyper-parameters on the
validation split, scores the test split once, and returns one ``Record`` per
measured number. It never trains the encoder it evaluates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch

from core.records import Record
from core.registry import Registry
from core.validation import Checked, Interval, Items, setting

if TYPE_CHECKING:
    from core.data import DataSplits
    from methods.base import Method

# Every protocol that evaluates codes at several t uses this grid unless told otherwise.
DEFAULT_T_VALUES: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))


@dataclass(frozen=True)
class TimeGridConfig(Checked):
    """Base of the configs of protocols that read codes at several t."""

    t_values: tuple[float, ...] = setting(DEFAULT_T_VALUES, Items(Interval(0.0, 1.0), nonempty=True),
                                          smoke=(0.0, 0.5, 1.0), quick=DEFAULT_T_VALUES, paper=DEFAULT_T_VALUES)


class ReadsTimeGrid:
    """For protocols configured by a ``TimeGridConfig``: they read the codes at its ``t_values``."""

    def feature_times(self, cfg: TimeGridConfig) -> tuple[float, ...]:
        return tuple(cfg.t_values)

    @staticmethod
    def times_to_encode(method: Any, t_values: Sequence[float]) -> list[float]:
        """All of ``t_values``, or only the first for a static method (its codes are the same at every t)."""
        return list(t_values) if method.time_conditioned else list(t_values)[:1]

    @staticmethod
    def reported_at(ts: Sequence[float], encoded_ts: Sequence[float]) -> list[tuple[float, int]]:
        """Each reported t and the index of the encoded t its number comes from (a static method's one result)."""
        return [(t, j if len(encoded_ts) == len(ts) else 0) for j, t in enumerate(ts)]


@dataclass
class Encoded:
    """What a protocol is given: a fitted method, the data, and cached codes.

    ``features(split, ts)`` returns a float tensor of shape ``(len(ts), N, d)``
    for ``split`` in {"train", "val", "test"}, computed once per checkpoint and
    t and then read from the feature cache.
    """

    method: Method
    data: DataSplits
    features: Callable[[str, Sequence[float]], torch.Tensor]
    seed: int
    device: torch.device
    artifacts: Path | None = None  # where a protocol saves what its numbers depend on (label splits)
    progress: bool = False         # show progress bars for long loops


class Evaluation(Protocol):
    name: ClassVar[str]
    config_cls: ClassVar[type]
    metrics: ClassVar[tuple[str, ...]]       # every metric its records may carry
    test_metrics: ClassVar[tuple[str, ...]]  # those measured on the test split; all others are chosen on validation
    notes: ClassVar[str]  # markdown for its leaderboard page: what it does, where it departs from the papers
    # Optional: ``fine_tunes = True`` for a protocol that trains a *copy* of the encoder on images
    # (semisup) instead of reading cached codes; ``summary = {title, row, columns, metrics}`` for a
    # paper-shaped pivot table at the top of its page.

    def feature_times(self, cfg: Any) -> Sequence[float]: ...
    """The t at which ``run`` reads cached codes (the dry-run plan and the cache ask it); none for
    a protocol that fine-tunes the encoder on images."""

    def run(self, encoded: Encoded, cfg: Any) -> list[Record]: ...

    # Optional: ``check_data(data, cfg)`` raises ValueError (one line) when the settings cannot work
    # on this dataset (label counts larger than its training split...); the runner calls it before
    # anything is computed.


# Every module of ``protocols`` is imported on the first look-up; their ``@register_protocol`` fill it.
PROTOCOLS: Registry[type] = Registry("protocol", package="protocols")
register_protocol = PROTOCOLS.register
available_protocols = PROTOCOLS.names


def create_protocol(name: str) -> Evaluation:
    return PROTOCOLS.get(name)()
