"""lark-scheduler's kernel: an embeddable asyncio scheduler for interval, cron and
one-shot jobs, with misfire grace, coalescing, max_instances and timeouts.

Nothing here knows about Lark; the service's jobs live in :mod:`actors`.

Layout (each package a layer, using only those below it): :mod:`kernel.distributed` and
:mod:`kernel.admin` on top; :mod:`kernel.engine` (the :class:`Kernel` facade, job actors,
dispatcher, runner); :mod:`kernel.state` (the schedule state kept across restarts: its
port and stores); :mod:`kernel.observe` (events, metrics, logs, failure records);
:mod:`kernel.schedule` (pure schedule maths and the policy). Beside them the contracts
every layer shares: :mod:`kernel.clock`, :mod:`kernel.errors`, :mod:`kernel.job`,
:mod:`kernel.retry`, :mod:`kernel.coordination`, :mod:`kernel.port`, and
:mod:`kernel.testing`. ``kernel.triggers``, ``kernel.events``, ``kernel.metrics``,
``kernel.http`` and the like are the public paths of modules in those packages.
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
from .job import Job, JobDefaults
from .observe.events import (
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
from .schedule.triggers import CronTrigger, DateTrigger, IntervalTrigger, Trigger

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
