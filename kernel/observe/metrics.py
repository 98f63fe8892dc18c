"""Prometheus metrics for the kernel, served without stopping it.

:class:`SchedulerMetrics` is a kernel listener (``metrics.attach(kernel)``) that turns run
events into the seed's metrics and the ones an operator of a scheduler needs:

=================================================== ========= ==============================
name                                                kind      labels
=================================================== ========= ==============================
``scheduled_task_executions_total``                 counter   ``task_name``, ``status``
``scheduled_task_duration_seconds``                 histogram ``task_name`` (see below)
``scheduled_task_lateness_seconds``                 histogram ``task_name`` (see below)
``scheduled_task_missed_total``                     counter   ``task_name``
``scheduled_task_skipped_total``                    counter   ``task_name``, ``reason``
``scheduled_task_retries_total``                    counter   ``task_name``
``scheduled_task_running``                          gauge     ``task_name``
``scheduled_task_next_run_timestamp_seconds``       gauge     ``task_name``
``scheduled_task_last_success_timestamp_seconds``   gauge     ``task_name``
``scheduled_task_failure_records_dropped_total``    counter
``scheduler_up``                                    gauge
``scheduler_build_info``                            gauge     ``version``
=================================================== ========= ==============================

``task_name`` is the job id; ``status`` is ``success`` or ``failure``; ``reason`` is
``max_instances`` or ``coalesced``. Every counter of a job starts at 0 when the job is first
seen, so ``increase()`` also counts a job's very first failure.
``scheduled_task_failure_records_dropped_total`` counts ``FailureRecordDropped`` events:
failure records the kernel's failure outbox dropped (it was full while the failure store
failed); the log names each one.

The two histograms have a handful of buckets each (:data:`DURATION_BUCKETS`,
:data:`LATENESS_BUCKETS`, chosen in ``kernel/observe/_exposition.py``), one series per job while
the kernel has at most ``per_job_histograms`` jobs (default
:data:`DEFAULT_PER_JOB_HISTOGRAMS`); beyond that, one series of every job together, without
the ``task_name`` label. A job costs about 1.5 KB of exposition plus 24 bytes per character
of its id with its own histograms (2.0 KB for a 22-character id), about 550 bytes plus 9 per
character without.

Recording is on the kernel's hot path, so events update plain per-job slots (a bisect and a
few additions per run). A scrape (:meth:`SchedulerMetrics.scrape`) writes the text
``jobs_per_slice`` jobs at a time and gives the event loop back between slices, so fires
due meanwhile start on time; :meth:`SchedulerMetrics.render` does the same in one go.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Callable, Generator, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from aioprometheus.collectors import Collector, Gauge, Registry
from aioprometheus.formats.text import TextFormatter

from ._exposition import (
    CONTENT_TYPE,
    DURATION_BUCKETS,
    FAMILIES,
    LATENESS_BUCKETS,
    Exposition,
    Histograms,
    JobSeries,
    chunked,
)
from .events import (
    Event,
    FailureRecordDropped,
    JobAdded,
    JobModified,
    JobRemoved,
    RunFailed,
    RunMissed,
    RunSkipped,
    RunStarted,
    RunSucceeded,
)

__all__ = (
    "CONTENT_TYPE",
    "DEFAULT_JOBS_PER_SLICE",
    "DEFAULT_PER_JOB_HISTOGRAMS",
    "DURATION_BUCKETS",
    "LATENESS_BUCKETS",
    "MetricsSource",
    "SchedulerMetrics",
    "chunked",
)

# Per-job histograms up to 1,000 jobs: 11 histogram series of ~80 bytes per job make a
# scrape of 1,000 jobs ~2 MB and ~26,000 series, about what one Prometheus target should
# carry; past it the per-job buckets are most of the exposition (and of Prometheus' memory)
# while a per-job P95 over thousands of jobs is no longer read one by one.
DEFAULT_PER_JOB_HISTOGRAMS = 1000
# 50 jobs take 0.3-0.7 ms to write on the 2-core bench machine (more when it is busy;
# bench/README.md): a fire due during a slice starts at most about that late.
DEFAULT_JOBS_PER_SLICE = 50
# With its own histograms a job writes 24 lines instead of 9: a slice then holds a third
# as many jobs, so it takes about as long.
_HISTOGRAM_SLICE_DIVISOR = 3


class _JobView(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def next_run_time(self) -> datetime | None: ...


class MetricsSource(Protocol):
    """What :meth:`SchedulerMetrics.attach` needs of a kernel."""

    @property
    def running(self) -> bool: ...

    def add_listener(self, callback: Callable[[Event], None]) -> Callable[[], None]: ...

    def get_jobs(self) -> Iterable[_JobView]: ...

    def get_job(self, job_id: str) -> _JobView:
        """The job with this id; ``LookupError`` when there is none."""
        ...


def _package_version() -> str:
    try:
        return importlib.metadata.version("lark-scheduler")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class _Reserved(Gauge):
    """Holds one of our metric names in the registry (so nothing else can register it);
    :class:`SchedulerMetrics` writes its samples itself."""

    def get_all(self) -> list[tuple[dict[str, str], Any]]:
        return []


class SchedulerMetrics:
    """The kernel's Prometheus metrics, served with the collectors of an aioprometheus
    :class:`Registry`.

    ``registry``: where an embedder's own collectors live, served by the same
    ``GET /metrics``; ``None`` makes a new one (reachable as :attr:`registry`). The
    scheduler's own names are reserved in it, so registering one of them again raises
    ``ValueError``; their samples are written by :meth:`render`/:meth:`scrape`, not by the
    registry. ``version`` is the ``scheduler_build_info`` label (default: the installed
    package's version). ``per_job_histograms``: the largest job count at which the two
    histograms have a series per job (0: always one series of every job). ``jobs_per_slice``:
    jobs written between two returns to the event loop during :meth:`scrape` (a third of
    that while the histograms are per job, as each job then writes about three times the
    lines).

    The object itself is the listener: call it with an event, or :meth:`attach` it to a kernel.
    Only call it from the kernel's event loop.
    """

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        version: str | None = None,
        per_job_histograms: int = DEFAULT_PER_JOB_HISTOGRAMS,
        jobs_per_slice: int = DEFAULT_JOBS_PER_SLICE,
    ) -> None:
        if per_job_histograms < 0:
            raise ValueError(
                f"per_job_histograms={per_job_histograms} must be at least 0 "
                "(0: one histogram of every job together)"
            )
        if jobs_per_slice < 1:
            raise ValueError(f"jobs_per_slice={jobs_per_slice} must be at least 1")
        self.registry = registry if registry is not None else Registry()
        self.version = version if version is not None else _package_version()
        self.per_job_histograms = per_job_histograms
        self.jobs_per_slice = jobs_per_slice
        self._jobs: dict[str, JobSeries] = {}
        self._records_dropped = 0
        # Series are never removed (cumulative), so the i-th of _jobs has index i.
        self._duration = Histograms(DURATION_BUCKETS)
        self._lateness = Histograms(LATENESS_BUCKETS)
        self._kernel: MetricsSource | None = None
        self._detach: Callable[[], None] | None = None
        self._scrape: asyncio.Future[list[bytes]] | None = None
        self._formatter = TextFormatter()
        self._dispatch: dict[type[Any], Callable[[Any], None]] = {
            RunStarted: self._on_started,
            RunSucceeded: self._on_succeeded,
            RunFailed: self._on_failed,
            RunMissed: self._on_missed,
            RunSkipped: self._on_skipped,
            JobAdded: self._on_job_scheduled,
            JobModified: self._on_job_scheduled,
            JobRemoved: self._on_job_removed,
            FailureRecordDropped: self._on_record_dropped,
        }
        self._own: list[Collector] = [
            _Reserved(name, doc, registry=self.registry) for name, _, doc in FAMILIES
        ]

    # -- recording (hot path) ------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """Record one kernel event."""
        handler = self._dispatch.get(event.__class__)
        if handler is not None:
            handler(event)

    def _series(self, job_id: str) -> JobSeries:
        series = self._jobs.get(job_id)
        if series is None:
            index = self._duration.add()
            self._lateness.add()
            series = self._jobs[job_id] = JobSeries(job_id, index)
        return series

    def _on_started(self, event: RunStarted) -> None:
        series = self._series(event.job_id)
        series.running += 1
        if event.attempt > 1 or event.retry_of is not None:
            series.retries += 1
        elif not event.manual:
            # Only a scheduled first attempt has a meaningful lateness; a manual run or a
            # retry starts when asked, not when the trigger said.
            self._lateness.observe(series.index, event.lateness)

    def _on_succeeded(self, event: RunSucceeded) -> None:
        series = self._series(event.job_id)
        series.success += 1
        if series.running > 0:
            series.running -= 1
        self._duration.observe(series.index, event.duration)
        series.last_success = event.started_at.timestamp() + event.duration

    def _on_failed(self, event: RunFailed) -> None:
        series = self._series(event.job_id)
        series.failure += 1
        if series.running > 0:
            series.running -= 1
        self._duration.observe(series.index, event.duration)

    def _on_missed(self, event: RunMissed) -> None:
        self._series(event.job_id).missed += 1

    def _on_skipped(self, event: RunSkipped) -> None:
        series = self._series(event.job_id)
        if event.reason == "max_instances":
            series.skipped_max_instances += 1
        else:
            series.skipped_coalesced += 1

    def _on_job_scheduled(self, event: JobAdded | JobModified) -> None:
        when = event.scheduled_at
        series = self._series(event.job_id)
        series.next_run = None if when is None else when.timestamp()
        if isinstance(event, JobAdded):
            series.removed = False

    def _on_job_removed(self, event: JobRemoved) -> None:
        # Counters and histograms stay (they are cumulative); a removed job has no next run.
        series = self._jobs.get(event.job_id)
        if series is not None:
            series.next_run = None
            series.removed = True

    def _on_record_dropped(self, event: FailureRecordDropped) -> None:
        self._records_dropped += 1

    # -- attaching -----------------------------------------------------------------------

    def attach(self, kernel: MetricsSource) -> Callable[[], None]:
        """Listen to ``kernel``'s events and read its state when scraped; returns detach."""
        if self._kernel is not None:
            raise RuntimeError("these metrics are already attached to a kernel; detach() first")
        self._kernel = kernel
        for job in kernel.get_jobs():
            self._series(job.id)
        self._detach = kernel.add_listener(self)
        return self.detach

    def detach(self) -> None:
        """Stop listening; the recorded values stay."""
        if self._detach is not None:
            self._detach()
        self._detach = None
        self._kernel = None

    # -- scraping ------------------------------------------------------------------------

    def render(self) -> bytes:
        """Every metric in the Prometheus text format (:data:`CONTENT_TYPE`), in one go.

        Blocks the loop for the whole text (about 5-15 us per job); a server should await
        :meth:`scrape` instead.
        """
        steps = self._slices()
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return b"".join(done.value)

    async def scrape(self) -> list[bytes]:
        """What :meth:`render` answers, as consecutive pieces, written ``jobs_per_slice``
        jobs at a time with the event loop given back between slices.

        Send it a chunk at a time (:func:`chunked`), giving the loop back between chunks
        too: joining and sending megabytes in one go stalls the loop for milliseconds of
        copies. Scrapes that arrive while one is being written share its answer.
        """
        if self._scrape is None or self._scrape.done():
            self._scrape = asyncio.ensure_future(self._sliced())
        # Shielded: a client that hangs up does not cancel the answer the others wait for.
        return await asyncio.shield(self._scrape)

    async def _sliced(self) -> list[bytes]:
        steps = self._slices()
        while True:
            try:
                next(steps)
            except StopIteration as done:
                pieces: list[bytes] = done.value
                return pieces
            # A bare yield to the loop (not a wait for time): fires due meanwhile run now.
            await asyncio.sleep(0)

    def _slices(self) -> Generator[None, None, list[bytes]]:
        """Writes the text, yielding after each slice of jobs; returns its pieces."""
        jobs = list(self._jobs.values())
        per_job = len(jobs) <= self.per_job_histograms
        out = Exposition(self._duration, self._lateness, per_job_histograms=per_job)
        step = self.jobs_per_slice
        if per_job:
            step = max(1, step // _HISTOGRAM_SLICE_DIVISOR)
        for start in range(0, len(jobs), step):
            chunk = jobs[start : start + step]
            kernel = self._kernel
            if kernel is not None:
                self._read_next_runs(kernel, chunk)
            out.add(chunk)
            yield
        kernel = self._kernel
        return out.finish(
            up=kernel is not None and kernel.running, version=self.version, extra=self._others(),
            records_dropped=self._records_dropped,
        )

    @staticmethod
    def _read_next_runs(kernel: MetricsSource, jobs: Sequence[JobSeries]) -> None:
        # The kernel's own view is authoritative for the next run (it moves after every fire
        # without an event of its own); a slice at a time, as get_jobs() of every job would
        # block the loop for ~3 us per job.
        for series in jobs:
            if series.removed:
                continue
            try:
                when = kernel.get_job(series.job_id).next_run_time
            except LookupError:
                series.next_run = None
                continue
            series.next_run = None if when is None else when.timestamp()

    def _others(self) -> bytes:
        """The registry's other collectors (an embedder's), rendered by aioprometheus."""
        own = {id(collector) for collector in self._own}
        lines: list[str] = []
        for collector in self.registry.get_all():
            if id(collector) not in own:
                lines += self._formatter.marshall_lines(collector)
        return "".join(f"{line}\n" for line in lines).encode()
