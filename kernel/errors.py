"""Every exception the kernel raises on purpose lives here."""

from __future__ import annotations

__all__ = (
    "ConflictingJobIdError",
    "InvalidJobError",
    "JobBusyError",
    "JobLookupError",
    "JobTimeoutError",
    "KernelError",
    "KernelNotRunningError",
)


class KernelError(Exception):
    """Base class of the kernel's own errors."""


class InvalidJobError(KernelError, ValueError):
    """A job definition was refused: the message names the field and the fix."""


class JobLookupError(KernelError, LookupError):
    """No job has this id."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}; get_jobs() lists the registered ids")
        self.job_id = job_id


class ConflictingJobIdError(KernelError, ValueError):
    """A job with this id exists already and ``replace_existing`` was not set."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"job_id {job_id!r} is already registered; "
            "pass replace_existing=True to replace it, or choose another id"
        )
        self.job_id = job_id


class KernelNotRunningError(KernelError, RuntimeError):
    """The operation needs a started kernel."""


class JobBusyError(KernelError, RuntimeError):
    """A manual run was refused: the job already runs ``max_instances`` instances."""

    def __init__(self, job_id: str, max_instances: int) -> None:
        super().__init__(
            f"job {job_id!r} already runs {max_instances} instance(s) (max_instances); "
            "wait for it to finish or raise max_instances"
        )
        self.job_id = job_id


class JobTimeoutError(KernelError, TimeoutError):
    """A run took longer than its job's ``timeout`` and was stopped."""
