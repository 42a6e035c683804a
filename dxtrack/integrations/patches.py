"""Replacing an attribute of the host's (a hook, a method) so that it can be undone cleanly."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any


class Patch:
    """``owner.name`` replaced by ``replacement``, which calls ``previous`` to chain.

    ``remove()`` puts the previous value back when the attribute is still ours. When something
    else replaced it after us (and may chain to us), ours stays in place but only passes calls
    on: nothing the host installed later is undone.
    """

    def __init__(self, owner: Any, name: str, replacement: Any) -> None:
        self.owner = owner
        self.name = name
        self.previous: Any = getattr(owner, name)
        self.active = True
        self._replacement = replacement
        setattr(owner, name, replacement)

    def remove(self) -> None:
        """Stop recording; restore what was there before when nothing replaced us since."""
        self.active = False
        if getattr(self.owner, self.name, None) is self._replacement:
            setattr(self.owner, self.name, self.previous)


class WhenImported(importlib.abc.MetaPathFinder):
    """Calls ``then(module)`` once the module ``name`` has been executed: now, when the program
    imported it already, else when it does (dxtrack imports nothing of the host's for this)."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.done = False
        self._name = name
        self._then = then
        module = sys.modules.get(name)
        if module is not None:
            self.done = True
            then(module)
        else:
            sys.meta_path.insert(0, self)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self._name or self.done:
            return None
        self.done = True  # once, and not for the lookup below
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        then, execute = self._then, loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            with contextlib.suppress(Exception):  # never break the host's import
                then(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def remove(self) -> None:
        """Stop waiting for the import."""
        self.done = True
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
