"""Declarative checks of config fields, in the manner of scikit-learn's parameter constraints.

A config dataclass declares each field's constraint once, in the field's metadata::

    @dataclass(frozen=True)
    class ProbeConfig(Checked):
        probe_epochs: int = setting(100, Integers(1))
        probe_lrs: tuple[float, ...] = setting((1e-3,), Items(Interval(0, closed="neither"), nonempty=True))
        heads: tuple[str, ...] = setting(("linear",), Items(Choice(HEADS), nonempty=True))

``Checked.__post_init__`` runs ``check_config``, which raises one ``ValueError`` in one format naming
the field, the bad value and what is allowed::

    probe_epochs=0 is not allowed; valid: integers >= 1

Checks that relate several fields stay in the config's own ``__post_init__`` (after
``super().__post_init__()``) and raise ``violation(...)``, the same format. Every constraint also
gives ``bad_values()``, values it refuses, so a test can try each declared field with them.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable
from typing import Any

from core.presets import UNSET, preset_values

CLOSED = ("both", "left", "right", "neither")


class Constraint:
    """What one field may hold: ``allows(value)``, ``describe()`` (plural: what is valid) and ``bad_values()``."""

    def allows(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def bad_values(self) -> tuple[Any, ...]:
        raise NotImplementedError


def _fmt(x: float) -> str:
    return str(int(x)) if isinstance(x, numbers.Integral) or (math.isfinite(x) and x == int(x)) else str(x)


class Interval(Constraint):
    """Finite numbers (or, with ``integer=True``, integers) between ``low`` and ``high`` (None: unbounded).

    ``closed`` says which given bounds belong to the interval: both, left, right or neither; ``note``
    documents a sentinel inside it (such as ``"0: all"``).
    """

    def __init__(self, low: float | None = None, high: float | None = None, *, closed: str = "both",
                 integer: bool = False, note: str = ""):
        if closed not in CLOSED:
            raise ValueError(f"closed={closed!r} is not allowed; valid: {', '.join(CLOSED)}")
        self.low, self.high, self.closed, self.integer, self.note = low, high, closed, integer, note

    def _low_closed(self) -> bool:
        return self.closed in ("both", "left")

    def _high_closed(self) -> bool:
        return self.closed in ("both", "right")

    def allows(self, value: Any) -> bool:
        kind = numbers.Integral if self.integer else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
            return False
        if self.low is not None and not (value >= self.low if self._low_closed() else value > self.low):
            return False
        return self.high is None or (value <= self.high if self._high_closed() else value < self.high)

    def describe(self) -> str:
        kind = "integers" if self.integer else "finite numbers"
        if self.low is not None and self.high is not None:
            left, right = "[" if self._low_closed() else "(", "]" if self._high_closed() else ")"
            text = f"{kind} in {left}{_fmt(self.low)}, {_fmt(self.high)}{right}"
        elif self.low is not None:
            text = f"{kind} {'>=' if self._low_closed() else '>'} {_fmt(self.low)}"
        elif self.high is not None:
            text = f"{kind} {'<=' if self._high_closed() else '<'} {_fmt(self.high)}"
        else:
            text = kind
        return f"{text} ({self.note})" if self.note else text

    def bad_values(self) -> tuple[Any, ...]:
        step = 1 if self.integer else 0.5
        bad: list[Any] = []
        if self.low is not None:
            bad.append(self.low - step if self._low_closed() else self.low)
        if self.high is not None:
            bad.append(self.high + step if self._high_closed() else self.high)
        if not self.integer:
            bad += [math.nan, math.inf]
        return tuple(int(b) if self.integer else float(b) for b in bad)


def Integers(low: int | None = None, high: int | None = None, note: str = "") -> Interval:  # noqa: N802
    """Integers in ``[low, high]``."""
    return Interval(low, high, closed="both", integer=True, note=note)


def Positive() -> Interval:  # noqa: N802
    """Finite numbers > 0."""
    return Interval(0, None, closed="neither")


def NonNegative() -> Interval:  # noqa: N802
    """Finite numbers >= 0."""
    return Interval(0, None, closed="left")


class Choice(Constraint):
    """One of ``values``: a sequence, or a mapping or registry whose keys are read at each check
    (a name registered later is valid)."""

    def __init__(self, values: Iterable[str]):
        self.source = values

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(self.source)

    def allows(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.values

    def describe(self) -> str:
        return ", ".join(self.values)

    def bad_values(self) -> tuple[Any, ...]:
        return ("no-such-" + (self.values[0] if self.values else "value"), "")


class Items(Constraint):
    """A tuple whose every item satisfies ``item``; ``nonempty``: at least one item."""

    def __init__(self, item: Constraint, *, nonempty: bool = False, note: str = ""):
        self.item, self.nonempty, self.note = item, nonempty, note

    def allows(self, value: Any) -> bool:
        if not isinstance(value, (tuple, list)) or (self.nonempty and not value):
            return False
        return all(self.item.allows(v) for v in value)

    def describe(self) -> str:
        of = "drawn from " if isinstance(self.item, Choice) else "of "
        text = f"{'non-empty ' if self.nonempty else ''}lists {of}{self.item.describe()}"
        return f"{text} ({self.note})" if self.note else text

    def bad_values(self) -> tuple[Any, ...]:
        return (((),) if self.nonempty else ()) + tuple((b,) for b in self.item.bad_values())


def setting(default: Any, check: Constraint | None = None, *, smoke: Any = UNSET, quick: Any = UNSET,
            paper: Any = UNSET) -> Any:
    """A dataclass field with ``default`` (a copy of it per instance if mutable), its constraint and
    what each preset sets it to (``core.presets``: a value, ``per_size(...)`` or a function of the
    image shape)."""
    metadata = {"check": check, "presets": preset_values(smoke=smoke, quick=quick, paper=paper)}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def constraint_of(field: dataclasses.Field) -> Constraint | None:
    return field.metadata.get("check")


def show(value: Any) -> str:
    """A value as the user would write it after ``--set name=``: lists comma-separated."""
    if isinstance(value, (tuple, list)):
        return ",".join(show(v) for v in value) if value else "()"
    if isinstance(value, str):
        return value if value.strip() == value and value else repr(value)
    return str(value)


def violation(name: str, value: Any, allowed: str) -> ValueError:
    """The one message of a refused setting: ``name=value is not allowed; valid: allowed``."""
    return ValueError(f"{name}={show(value)} is not allowed; valid: {allowed}")


def check_config(cfg: Any) -> None:
    """Check every declared field of the dataclass ``cfg``; the first refused one is a ``violation``."""
    for field in dataclasses.fields(cfg):
        check = constraint_of(field)
        if check is not None:
            value = getattr(cfg, field.name)
            if not check.allows(value):
                raise violation(field.name, value, check.describe())


class Checked:
    """Mixin of config dataclasses: their declared fields are checked when they are built."""

    def __post_init__(self) -> None:
        check_config(self)
