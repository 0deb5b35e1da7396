"""Registries of named components (methods, protocols), filled by class decorators as timm's models are."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """``name -> class``; the modules that define the classes are imported on first use."""

    def __init__(self, kind: str, modules: Sequence[str]):
        self.kind, self._modules, self._classes = kind, tuple(modules), {}
        self._loaded = False

    def register(self, cls: T) -> T:
        """Class decorator: make ``cls`` available by its ``name`` attribute."""
        if cls.name in self._classes:
            raise ValueError(f"{self.kind} {cls.name!r} is registered twice")
        self._classes[cls.name] = cls
        return cls

    def names(self) -> list[str]:
        self._load()
        return sorted(self._classes)

    def get(self, name: str) -> T:
        self._load()
        if name not in self._classes:
            raise KeyError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._classes[name]

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._modules:  # importing runs their @register decorators
                importlib.import_module(module)
