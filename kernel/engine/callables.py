"""Small caches for adding jobs: facts about callables, and shared interval triggers."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from ..job import callable_ref
from ..schedule.triggers import IntervalTrigger
from .invoke import is_coroutine_callable

__all__ = ()


class CallableInfo(NamedTuple):
    """What the kernel needs to know of a job's callable."""

    ref: str
    name: str
    is_coro: bool


def callable_info(func: Callable[..., Any]) -> CallableInfo:
    """What the kernel needs to know of a callable; cached, since many jobs share one."""
    try:
        return _cached_callable_info(func)
    except TypeError:  # unhashable callable
        return _inspect_callable(func)


def _inspect_callable(func: Callable[..., Any]) -> CallableInfo:
    ref = callable_ref(func)
    return CallableInfo(ref, sys.intern(ref.rpartition(":")[2]), is_coroutine_callable(func))


_cached_callable_info = functools.lru_cache(maxsize=1024)(_inspect_callable)


def interval_trigger(
    weeks: float, days: float, hours: float, minutes: float, seconds: float,
    start_date: datetime | None, end_date: datetime | None, jitter: float | None,
) -> IntervalTrigger:
    return IntervalTrigger(
        weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds,
        start_date=start_date, end_date=end_date, jitter=jitter,
    )


# Triggers are immutable, so jobs with the same interval share one (less memory per job,
# and no validation per add when thousands of jobs share a schedule).
shared_interval_trigger = functools.lru_cache(maxsize=4096, typed=True)(interval_trigger)
