"""lark-scheduler's kernel: an embeddable asyncio scheduler for interval, cron and
one-shot jobs, with misfire grace, coalescing, max_instances and timeouts.

Nothing here knows about Lark; the service's jobs live in :mod:`actors`.
"""

from __future__ import annotations

from .clock import Clock, RealClock
from .engine.kernel import Kernel
from .errors import (
    ConflictingJobIdError,
    InvalidJobError,
    JobBusyError,
    JobLookupError,
    JobTimeoutError,
    KernelError,
    KernelNotRunningError,
)
from .events import (
    Event,
    JobAdded,
    JobModified,
    JobRemoved,
    RunFailed,
    RunMissed,
    RunSkipped,
    RunStarted,
    RunSucceeded,
)
from .job import Job, JobDefaults
from .triggers import CronTrigger, DateTrigger, IntervalTrigger, Trigger

__version__ = "0.1.0"

__all__ = (
    "Clock",
    "ConflictingJobIdError",
    "CronTrigger",
    "DateTrigger",
    "Event",
    "IntervalTrigger",
    "InvalidJobError",
    "Job",
    "JobAdded",
    "JobBusyError",
    "JobDefaults",
    "JobLookupError",
    "JobModified",
    "JobRemoved",
    "JobTimeoutError",
    "Kernel",
    "KernelError",
    "KernelNotRunningError",
    "RealClock",
    "RunFailed",
    "RunMissed",
    "RunSkipped",
    "RunStarted",
    "RunSucceeded",
    "Trigger",
    "__version__",
)
