"""What a benchmarked scheduler must offer the scenarios, in the scenarios' own terms."""

from __future__ import annotations

from typing import Protocol

__all__ = ("Engine", "Unsupported", "job_id")


class Unsupported(Exception):
    """This engine cannot express what the scenario asks (aiocron has no interval jobs)."""


def job_id(key: int) -> str:
    """The job id every engine that takes ids uses for the job with this key."""
    return f"j{key}"


class Engine(Protocol):
    """One scheduler under test, running on the current event loop.

    Times are monotonic seconds (``time.monotonic()``); engines that take datetimes convert
    them with the run's :class:`bench._measure.TimeBase`. Each job runs
    ``bench._body.job(key)``. Every ``add_*``, ``remove`` and ``reschedule_interval`` is a
    plain call made on the loop thread, as an application would make it.
    """

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def add_interval(self, key: int, period: float, first: float, last: float | None) -> None:
        """Fire at ``first + k * period`` for every k with that time ``<= last`` (None: forever)."""

    def add_cron(self, key: int, expr: str) -> None:
        """Fire at every wall-clock minute matching the five-field ``expr`` (UTC)."""

    def add_date(self, key: int, at: float) -> None:
        """Fire once at ``at``."""

    def remove(self, key: int) -> None:
        """Forget the job: it must not fire again."""

    def reschedule_interval(self, key: int, period: float, first: float) -> None:
        """Replace the job's schedule by ``first + k * period``, forever."""
