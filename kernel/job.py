"""Jobs: the options every job has, their defaults, and the public view of a job."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeGuard

import msgspec

from .errors import InvalidJobError

if TYPE_CHECKING:
    from .retry import RetryPolicy
    from .schedule.triggers import Trigger

__all__ = ("Job", "JobDefaults", "JobOptions", "callable_ref")


class JobDefaults(msgspec.Struct, frozen=True, kw_only=True):
    """Options a job gets unless it sets its own (the seed's APScheduler ``job_defaults``).

    ``misfire_grace_time`` is in seconds; ``None`` runs a late fire however late.
    ``timeout`` is in seconds; ``None`` lets a run take as long as it takes.
    """

    coalesce: bool = True
    max_instances: int = 1
    misfire_grace_time: float | None = 60
    timeout: float | None = None

    def __post_init__(self) -> None:
        validate_options(
            self.coalesce, self.max_instances, self.misfire_grace_time, self.timeout
        )


# A job's effective options have the same fields; jobs that keep the defaults share
# one instance, which keeps an idle job small.
JobOptions = JobDefaults


def validate_options(
    coalesce: object, max_instances: object, misfire_grace_time: object, timeout: object
) -> None:
    """Refuse option values with a message that names the field and the fix."""
    if not isinstance(coalesce, bool):
        raise InvalidJobError(f"coalesce={coalesce!r} must be True or False")
    if isinstance(max_instances, bool) or not isinstance(max_instances, int) or max_instances < 1:
        raise InvalidJobError(
            f"max_instances={max_instances!r} must be a whole number of at least 1 "
            "(1 = never run two instances of the job at once)"
        )
    # nan compares false with everything and inf never ends: both need saying explicitly.
    if misfire_grace_time is not None and not (
        _seconds(misfire_grace_time) and 0 <= misfire_grace_time
    ):
        raise InvalidJobError(
            f"misfire_grace_time={misfire_grace_time!r} must be a finite number of seconds "
            ">= 0, or None to run late fires however late"
        )
    if timeout is not None and not (_seconds(timeout) and timeout > 0):
        raise InvalidJobError(
            f"timeout={timeout!r} must be a finite number of seconds > 0, or None for no "
            "timeout"
        )


def _seconds(value: object) -> TypeGuard[int | float]:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    )


def callable_ref(func: Callable[..., Any]) -> str:
    """``module:qualname`` of a callable, as shown in listings (and stored by job stores)."""
    module = getattr(func, "__module__", None) or "?"
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if name is None:
        inner = getattr(func, "func", None)  # functools.partial
        return callable_ref(inner) if callable(inner) else f"{module}:{type(func).__name__}"
    return f"{module}:{name}"


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of a registered job, as ``get_jobs()`` and ``get_job()`` answer."""

    id: str
    name: str
    trigger: Trigger
    next_run_time: datetime | None
    paused: bool
    func_ref: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    coalesce: bool
    max_instances: int
    misfire_grace_time: float | None
    timeout: float | None
    running: int
    retry: RetryPolicy | None = None
