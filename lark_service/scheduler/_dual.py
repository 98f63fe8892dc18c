"""Task functions that work both ways the seed calls them.

The seed runs a task by hand as ``sync_user_info_task()`` in plain code and as
``asyncio.run(sync_user_info_task())``. :func:`dual` makes a coroutine function do both:

* called where no event loop runs in this thread, it runs the task to completion at once
  (on a fresh loop) and answers a finished awaitable holding the result, so a plain call has
  done the work and ``asyncio.run(...)``/``await`` of the answer gives the result;
* called inside a running loop, it answers the task's own coroutine, to be awaited as usual.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Generic, ParamSpec, TypeVar

__all__ = ("Finished", "dual")

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Finished(Coroutine[Any, Any, _T], Generic[_T]):
    """A coroutine that has already run: awaiting it answers its result at once."""

    def __init__(self, result: _T) -> None:
        self.result = result

    def send(self, value: object, /) -> Any:
        raise StopIteration(self.result)

    def throw(self, typ: Any, val: Any = None, tb: Any = None, /) -> Any:
        if isinstance(typ, BaseException):
            raise typ
        raise typ if val is None else val

    def close(self) -> None:
        return None

    def __await__(self) -> Generator[Any, None, _T]:
        yield from ()  # a generator that finishes at once, with the result
        return self.result

    def __repr__(self) -> str:
        return f"<finished task: {self.result!r}>"


def dual(
    func: Callable[_P, Coroutine[Any, Any, _T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """``func`` wrapped to run at once when called outside an event loop (see module doc).

    The wrapper keeps ``func`` as ``__lark_async__`` so a scheduler registers the coroutine
    function itself.
    """

    @functools.wraps(func)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> Coroutine[Any, Any, _T]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # no loop in this thread: run it here, below
        else:
            return func(*args, **kwargs)
        # Outside the except block, so that the task's own error is not chained to the
        # "no running event loop" RuntimeError of the probe above.
        return Finished(asyncio.run(func(*args, **kwargs)))

    call.__lark_async__ = func  # type: ignore[attr-defined]
    return call
