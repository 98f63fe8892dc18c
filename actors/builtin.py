"""The four built-in jobs as module-level functions, for kernels that store their jobs.

A :class:`kernel.distributed.persistent.PersistentKernel` stores each job's function as
an import reference (``actors.builtin:sync_user_info``) and a RabbitMQ worker imports it
by that reference, so the jobs cannot be bound methods of a
:class:`actors.service.LarkService`. These functions run on the service bound in this
process instead::

    async with LarkService(config) as service:
        with builtin.bound(service):
            ...  # the kernel (or a worker) calls actors.builtin:health_check etc.

:meth:`LarkService.register_jobs` binds its service when the kernel stores its jobs, and
the service unbinds itself when it closes. One service is bound per process (``serve``
and ``worker`` each run one); a job that runs while none is bound fails saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from actors.jobs import CleanupReport, ExpiryReport, HealthReport, SyncReport
    from actors.service import LarkService

__all__ = (
    "bind",
    "bound",
    "cancel_running",
    "check_token_expiry",
    "cleanup_expired_tokens",
    "health_check",
    "sync_user_info",
    "unbind",
)

T = TypeVar("T")

_service: LarkService | None = None
_running: set[asyncio.Task[object]] = set()


def bind(service: LarkService) -> None:
    """Make ``service`` the one the built-in jobs of this process run on."""
    global _service
    _service = service


def unbind(service: LarkService) -> None:
    """Forget ``service`` if it is the bound one (a later binding is left alone)."""
    global _service
    if _service is service:
        _service = None


@contextmanager
def bound(service: LarkService) -> Iterator[LarkService]:
    """:func:`bind` ``service`` while inside."""
    bind(service)
    try:
        yield service
    finally:
        unbind(service)


def _current() -> LarkService:
    if _service is None:
        raise RuntimeError(
            "no Lark service is running in this process: built-in jobs run inside "
            "`lark-scheduler serve` or `lark-scheduler worker`"
        )
    return _service


def cancel_running() -> int:
    """Cancel the built-in job runs in progress in this process (a worker whose shutdown
    grace is over); answer how many."""
    tasks = [task for task in _running if not task.done()]
    for task in tasks:
        task.cancel()
    return len(tasks)


async def _run(job: Callable[[LarkService], Awaitable[T]]) -> T:
    # Remembered so that a worker can cancel its runs when its grace is over: the
    # worker runs each message in a task of its own, which it does not expose.
    task = asyncio.current_task()
    if task is not None:
        _running.add(task)
    try:
        return await job(_current())
    finally:
        if task is not None:
            _running.discard(task)


async def sync_user_info() -> SyncReport:
    """:meth:`LarkService.sync_user_info` on the bound service."""
    return await _run(lambda service: service.sync_user_info())


async def check_token_expiry() -> ExpiryReport:
    """:meth:`LarkService.check_token_expiry` on the bound service."""
    return await _run(lambda service: service.check_token_expiry())


async def cleanup_expired_tokens() -> CleanupReport:
    """:meth:`LarkService.cleanup_expired_tokens` on the bound service."""
    return await _run(lambda service: service.cleanup_expired_tokens())


async def health_check() -> HealthReport:
    """:meth:`LarkService.health_check` on the bound service."""
    return await _run(lambda service: service.health_check())
