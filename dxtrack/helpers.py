"""``capture_errors`` and ``timer``: decorators and context managers around a block of code."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from dxtrack import capture
from dxtrack.arguments import checked_metadata

if TYPE_CHECKING:
    from dxtrack.client import Client

F = TypeVar("F", bound=Callable[..., Any])


class _Block:
    """A context manager that also decorates functions: plain, generator, ``async`` and async
    generator functions, each call entering on its own. One object may be entered by several
    threads or tasks at once, and within itself."""

    def __init__(self) -> None:
        self._entered: contextvars.ContextVar[tuple[Any, ...]] = contextvars.ContextVar(
            f"dxtrack-block-{id(self)}", default=()
        )

    def _enter(self) -> Any:
        raise NotImplementedError

    def _exit(self, entered: Any, exc: BaseException | None) -> None:
        raise NotImplementedError

    def __enter__(self) -> None:
        self._entered.set((*self._entered.get(), self._enter()))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        *outer, entered = self._entered.get()
        self._entered.set(tuple(outer))
        self._exit(entered, exc)

    def __call__(self, function: F) -> F:
        one_call = self._one_call
        if inspect.isasyncgenfunction(function):

            async def run_async_generator(*args: Any, **kwargs: Any) -> Any:
                with one_call():
                    async for item in function(*args, **kwargs):
                        yield item

            return cast(F, functools.wraps(function)(run_async_generator))
        if inspect.iscoroutinefunction(function):

            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with one_call():
                    return await function(*args, **kwargs)

            return cast(F, functools.wraps(function)(run_async))
        if inspect.isgeneratorfunction(function):

            def run_generator(*args: Any, **kwargs: Any) -> Any:
                with one_call():
                    return (yield from function(*args, **kwargs))

            return cast(F, functools.wraps(function)(run_generator))

        def run(*args: Any, **kwargs: Any) -> Any:
            with one_call():
                return function(*args, **kwargs)

        return cast(F, functools.wraps(function)(run))

    @contextlib.contextmanager
    def _one_call(self) -> Iterator[None]:
        """One call of a decorated function: entered on its own."""
        entered = self._enter()
        try:
            yield
        except BaseException as exc:
            self._exit(entered, exc)
            raise
        self._exit(entered, None)


class CaptureErrors(_Block):
    """Records an exception escaping the block (mechanism ``decorator``), then lets it go on."""

    def __init__(self, client: Client, metadata: Mapping[str, Any] | None) -> None:
        super().__init__()
        self._client = client
        self._metadata = checked_metadata(metadata) if metadata is not None else None

    def _enter(self) -> None:
        return None

    def _exit(self, entered: Any, exc: BaseException | None) -> None:
        if capture.unrecorded_error(exc):
            event = capture.exception_event(exc, capture.DECORATOR, False, self._metadata)
            self._client.record(event)


class Timer(_Block):
    """Records the seconds the block took (monotonic clock) as a metric, whether or not it
    raised."""

    def __init__(self, client: Client, metric_name: str, metadata: Mapping[str, Any] | None):
        if not isinstance(metric_name, str) or not metric_name:
            raise ValueError(f"metric_name must be a non-empty string, got {metric_name!r}")
        super().__init__()
        self._client = client
        self._name = metric_name
        self._metadata = checked_metadata(metadata) if metadata is not None else None

    def _enter(self) -> float:
        return time.monotonic()

    def _exit(self, entered: Any, exc: BaseException | None) -> None:
        elapsed = time.monotonic() - entered
        with contextlib.suppress(Exception):  # never raise into the host from here
            self._client.metric_entry(self._name, elapsed, self._metadata)
