"""Callables by import reference, arguments as JSON, and the fire times missed while down.

Stored jobs name their callable as ``package.module:qualname`` and are found again by
importing it: no pickle, so a stored row can never execute code other than a function
the deployed code defines. A function that cannot be found that way (a lambda, a local
function, a bound method) is refused when the job is added, not when it is loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import msgspec

from ..errors import InvalidJobError
from ..job import callable_ref
from ..schedule.triggers import CronTrigger, IntervalTrigger, Trigger

__all__ = ("anchored", "import_ref", "missed_times", "storable_ref", "unanchored")

_CATCH_UP_LIMIT = 10_000


def import_ref(ref: str) -> Callable[..., Any]:
    """The callable ``package.module:qualname`` names; ImportError/AttributeError if none."""
    module_name, sep, qualname = ref.partition(":")
    if not sep or not module_name or not qualname:
        raise ImportError(f"{ref!r} is not an import reference of the form 'package.module:name'")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ImportError(f"{ref!r} names {type(obj).__name__}, which is not callable")
    func: Callable[..., Any] = obj
    return func


def storable_ref(func: Callable[..., Any]) -> str:
    """``func``'s import reference, after checking that importing it finds ``func`` again."""
    ref = callable_ref(func)
    try:
        found = import_ref(ref)
    except (ImportError, AttributeError):
        found = None
    if found is not func and getattr(func, "__wrapped_ref__", None) != ref:
        raise InvalidJobError(
            f"func={func!r} cannot be stored: a stored job names its function by import "
            f"reference ({ref!r}), and importing that does not find this function; "
            "define it at module level (no lambdas, local functions or bound methods)"
        )
    return ref


def check_json(field: str, value: object) -> None:
    """Refuse arguments that would not survive being stored as JSON."""
    try:
        msgspec.json.encode(value)
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidJobError(
            f"{field}={value!r} cannot be stored as JSON ({exc}); pass strings, numbers, "
            "booleans, None, lists and dicts of them"
        ) from None


def anchored(trigger: Trigger, now: datetime) -> Trigger:
    """An interval trigger without a start date gets one (its first fire, now + interval),
    so every replica computes the same grid of scheduled times from the stored trigger."""
    if isinstance(trigger, IntervalTrigger) and trigger.start_date is None:
        return IntervalTrigger(seconds=trigger.interval.total_seconds(),
                               start_date=now + trigger.interval, end_date=trigger.end_date,
                               jitter=trigger.jitter)
    return trigger


def unanchored(spec: dict[str, Any]) -> dict[str, Any]:
    """A trigger spec without the start date :func:`anchored` adds (to compare definitions)."""
    if spec.get("kind") == "interval":
        return {**spec, "start_date": None}
    return spec


def missed_times(
    trigger: Trigger, after: datetime, now: datetime, before: datetime | None
) -> tuple[list[datetime], int]:
    """The scheduled times in (``after``, ``now``] and before ``before`` (the first fire
    the kernel will handle itself), oldest first: at most the newest 10 000, and how many
    older ones were left out."""
    times: list[datetime] = []
    dropped = 0
    limit = now if before is None else min(now, before - timedelta(microseconds=1))
    if isinstance(trigger, IntervalTrigger):
        start = trigger.start_date
        if start is None:
            return [], 0
        step = trigger.interval
        k = 0 if after < start else (after - start) // step + 1
        if trigger.end_date is not None:
            limit = min(limit, trigger.end_date)
        last = (limit - start) // step if limit >= start else -1
        if last - k + 1 > _CATCH_UP_LIMIT:
            dropped = last - k + 1 - _CATCH_UP_LIMIT
            k = last - _CATCH_UP_LIMIT + 1
        times = [start + step * i for i in range(k, last + 1)]
    elif isinstance(trigger, CronTrigger):
        current = trigger.next_fire_time(after)
        while current is not None and current <= limit:
            times.append(current)
            current = trigger.next_fire_time(current)
        if len(times) > _CATCH_UP_LIMIT:
            dropped = len(times) - _CATCH_UP_LIMIT
            times = times[dropped:]
    # A date job's one time is the kernel's own first fire: grace applies to it there.
    return times, dropped
