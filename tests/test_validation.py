"""core.validation: the constraints, their one message format and the values each refuses."""

import dataclasses
import math

import pytest

from core.validation import (
    Checked,
    Choice,
    Integers,
    Interval,
    Items,
    NonNegative,
    Positive,
    check_config,
    setting,
    violation,
)


@pytest.mark.parametrize("check,text", [
    (Integers(1), "integers >= 1"),
    (Integers(0, note="0: all"), "integers >= 0 (0: all)"),
    (Positive(), "finite numbers > 0"),
    (NonNegative(), "finite numbers >= 0"),
    (Interval(0, 1, closed="left"), "finite numbers in [0, 1)"),
    (Interval(0.0, 1.0, closed="neither"), "finite numbers in (0, 1)"),
    (Interval(high=2.5, closed="neither"), "finite numbers < 2.5"),
    (Interval(), "finite numbers"),
    (Choice(("a", "b")), "a, b"),
    (Items(Integers(1), nonempty=True), "non-empty lists of integers >= 1"),
    (Items(Choice(("a", "b"))), "lists drawn from a, b"),
])
def test_descriptions(check, text):
    assert check.describe() == text


@pytest.mark.parametrize("check,good", [
    (Integers(1, 3), [1, 2, 3]),
    (Interval(0, 1, closed="left"), [0, 0.5, 0.999]),
    (Interval(0, 1, closed="right"), [1, 0.5]),
    (Choice(("a", "b")), ["a", "b"]),
    (Items(Positive(), nonempty=True), [(1.0,), (0.5, 2)]),
    (Items(Integers(1)), [(), (1, 2)]),
])
def test_bad_values_are_refused_and_good_ones_allowed(check, good):
    assert all(check.allows(v) for v in good)
    assert check.bad_values() and not any(check.allows(v) for v in check.bad_values())


def test_types_and_non_finite_numbers_are_refused():
    assert not Integers(0).allows(1.5) and not Integers(0).allows(True) and not Integers(0).allows("1")
    assert not Positive().allows(math.inf) and not Positive().allows(math.nan) and Positive().allows(3)
    assert not Items(Integers(1)).allows(1) and not Choice(("a",)).allows(1)


def test_a_choice_reads_its_source_at_each_check():
    registry = {"a": 1}
    check = Choice(registry)
    registry["b"] = 2  # registered after the config class was declared
    assert check.allows("b") and check.describe() == "a, b"


@dataclasses.dataclass(frozen=True)
class _Config(Checked):
    epochs: int = setting(10, Integers(1))
    ts: tuple[float, ...] = setting((0.5,), Items(Interval(0, 1), nonempty=True))
    name: str = setting("x", Choice(("x", "y")))
    extra: list = setting([1], Items(Integers(0)))
    free: float = 0.1


def test_check_config_names_the_field_the_value_and_what_is_allowed():
    assert _Config().extra == [1] and _Config().extra is not _Config().extra  # a mutable default is copied
    assert [f.name for f in dataclasses.fields(_Config)] == ["epochs", "ts", "name", "extra", "free"]
    for change, message in [({"epochs": 0}, "epochs=0 is not allowed; valid: integers >= 1"),
                            ({"ts": (0.0, 1.5)}, "ts=0.0,1.5 is not allowed; valid: non-empty lists of finite numbers in [0, 1]"),
                            ({"ts": ()}, "ts=() is not allowed; valid: non-empty lists of finite numbers in [0, 1]"),
                            ({"name": ""}, "name='' is not allowed; valid: x, y")]:
        with pytest.raises(ValueError) as err:
            _Config(**change)
        assert str(err.value) == message
    check_config(_Config(free=-1.0))  # an undeclared field is not checked
    assert str(violation("a", 3, "integers < b (2)")) == "a=3 is not allowed; valid: integers < b (2)"


def test_an_unknown_closed_is_refused():
    with pytest.raises(ValueError, match="closed='open' is not allowed; valid: both, left, right, neither"):
        Interval(0, 1, closed="open")
