"""Workers started by a configured parent track without a ``configure()`` of their own.

``configure()`` puts the configuration, pickled, in the ``_config`` of multiprocessing's current
process object. multiprocessing copies that dict into every ``Process`` it creates (pools and
``ProcessPoolExecutor`` included) and sends it to a ``spawn`` or ``forkserver`` child through
its pipe, with the rest of the process object. When the child imports dxtrack (the main module or
the target's module does) and multiprocessing bootstraps it, dxtrack configures itself from that:
the same context, stage, run id and settings, with a producer id of its own, and delivers at the
child's exit. A ``fork`` child inherits the configured client itself.

Explicit AWS keys travel the same way, through the pipe to the child only: never through
environment variables (which every subprocess inherits) or files. Settings that cannot be
pickled (a ``papertrail_format`` lambda) are left out; the child uses the default.
"""

from __future__ import annotations

import dataclasses
import pickle
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dxtrack.log import logger

if TYPE_CHECKING:
    from dxtrack.config import Config

KEY = "dxtrack_config"
"""The key in ``multiprocessing.current_process()._config``."""


def share(config: Config | None) -> None:
    """Hand ``config`` to the processes created from now on (None: stop handing one)."""
    from multiprocessing import process

    shared: dict[str, Any] = process.current_process()._config  # type: ignore[attr-defined]
    if config is None:
        shared.pop(KEY, None)
        return
    try:
        shared[KEY] = pickle.dumps(config)
    except Exception:
        try:
            shared[KEY] = pickle.dumps(dataclasses.replace(config, papertrail_format=None))
        except Exception as exc:
            shared.pop(KEY, None)
            logger.warning("dxtrack: workers will not track by themselves: %r", exc)


class _Adopter:
    """Configures a bootstrapping multiprocessing child from its parent's configuration."""

    def __init__(
        self,
        configure: Callable[[Config], None],
        configured: Callable[[], bool],
        crashed: Callable[[BaseException], None],
    ) -> None:
        self._configure = configure
        self._configured = configured
        self._crashed = crashed

    def __call__(self, _: object = None) -> None:
        try:
            from multiprocessing import process

            if process.parent_process() is None or self._configured():
                return
            shared = process.current_process()._config.get(KEY)  # type: ignore[attr-defined]
            if shared is not None:
                config = pickle.loads(shared)
                self._configure(config)
                if config.capture_unhandled:
                    _record_crash(process.current_process(), self._crashed)
        except Exception as exc:  # a worker must start even if tracking can't
            logger.error("dxtrack: a worker could not take its parent's configuration: %r", exc)


_adopter: _Adopter | None = None


def _record_crash(worker: Any, crashed: Callable[[BaseException], None]) -> None:
    """Record an exception escaping the worker's ``run()``: multiprocessing prints it itself,
    without ``sys.excepthook``."""
    run = worker.run

    def run_and_record_crash() -> None:
        try:
            run()
        except Exception as exc:
            crashed(exc)
            raise

    worker.run = run_and_record_crash


def adopt(
    configure: Callable[[Config], None],
    configured: Callable[[], bool],
    crashed: Callable[[BaseException], None],
) -> None:
    """At ``import dxtrack``: in a multiprocessing child, configure as the parent did, now (the
    child runs already) or once multiprocessing has bootstrapped it."""
    global _adopter
    util = sys.modules.get("multiprocessing.util")
    if util is None:  # multiprocessing children import it before anything else
        return
    _adopter = _Adopter(configure, configured, crashed)
    util.register_after_fork(_adopter, _adopter)
    _adopter()
