"""Registries of named components (methods, protocols, datasets), filled by decorators as timm's models are.

A registry belongs to a package: the first time it is asked for a name it
imports every module of that package (``pkgutil.walk_packages``), whose
decorators register what they define. Adding a component is therefore one new
module in its package; nothing lists the modules. As timm does
(``timm.models.get_model_module``...), each entry records the module that
defines it, which ``module_of(name)`` returns.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """``name -> entry`` (a class, or a loader function) and the module that defines each entry.

    ``package``: the package whose modules are imported, once, before the first look-up
    (None: the registry holds only what its callers register).
    """

    def __init__(self, kind: str, package: str | None = None):
        self.kind, self.package = kind, package
        self._entries: dict[str, T] = {}
        self._modules: dict[str, str] = {}
        self._discovered = package is None

    # -- filling ---------------------------------------------------------------------------------
    def add(self, name: str, entry: T, module: str | None = None) -> T:
        """Register ``entry`` under ``name``; ``module`` defaults to the one that defines ``entry``.

        An entry from outside the package (a test's, a plug-in's) is added after the package's
        own, so that a name it repeats is refused rather than refused later, at discovery.
        """
        module = module or getattr(entry, "__module__", None) or "?"
        if self.package is not None and not module.startswith(f"{self.package}."):
            self.discover()
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered (by {self._modules[name]})")
        self._entries[name] = entry
        self._modules[name] = module
        return entry

    def register(self, cls: T) -> T:
        """Class decorator: make ``cls`` available by its ``name`` attribute."""
        return self.add(cls.name, cls)  # type: ignore[attr-defined]

    def discover(self) -> None:
        """Import every module of the package (once), so that their decorators register what they define."""
        if self._discovered:
            return
        self._discovered = True  # first, so that a module asking for names while imported does not recurse
        try:
            package = importlib.import_module(self.package)  # type: ignore[arg-type]
            for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
                importlib.import_module(info.name)
        except BaseException:
            self._discovered = False  # a broken module: the next look-up tries again (and fails again)
            raise

    # -- reading ---------------------------------------------------------------------------------
    def names(self) -> list[str]:
        self.discover()
        return sorted(self._entries)

    def get(self, name: str) -> T:
        self.discover()
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._entries[name]

    def module_of(self, name: str) -> str:
        """The module that defines ``name`` (``methods.drl`` for ``drl``...)."""
        self.get(name)
        return self._modules[name]

    def items(self) -> Iterator[tuple[str, T]]:
        """``(name, entry)`` in name order."""
        return ((name, self._entries[name]) for name in self.names())

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._entries

    def __len__(self) -> int:
        self.discover()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, package={self.package!r}, {len(self._entries)} entries)"

