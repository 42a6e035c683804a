"""Workers started by a configured parent track without a ``configure()`` of their own.

``configure()`` puts the configuration, pickled, in the ``_config`` of multiprocessing's current
process object. multiprocessing copies that dict into every ``Process`` it creates (pools and
``ProcessPoolExecutor`` included) and sends it to a ``spawn`` or ``forkserver`` child through its
pipe, with the rest of the process object. Unpickling it in the child imports dxtrack and
configures it from the parent's configuration, before the worker runs: the same context, stage,
run id and settings, with a producer id of its own, and the child delivers at its exit. A
``fork`` child inherits the configured client itself.

Explicit AWS keys travel the same way, through the pipe to the child only: never through
environment variables (which every subprocess inherits) or files. When the configuration cannot
be pickled, a ``papertrail_format`` is left out (the child uses the default) and
``default_metadata`` goes as the JSON-safe values its records would show.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dxtrack import jsonsafe
from dxtrack.log import logger

if TYPE_CHECKING:
    from dxtrack.config import Config

KEY = "dxtrack_config"
"""The key in ``multiprocessing.current_process()._config``."""


class Inherited:
    """The parent's configuration in ``_config``; unpickling it configures the child."""

    def __init__(self, pickled: bytes) -> None:
        self.pickled = pickled

    def __reduce__(self) -> tuple[Callable[[bytes], Inherited], tuple[bytes]]:
        return adopt, (self.pickled,)


def share(config: Config | None) -> None:
    """Hand ``config`` to the processes created from now on (None: stop handing one)."""
    from multiprocessing import process

    shared: dict[str, Any] = process.current_process()._config  # type: ignore[attr-defined]
    if config is None:
        shared.pop(KEY, None)
        return
    try:
        pickled = pickle.dumps(config)
    except Exception:
        try:  # what cannot be pickled: a papertrail_format lambda, objects in default_metadata
            portable = dataclasses.replace(
                config,
                papertrail_format=None,
                default_metadata=jsonsafe.to_jsonable(dict(config.default_metadata)),
            )
            pickled = pickle.dumps(portable)
        except Exception as exc:
            shared.pop(KEY, None)
            logger.warning("dxtrack: workers will not track by themselves: %r", exc)
            return
    shared[KEY] = Inherited(pickled)


_hooks: dict[str, Callable[..., Any]] = {}


def set_hooks(
    configure: Callable[[Config], None], configured: Callable[[], bool], close: Callable[[], object]
) -> None:
    """How to configure this process, whether it is, and how to close it."""
    _hooks.update(configure=configure, configured=configured, close=close)


def adopt(pickled: bytes) -> Inherited:
    """In a child unpickling its process object: configure as the parent was (unless this
    process is configured already, as a fork child is)."""
    inherited = Inherited(pickled)
    try:
        if not _hooks:
            from dxtrack import api

            api.worker_hooks()
        if _hooks["configured"]():
            return inherited
        config: Config = pickle.loads(pickled)
        _hooks["configure"](config)
        import multiprocessing.util

        # spawn and forkserver children skip multiprocessing's after-fork step, and a
        # forkserver child ends with os._exit(): close from the worker's own finalizers
        multiprocessing.util.Finalize(adopt, _hooks["close"], exitpriority=100)
    except Exception as exc:  # a worker must start even if tracking can't
        logger.error("dxtrack: a worker could not take its parent's configuration: %r", exc)
    return inherited
