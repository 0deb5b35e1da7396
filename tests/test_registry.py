"""The Registry: entries found by importing every module of their package, each with its defining module."""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
import textwrap
from pathlib import Path

import pytest

from core.registry import Registry
from datasets import DATASETS
from methods.base import METHODS
from protocols.base import PROTOCOLS


def _modules(package: str) -> dict[str, Path]:
    pkg = importlib.import_module(package)
    return {info.name: Path(info.module_finder.path) / (info.name.rpartition(".")[2] + ".py")
            for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}.") if not info.ispkg}


@pytest.mark.parametrize("registry,decorator", [(METHODS, "@register_method"), (PROTOCOLS, "@register_protocol"),
                                                (DATASETS, "@register_dataset(")],
                         ids=["methods", "protocols", "datasets"])
def test_discovery_finds_every_module_that_registers_something(registry: Registry, decorator: str) -> None:
    """Read the sources, not the registry: every module of the package whose text uses the decorator
    is the defining module of some entry, and every entry is defined in a module of the package."""
    using = {name for name, path in _modules(registry.package).items()
             if re.search(rf"^{re.escape(decorator)}", path.read_text(), re.M)}
    defining = {registry.module_of(name) for name in registry.names()}
    assert using and defining == using


def test_registry_of_a_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "plugins_under_test"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from core.registry import Registry
        THINGS = Registry("thing", package="plugins_under_test")
    """))
    (pkg / "helpers.py").write_text("VALUE = 1\n")
    for module, names in (("a", ("alpha", "beta")), ("sub/c", ("gamma",))):
        (pkg / f"{module}.py").write_text("from plugins_under_test import THINGS\n" + "".join(
            f"@THINGS.register\nclass C{i}:\n    name = {n!r}\n" for i, n in enumerate(names)))
    (pkg / "sub" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        things = importlib.import_module("plugins_under_test").THINGS
        assert things.names() == ["alpha", "beta", "gamma"]  # the first look-up imported every module
        assert [things.module_of(n) for n in things.names()] == [
            "plugins_under_test.a", "plugins_under_test.a", "plugins_under_test.sub.c"]
        assert things.get("gamma").__module__ == "plugins_under_test.sub.c" and "beta" in things
        assert len(things) == 3 and [n for n, _ in things.items()] == things.names()
        with pytest.raises(KeyError, match="unknown thing 'delta'; valid: alpha, beta, gamma"):
            things.get("delta")

        class Outside:
            name = "alpha"

        with pytest.raises(ValueError, match="thing 'alpha' is already registered \\(by plugins_under_test.a\\)"):
            things.register(Outside)
        Outside.name = "delta"
        assert things.register(Outside) is Outside and things.module_of("delta") == __name__
    finally:
        for name in [m for m in sys.modules if m.startswith("plugins_under_test")]:
            del sys.modules[name]


def test_an_entry_from_outside_the_package_is_added_after_the_package_s_own(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Registered before any look-up, a repeated name is refused then, not later at discovery."""
    pkg = tmp_path / "early_plugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from core.registry import Registry\nTHINGS = Registry('thing', package='early_plugins')\n")
    (pkg / "one.py").write_text("from early_plugins import THINGS\n\ndef one():\n    return 1\n\nTHINGS.add('one', one)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        things = importlib.import_module("early_plugins").THINGS
        with pytest.raises(ValueError, match="already registered \\(by early_plugins.one\\)"):
            things.add("one", print, module="somewhere.else")
        assert things.get("one")() == 1
    finally:
        for name in [m for m in sys.modules if m.startswith("early_plugins")]:
            del sys.modules[name]


def test_a_registry_without_a_package_holds_what_is_added() -> None:
    reg: Registry = Registry("widget")
    reg.add("w", int, module="widgets.w")
    assert reg.names() == ["w"] and reg.module_of("w") == "widgets.w" and reg.get("w") is int
