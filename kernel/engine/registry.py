"""The registry of jobs by id: the one piece of kernel state other threads reach.

``add_*``, ``remove_job``, ``pause_job`` and friends may be called from any thread; they
change the registry under its lock and hand the effect to the loop thread.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

from ..errors import ConflictingJobIdError, JobLookupError

__all__ = ("Registry",)

J = TypeVar("J")


class Registry(Generic[J]):
    """Jobs by id, in the order they were added. Every method is thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._jobs: dict[str, J] = {}

    def get(self, job_id: str) -> J | None:
        with self.lock:
            return self._jobs.get(job_id)

    def require(self, job_id: str) -> J:
        """The job with this id; ``JobLookupError`` if there is none."""
        with self.lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobLookupError(job_id)
        return job

    def put(self, job_id: str, job: J, *, replace: bool) -> J | None:
        """Register ``job``; the one it replaced (``ConflictingJobIdError`` unless
        ``replace``)."""
        with self.lock:
            old = self._jobs.get(job_id)
            if old is not None and not replace:
                raise ConflictingJobIdError(job_id)
            self._jobs[job_id] = job
        return old

    def pop(self, job_id: str) -> J | None:
        with self.lock:
            return self._jobs.pop(job_id, None)

    def discard(self, job_id: str, job: J) -> None:
        """Unregister ``job`` if it is still the one under ``job_id``."""
        with self.lock:
            if self._jobs.get(job_id) is job:
                del self._jobs[job_id]

    def snapshot(self) -> list[J]:
        with self.lock:
            return list(self._jobs.values())

    def __len__(self) -> int:
        return len(self._jobs)
