"""Prometheus metrics for the kernel, exported with aioprometheus.

:class:`SchedulerMetrics` is a kernel listener (``metrics.attach(kernel)``) that turns run
events into the seed's metrics and the ones an operator of a scheduler needs:

=================================================== ========= ==============================
name                                                kind      labels
=================================================== ========= ==============================
``scheduled_task_executions_total``                 counter   ``task_name``, ``status``
``scheduled_task_duration_seconds``                 histogram ``task_name``
``scheduled_task_lateness_seconds``                 histogram ``task_name``
``scheduled_task_missed_total``                     counter   ``task_name``
``scheduled_task_skipped_total``                    counter   ``task_name``, ``reason``
``scheduled_task_retries_total``                    counter   ``task_name``
``scheduled_task_running``                          gauge     ``task_name``
``scheduled_task_next_run_timestamp_seconds``       gauge     ``task_name``
``scheduled_task_last_success_timestamp_seconds``   gauge     ``task_name``
``scheduler_up``                                    gauge
``scheduler_build_info``                            gauge     ``version``
=================================================== ========= ==============================

``task_name`` is the job id; ``status`` is ``success`` or ``failure``; ``reason`` is
``max_instances`` or ``coalesced``. Every counter of a job starts at 0 when the job is first
seen, so ``increase()`` also counts a job's very first failure.

Recording is on the kernel's hot path, so events update plain per-job slots (a bisect and a
few additions per run); the aioprometheus collectors read those slots only when scraped.
"""

from __future__ import annotations

import importlib.metadata
from bisect import bisect_left
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from aioprometheus.collectors import Counter, Gauge, Histogram, Registry
from aioprometheus.formats.text import TEXT_CONTENT_TYPE, TextFormatter

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

__all__ = (
    "CONTENT_TYPE",
    "DURATION_BUCKETS",
    "LATENESS_BUCKETS",
    "MetricsSource",
    "SchedulerMetrics",
)

CONTENT_TYPE = TEXT_CONTENT_TYPE
"""The ``Content-Type`` of :meth:`SchedulerMetrics.render` (Prometheus text format 0.0.4)."""

# Runs last from a millisecond (a cache refresh) to an hour (a full user sync): 1-2.5-5 steps
# below a minute keep P95/P99 interpolation within a bucket of the truth.
DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
# A healthy start is sub-millisecond to a few ms late; a sick one is up to the grace time
# (60 s by default) late, or more when grace is None.
LATENESS_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0, 60.0, 300.0, 3600.0,
)  # fmt: skip

_INF = float("inf")
_Sample = tuple[dict[str, str], Any]


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


def _escape(value: str) -> str:
    # aioprometheus writes label values verbatim; the text format needs \\ \" \n escaped.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Hist:
    """One histogram series: per-bucket (not cumulative) counts, the sum and the count."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last slot is +Inf
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # bisect_left finds the first bound >= value: Prometheus buckets are "le".
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def exposition(self) -> dict[float | str, float]:
        out: dict[float | str, float] = {}
        running = 0
        for bound, n in zip((*self.bounds, _INF), self.counts, strict=True):
            running += n
            out[bound] = running
        out["count"] = self.count
        out["sum"] = self.total
        return out


class _JobSeries:
    """Every series of one job."""

    __slots__ = (
        "duration",
        "failure",
        "label",
        "last_success",
        "lateness",
        "missed",
        "next_run",
        "retries",
        "running",
        "skipped_coalesced",
        "skipped_max_instances",
        "success",
    )

    def __init__(self, job_id: str) -> None:
        self.label = _escape(job_id)
        self.success = 0
        self.failure = 0
        self.missed = 0
        self.skipped_max_instances = 0
        self.skipped_coalesced = 0
        self.retries = 0
        self.running = 0
        self.duration = _Hist(DURATION_BUCKETS)
        self.lateness = _Hist(LATENESS_BUCKETS)
        self.next_run: float | None = None
        self.last_success: float | None = None


class _Derived(Protocol):
    def __call__(self) -> list[_Sample]: ...


def _collector(base: type[Any], name: str, doc: str, registry: Registry, read: _Derived) -> None:
    # An aioprometheus collector whose samples are read from our slots at scrape time;
    # subclassing keeps the registry, the renderer and anything else built on them working.
    cls = type(f"_Derived{base.__name__}", (base,), {"get_all": lambda self: read()})
    cls(name, doc, registry=registry)


def _package_version() -> str:
    try:
        return importlib.metadata.version("lark-scheduler")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class SchedulerMetrics:
    """The kernel's Prometheus metrics, kept in an aioprometheus :class:`Registry`.

    ``registry``: where the collectors are registered; ``None`` makes a new one (reachable as
    :attr:`registry`, so an embedder can add its own metrics and have them served by the same
    ``GET /metrics``). ``version`` is the ``scheduler_build_info`` label (default: the installed
    package's version).

    The object itself is the listener: call it with an event, or :meth:`attach` it to a kernel.
    Only call it from the kernel's event loop.
    """

    def __init__(self, registry: Registry | None = None, *, version: str | None = None) -> None:
        self.registry = registry if registry is not None else Registry()
        self.version = version if version is not None else _package_version()
        self._jobs: dict[str, _JobSeries] = {}
        self._kernel: MetricsSource | None = None
        self._detach: Callable[[], None] | None = None
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
        }
        self._register()

    # -- recording (hot path) ------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """Record one kernel event."""
        handler = self._dispatch.get(event.__class__)
        if handler is not None:
            handler(event)

    def _series(self, job_id: str) -> _JobSeries:
        series = self._jobs.get(job_id)
        if series is None:
            series = self._jobs[job_id] = _JobSeries(job_id)
        return series

    def _on_started(self, event: RunStarted) -> None:
        series = self._series(event.job_id)
        series.running += 1
        if event.attempt > 1 or event.retry_of is not None:
            series.retries += 1
        elif not event.manual:
            # Only a scheduled first attempt has a meaningful lateness; a manual run or a
            # retry starts when asked, not when the trigger said.
            series.lateness.observe(event.lateness)

    def _on_succeeded(self, event: RunSucceeded) -> None:
        series = self._series(event.job_id)
        series.success += 1
        if series.running > 0:
            series.running -= 1
        series.duration.observe(event.duration)
        series.last_success = event.started_at.timestamp() + event.duration

    def _on_failed(self, event: RunFailed) -> None:
        series = self._series(event.job_id)
        series.failure += 1
        if series.running > 0:
            series.running -= 1
        series.duration.observe(event.duration)

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
        self._series(event.job_id).next_run = None if when is None else when.timestamp()

    def _on_job_removed(self, event: JobRemoved) -> None:
        # Counters and histograms stay (they are cumulative); a removed job has no next run.
        series = self._jobs.get(event.job_id)
        if series is not None:
            series.next_run = None

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
        """Every metric in :attr:`registry` in the Prometheus text format (:data:`CONTENT_TYPE`).

        Costs about 0.1 ms per job on a typical machine, paid on the loop at each scrape.
        """
        kernel = self._kernel
        if kernel is not None:
            # The kernel's own view is authoritative for the next run (it moves after every
            # fire without an event of its own).
            for series in self._jobs.values():
                series.next_run = None
            for job in kernel.get_jobs():
                when = job.next_run_time
                self._series(job.id).next_run = None if when is None else when.timestamp()
        data: bytes = self._formatter.marshall(self.registry)
        return data

    def _up_sample(self) -> list[_Sample]:
        up = self._kernel is not None and self._kernel.running
        return [({}, 1 if up else 0)]

    def _register(self) -> None:
        r = self.registry
        jobs = self._jobs
        _collector(
            Counter,
            "scheduled_task_executions_total",
            "Runs of each scheduled task that finished, by outcome.",
            r,
            lambda: [
                sample
                for s in jobs.values()
                for sample in (
                    ({"task_name": s.label, "status": "success"}, s.success),
                    ({"task_name": s.label, "status": "failure"}, s.failure),
                )
            ],
        )
        _collector(
            Histogram,
            "scheduled_task_duration_seconds",
            "How long each run of a scheduled task took, in seconds.",
            r,
            lambda: [({"task_name": s.label}, s.duration.exposition()) for s in jobs.values()],
        )
        _collector(
            Histogram,
            "scheduled_task_lateness_seconds",
            "How late each scheduled run started (start minus scheduled time), in seconds.",
            r,
            lambda: [({"task_name": s.label}, s.lateness.exposition()) for s in jobs.values()],
        )
        _collector(
            Counter,
            "scheduled_task_missed_total",
            "Scheduled runs that were later than misfire_grace_time and did not run.",
            r,
            lambda: [({"task_name": s.label}, s.missed) for s in jobs.values()],
        )
        _collector(
            Counter,
            "scheduled_task_skipped_total",
            "Scheduled runs that did not run, by reason (max_instances, coalesced).",
            r,
            lambda: [
                sample
                for s in jobs.values()
                for sample in (
                    ({"task_name": s.label, "reason": "max_instances"}, s.skipped_max_instances),
                    ({"task_name": s.label, "reason": "coalesced"}, s.skipped_coalesced),
                )
            ],
        )
        _collector(
            Counter,
            "scheduled_task_retries_total",
            "Runs that were retries of a failed run (automatic or manual).",
            r,
            lambda: [({"task_name": s.label}, s.retries) for s in jobs.values()],
        )
        _collector(
            Gauge,
            "scheduled_task_running",
            "Runs of each scheduled task in progress.",
            r,
            lambda: [({"task_name": s.label}, s.running) for s in jobs.values()],
        )
        _collector(
            Gauge,
            "scheduled_task_next_run_timestamp_seconds",
            "When each scheduled task runs next, as a Unix timestamp.",
            r,
            lambda: [
                ({"task_name": s.label}, s.next_run)
                for s in jobs.values()
                if s.next_run is not None
            ],
        )
        _collector(
            Gauge,
            "scheduled_task_last_success_timestamp_seconds",
            "When each scheduled task last finished successfully, as a Unix timestamp.",
            r,
            lambda: [
                ({"task_name": s.label}, s.last_success)
                for s in jobs.values()
                if s.last_success is not None
            ],
        )
        _collector(
            Gauge,
            "scheduler_up",
            "1 while the attached kernel is running, else 0.",
            r,
            self._up_sample,
        )
        version = _escape(self.version)
        _collector(
            Gauge,
            "scheduler_build_info",
            "The scheduler's version, as a label; the value is always 1.",
            r,
            lambda: [({"version": version}, 1)],
        )
