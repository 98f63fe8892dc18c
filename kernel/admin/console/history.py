"""Each job's recent runs, kept in memory from the kernel's events, for the console.

:class:`RunHistory` listens to a kernel (``kernel.add_listener``) and keeps, per job, a ring
of at most ``size`` :class:`RunEntry` (newest last): scheduled time, start, duration,
outcome, lateness. Memory is bounded: ``size`` entries of a few hundred bytes per job that
has run; a job that never ran costs nothing, and a removed job's ring is dropped. It lives
outside the kernel and sees only public events, so it knows the runs since it was
attached (not those of another process, nor those before a restart).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Literal, Protocol

import msgspec

from kernel.events import (
    Event,
    JobRemoved,
    RunFailed,
    RunMissed,
    RunSkipped,
    RunStarted,
    RunSucceeded,
)

__all__ = (
    "DEFAULT_HISTORY_SIZE",
    "EventSource",
    "Outcome",
    "RunEntry",
    "RunHistory",
    "percentile",
)

#: Runs kept per job unless told otherwise.
DEFAULT_HISTORY_SIZE = 50
_MAX_HISTORY_SIZE = 10_000

Outcome = Literal["running", "succeeded", "failed", "timed out", "missed", "skipped"]


class EventSource(Protocol):
    """What the history needs of a kernel (``kernel.Kernel`` has it)."""

    def add_listener(self, callback: Callable[[Event], None]) -> Callable[[], None]: ...


class RunEntry(msgspec.Struct, kw_only=True, eq=False, gc=False):
    """One run (or a scheduled time that did not run: ``missed``, ``skipped``).

    ``scheduled_at`` is ``None`` for a manual run; ``lateness`` (seconds, start minus
    scheduled time) is ``None`` for a manual run and for a run whose start was not seen;
    ``duration`` is ``None`` until it ends; ``detail`` says why it was skipped, or the
    exception type of a failure.

    Not tracked by the cyclic garbage collector (``gc=False``: every field is a string,
    number, datetime or None, so an entry can never be part of a reference cycle). A
    history holds up to ``size`` entries per job, each living for ``size`` runs: at 10,000
    jobs firing every second they were about one object per fire promoted to the oldest
    generation, the bulk of what each full collection pass walked (see
    bench/latest/hot-path.md).
    """

    run_id: str | None
    scheduled_at: datetime | None
    started_at: datetime | None
    outcome: Outcome
    lateness: float | None = None
    duration: float | None = None
    manual: bool = False
    retry_of: str | None = None
    detail: str = ""

    def __repr__(self) -> str:
        return f"RunEntry(run_id={self.run_id!r}, outcome={self.outcome!r})"


class RunHistory:
    """The last ``size`` runs of every job that ran since :meth:`attach`."""

    def __init__(self, size: int = DEFAULT_HISTORY_SIZE) -> None:
        valid = isinstance(size, int) and not isinstance(size, bool)
        if not valid or not 1 <= size <= _MAX_HISTORY_SIZE:
            raise ValueError(
                f"history size {size!r} must be a whole number of runs per job from 1 to "
                f"{_MAX_HISTORY_SIZE}"
            )
        self.size = size
        self._runs: dict[str, deque[RunEntry]] = {}
        self._open: dict[str, RunEntry] = {}  # run id -> its entry, while it runs
        self._detach: Callable[[], None] | None = None

    # -- attaching -----------------------------------------------------------------------

    def attach(self, kernel: EventSource) -> None:
        """Start recording ``kernel``'s runs."""
        if self._detach is not None:
            raise RuntimeError("this history is already attached; detach() first")
        self._detach = kernel.add_listener(self)

    def detach(self) -> None:
        """Stop recording; what was recorded stays."""
        if self._detach is not None:
            self._detach()
        self._detach = None

    # -- reading -------------------------------------------------------------------------

    def runs(self, job_id: str) -> Sequence[RunEntry]:
        """The job's recorded runs, oldest first."""
        return tuple(self._runs.get(job_id, ()))

    def last(self, job_id: str) -> RunEntry | None:
        """The job's newest run that has ended (``None`` when none has)."""
        for entry in reversed(self._runs.get(job_id, ())):
            if entry.outcome not in ("running", "skipped"):
                return entry
        return None

    def lateness(self, job_id: str) -> list[float]:
        """Lateness (seconds) of the job's recorded scheduled runs that started or missed."""
        return [
            e.lateness
            for e in self._runs.get(job_id, ())
            if e.lateness is not None and not e.manual
        ]

    def jobs(self) -> Iterator[str]:
        """Ids of the jobs with recorded runs."""
        return iter(tuple(self._runs))

    # -- recording -----------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            entry = RunEntry(
                run_id=event.run_id,
                scheduled_at=event.scheduled_at,
                started_at=event.started_at,
                outcome="running",
                lateness=None if event.manual else event.lateness,
                manual=event.manual,
                retry_of=event.retry_of,
            )
            self._open[event.run_id] = entry
            self._add(event.job_id, entry)
        elif isinstance(event, RunSucceeded | RunFailed):
            self._ended(event)
        elif isinstance(event, RunMissed):
            self._add(event.job_id, RunEntry(
                run_id=None, scheduled_at=event.scheduled_at, started_at=None,
                outcome="missed", lateness=event.lateness,
            ))
        elif isinstance(event, RunSkipped):
            self._add(event.job_id, RunEntry(
                run_id=None, scheduled_at=event.scheduled_at, started_at=None,
                outcome="skipped", detail=event.reason.replace("_", " "),
            ))
        elif isinstance(event, JobRemoved):
            # Its runs still going stay in _open: their end must not start a new ring.
            self._runs.pop(event.job_id, None)

    def _ended(self, event: RunSucceeded | RunFailed) -> None:
        entry = self._open.pop(event.run_id, None)
        if entry is None:  # started before this history was attached
            entry = RunEntry(
                run_id=event.run_id, scheduled_at=event.scheduled_at,
                started_at=event.started_at, outcome="running", manual=event.manual,
                retry_of=event.retry_of,
            )
            self._add(event.job_id, entry)
        entry.duration = event.duration
        if isinstance(event, RunFailed):
            entry.outcome = "timed out" if event.timed_out else "failed"
            entry.detail = event.exc_type
        else:
            entry.outcome = "succeeded"

    def _add(self, job_id: str, entry: RunEntry) -> None:
        ring = self._runs.get(job_id)
        if ring is None:
            ring = self._runs[job_id] = deque(maxlen=self.size)
        # A run pushed out while still running stays in _open until it ends: its end then
        # updates the entry nobody shows any more, rather than adding it again.
        ring.append(entry)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, nearest rank) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
