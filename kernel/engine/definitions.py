"""What ``add_job`` accepts: checks whose errors name the field and the fix, and the
options a job gets (the kernel's defaults unless it sets its own)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import tzinfo
from typing import Any

from ..errors import InvalidJobError
from ..job import JobDefaults, JobOptions, validate_options
from ..retry import RetryPolicy
from ..schedule.triggers import CronTrigger, DateTrigger, IntervalTrigger, Trigger

__all__ = ("UNSET", "checked_arguments", "checked_trigger", "job_options")

UNSET: Any = object()
"""An option the caller did not give: the kernel's default applies."""

_TRIGGER_TYPES = (IntervalTrigger, CronTrigger, DateTrigger)


def checked_trigger(trigger: Trigger, timezone: tzinfo) -> Trigger:
    """``trigger`` if it is one (a cron trigger without a zone gets ``timezone``)."""
    if not isinstance(trigger, _TRIGGER_TYPES):
        raise InvalidJobError(
            f"trigger={trigger!r} is not a trigger; "
            "use IntervalTrigger, CronTrigger or DateTrigger"
        )
    if isinstance(trigger, CronTrigger) and trigger.timezone is None:
        return trigger.bind(timezone)
    return trigger


def checked_arguments(
    func: Callable[..., Any], job_id: str | None, name: str | None, args: Any, kwargs: Any,
    retry: Any,
) -> None:
    """Refuse a job's callable, id, name, arguments or retry policy that cannot work."""
    if not callable(func):
        raise InvalidJobError(
            f"func={func!r} is not callable; pass a function or coroutine function"
        )
    if job_id is not None and (not isinstance(job_id, str) or not job_id or len(job_id) > 200):
        raise InvalidJobError(
            f"job_id={job_id!r} must be a non-empty string of at most 200 characters"
        )
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise InvalidJobError(
            f"name={name!r} must be a string of at most 200 characters, or None for the "
            "function's name"
        )
    if not isinstance(args, (tuple, list)):
        raise InvalidJobError(f"args={args!r} must be a tuple or list of positional arguments")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise InvalidJobError(f"kwargs={kwargs!r} must be a mapping of keyword arguments")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise InvalidJobError(f"retry={retry!r} must be a RetryPolicy or None")


def job_options(
    defaults: JobDefaults, coalesce: Any, max_instances: Any, misfire_grace_time: Any,
    timeout: Any,
) -> JobOptions:
    """A job's options: each one given, else the default (:data:`UNSET` = not given)."""
    if (coalesce is UNSET and max_instances is UNSET and misfire_grace_time is UNSET
            and timeout is UNSET):
        return defaults  # jobs that keep the defaults share one options object
    values = (
        defaults.coalesce if coalesce is UNSET else coalesce,
        defaults.max_instances if max_instances is UNSET else max_instances,
        defaults.misfire_grace_time if misfire_grace_time is UNSET else misfire_grace_time,
        defaults.timeout if timeout is UNSET else timeout,
    )
    validate_options(*values)
    return JobOptions(
        coalesce=values[0], max_instances=values[1],
        misfire_grace_time=values[2], timeout=values[3],
    )
