"""Running one job call: on the loop (coroutine functions) or in a worker thread
(plain functions), with an optional timeout measured on the kernel's clock."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..clock import Clock, wait_at_most
from ..errors import JobTimeoutError

__all__ = ()


def is_coroutine_callable(func: Callable[..., Any]) -> bool:
    """True for ``async def`` functions, also behind ``functools.partial`` or ``__call__``."""
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - an async __call__ makes it a coroutine callable
    return call is not None and inspect.iscoroutinefunction(call)


async def call_job(
    clock: Clock,
    executor: ThreadPoolExecutor,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any] | None,
    is_coro: bool,
    timeout: float | None,  # noqa: ASYNC109 - measured on the injected clock, not asyncio's
    job_id: str,
) -> Any:
    """Call the job once and return its result; raise what it raised.

    A timeout cancels a coroutine run; a thread cannot be stopped, so a timed-out
    thread run is reported as failed while its thread finishes in the background.
    """
    call = _invoke(clock, executor, func, args, kwargs, is_coro)
    if timeout is None:
        return await call
    return await wait_at_most(clock, call, timeout, lambda: JobTimeoutError(
        f"job {job_id!r} ran longer than its timeout of {timeout:g} s and was stopped"
    ))


def _invoke(
    clock: Clock,
    executor: ThreadPoolExecutor,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any] | None,
    is_coro: bool,
) -> Awaitable[Any]:
    if is_coro:
        result: Awaitable[Any] = func(*args, **kwargs) if kwargs else func(*args)
        return result
    return _in_thread(clock, executor, func, args, kwargs)


async def _in_thread(
    clock: Clock,
    executor: ThreadPoolExecutor,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any] | None,
) -> Any:
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, func, *args, **(kwargs or {}))
    with clock.external_work():
        result = await loop.run_in_executor(executor, call)
    if inspect.isawaitable(result):
        # A plain function that returned an awaitable (e.g. a lambda around a coroutine).
        return await result
    return result
