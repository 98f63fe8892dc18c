"""The engine's side of :class:`kernel.port.KernelPort` (built by the facade)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from ..clock import Clock
from ..observe.failures import FailureRecord
from .job_actor import JobActor
from .runner import Runner

__all__ = ("EnginePort",)


class EnginePort:
    """Implements :class:`kernel.port.KernelPort` over the registry and the runner."""

    def __init__(self, clock: Clock, find: Callable[[str], JobActor | None], runner: Runner,
                 running: Callable[[], bool]) -> None:
        self._clock = clock
        self._find = find
        self._runner = runner
        self._running = running

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def running(self) -> bool:
        return self._running()

    def catch_up(self, job_id: str, times: Sequence[datetime]) -> bool:
        job = self._find(job_id)
        if job is None:
            return False
        job.catch_up(tuple(times))
        return True

    async def report_interrupted(self, record: FailureRecord) -> None:
        await self._runner.report_failure(self._find(record.job_id), record)
