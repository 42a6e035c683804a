"""Replacing an attribute of the host's (a hook, a method) so that it can be undone cleanly."""

from __future__ import annotations

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
