"""The scheduler's series and the Prometheus text format (0.0.4) they are written in.

:class:`JobSeries` holds one job's counters and gauges and :class:`Histograms` every job's
histograms (both updated by ``SchedulerMetrics`` on the kernel's hot path);
:class:`Exposition` writes a scrape a slice of jobs at a time, so the caller can give the
event loop back between slices. The text is written here rather than
by aioprometheus because aioprometheus builds a dict and a formatted line through several
calls per sample (about 10x slower, see ``bench/metrics_cost.py``) and can only render a
collector whole, never a slice of it.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import accumulate

__all__ = (
    "CHUNK",
    "CONTENT_TYPE",
    "DURATION_BUCKETS",
    "FAMILIES",
    "LATENESS_BUCKETS",
    "Exposition",
    "Histograms",
    "JobSeries",
    "chunked",
    "escape_label",
    "number",
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CHUNK = 64 * 1024
"""How many bytes :func:`chunked` puts in a chunk, at least (one write to a socket)."""

# What an operator asks of a run's duration, one bucket per answer (a handful keeps a job's
# exposition under 2 KB; a quantile interpolates inside a bucket, so each bound is a question):
#   0.1 s   a quick job (one API call, a cache refresh)
#   1 s     a few calls
#   10 s    a batch (the health check's probes time out at 5 s)
#   60 s    a minute, the shortest schedule interval: a longer run overlaps its next fire
#   600 s   a long sync; beyond ten minutes a run is probably stuck (give the job a timeout)
DURATION_BUCKETS: tuple[float, ...] = (0.1, 1.0, 10.0, 60.0, 600.0)
# How late a scheduled start was, one bucket per state of the scheduler:
#   0.005 s  on time (the kernel's p99 is about 1 ms on an idle 2-core machine)
#   0.1 s    a hiccup: a GC pass or a short blocking call on the loop
#   5 s      the loop is overloaded or blocked; above it the ScheduledTaskLate alert fires
#   60 s     the default misfire_grace_time: later fires are missed, unless grace is None
# The alert needs a bound above its threshold: a quantile in the +Inf bucket reads as the
# highest finite bound, so with 5 s last it could never be above 5 s.
LATENESS_BUCKETS: tuple[float, ...] = (0.005, 0.1, 5.0, 60.0)

_INF = math.inf


def escape_label(value: str) -> str:
    """A label value escaped for the text format (``\\``, ``"`` and newlines)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(value: float) -> str:
    """A sample value as the text format spells it (``+Inf``, ``-Inf``, ``NaN``)."""
    text = repr(value)
    if text[-1] in "fn":  # inf, -inf, nan: the only reprs of a number ending so
        return _SPECIAL[text]
    return text


_SPECIAL = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}


class Histograms:
    """Every job's histogram over the same bounds, in three flat lists indexed by the job's
    number: per-bucket counts (``width`` per job, not cumulative, +Inf last), sums, counts.

    Flat lists rather than objects per job: each of those would be tracked by the cyclic
    garbage collector, and every full collection, a pause of the whole loop, walks them
    all (at 10k jobs, a list and a histogram object per histogram per job were 40,000
    objects, twice the kernel's own). Plain lists keep the hot path as cheap as a slot.
    """

    __slots__ = ("bounds", "counts", "sums", "totals", "width")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.width = len(bounds) + 1
        self.counts: list[int] = []
        self.sums: list[float] = []
        self.totals: list[int] = []

    def add(self) -> int:
        """Room for one more job's histogram; its number."""
        self.counts.extend([0] * self.width)
        self.sums.append(0.0)
        self.totals.append(0)
        return len(self.totals) - 1

    def observe(self, job: int, value: float) -> None:
        """Count one observation of job number ``job`` (a bisect and three additions)."""
        # bisect_left finds the first bound >= value: Prometheus buckets are "le".
        self.counts[job * self.width + bisect_left(self.bounds, value)] += 1
        self.sums[job] += value
        self.totals[job] += 1

    def counts_of(self, job: int) -> list[int]:
        """Job number ``job``'s per-bucket counts (a copy)."""
        return self.counts[job * self.width : (job + 1) * self.width]

    def summed(self, first: int, end: int) -> tuple[list[int], float, int]:
        """Counts, sum and count of jobs ``first`` to ``end - 1`` together."""
        w = self.width
        counts = [sum(self.counts[first * w + k : end * w : w]) for k in range(w)]
        return counts, sum(self.sums[first:end]), sum(self.totals[first:end])


class JobSeries:
    """Every series of one job but its histograms (in :class:`Histograms`, at ``index``),
    and its label written once."""

    __slots__ = (
        "failure",
        "index",
        "job_id",
        "label",
        "last_success",
        "missed",
        "next_run",
        "removed",
        "retries",
        "running",
        "skipped_coalesced",
        "skipped_max_instances",
        "success",
    )

    def __init__(self, job_id: str, index: int) -> None:
        self.job_id = job_id
        self.label = f'task_name="{escape_label(job_id)}"'  # the seed's label
        self.index = index
        self.success = 0
        self.failure = 0
        self.missed = 0
        self.skipped_max_instances = 0
        self.skipped_coalesced = 0
        self.retries = 0
        self.running = 0
        self.next_run: float | None = None
        self.last_success: float | None = None
        self.removed = False


# name, type, help; in the order they are written.
FAMILIES: tuple[tuple[str, str, str], ...] = (
    (
        "scheduled_task_executions_total",
        "counter",
        "Runs of each scheduled task that finished, by outcome.",
    ),
    (
        "scheduled_task_duration_seconds",
        "histogram",
        "How long each run of a scheduled task took, in seconds.",
    ),
    (
        "scheduled_task_lateness_seconds",
        "histogram",
        "How late each scheduled run started (start minus scheduled time), in seconds.",
    ),
    (
        "scheduled_task_missed_total",
        "counter",
        "Scheduled runs that were later than misfire_grace_time and did not run.",
    ),
    (
        "scheduled_task_skipped_total",
        "counter",
        "Scheduled runs that did not run, by reason (max_instances, coalesced).",
    ),
    (
        "scheduled_task_retries_total",
        "counter",
        "Runs that were retries of a failed run (automatic or manual).",
    ),
    ("scheduled_task_running", "gauge", "Runs of each scheduled task in progress."),
    (
        "scheduled_task_next_run_timestamp_seconds",
        "gauge",
        "When each scheduled task runs next, as a Unix timestamp.",
    ),
    (
        "scheduled_task_last_success_timestamp_seconds",
        "gauge",
        "When each scheduled task last finished successfully, as a Unix timestamp.",
    ),
    (
        "scheduled_task_failure_records_dropped_total",
        "counter",
        "Failure records dropped because the failure outbox was full while the store failed.",
    ),
    ("scheduler_up", "gauge", "1 while the attached kernel is running, else 0."),
    (
        "scheduler_build_info",
        "gauge",
        "The scheduler's version, as a label; the value is always 1.",
    ),
)
_EXECUTIONS, _DURATION, _LATENESS, _MISSED, _SKIPPED, _RETRIES = range(6)
_RUNNING, _NEXT_RUN, _LAST_SUCCESS, _DROPPED, _UP, _BUILD_INFO = range(6, 12)


def _header(name: str, kind: str, doc: str) -> bytes:
    return f"# HELP {name} {doc}\n# TYPE {name} {kind}\n".encode()


_HEADERS = tuple(_header(*family) for family in FAMILIES)


def _executions(s: JobSeries) -> str:
    return (
        f'scheduled_task_executions_total{{status="success",{s.label}}} {s.success}\n'
        f'scheduled_task_executions_total{{status="failure",{s.label}}} {s.failure}\n'
    )


def _missed(s: JobSeries) -> str:
    return f"scheduled_task_missed_total{{{s.label}}} {s.missed}\n"


def _skipped(s: JobSeries) -> str:
    return (
        f'scheduled_task_skipped_total{{reason="max_instances",{s.label}}} '
        f"{s.skipped_max_instances}\n"
        f'scheduled_task_skipped_total{{reason="coalesced",{s.label}}} {s.skipped_coalesced}\n'
    )


def _retries(s: JobSeries) -> str:
    return f"scheduled_task_retries_total{{{s.label}}} {s.retries}\n"


def _running(s: JobSeries) -> str:
    return f"scheduled_task_running{{{s.label}}} {s.running}\n"


def _next_run(s: JobSeries) -> str:
    if s.next_run is None:
        return ""
    return f"scheduled_task_next_run_timestamp_seconds{{{s.label}}} {number(s.next_run)}\n"


def _last_success(s: JobSeries) -> str:
    if s.last_success is None:
        return ""
    return (
        f"scheduled_task_last_success_timestamp_seconds{{{s.label}}} {number(s.last_success)}\n"
    )


_ROWS = (
    (_EXECUTIONS, _executions),
    (_MISSED, _missed),
    (_SKIPPED, _skipped),
    (_RETRIES, _retries),
    (_RUNNING, _running),
    (_NEXT_RUN, _next_run),
    (_LAST_SUCCESS, _last_success),
)


class _HistWriter:
    """Writes one histogram family: a series per job, or one of every job together."""

    __slots__ = ("count", "counts", "family", "hists", "le", "name", "total")

    def __init__(self, family: int, hists: Histograms) -> None:
        self.family = family
        self.name = FAMILIES[family][0]
        self.hists = hists
        self.le = tuple(f'le="{number(b)}"' for b in (*hists.bounds, _INF))
        self.counts = [0] * hists.width
        self.total = 0.0
        self.count = 0

    def series(self, counts: list[int], total: float, count: int, label: str) -> str:
        """The lines of one series; ``label`` is ``task_name="..."`` or empty."""
        name = self.name
        # Labels in name order, as aioprometheus wrote them: le before task_name.
        closing = f",{label}}} " if label else "} "
        selector = f"{{{label}}}" if label else ""
        buckets = "".join(
            [
                f"{name}_bucket{{{le}{closing}{n}\n"
                for le, n in zip(self.le, accumulate(counts), strict=True)
            ]
        )
        return f"{buckets}{name}_sum{selector} {number(total)}\n{name}_count{selector} {count}\n"

    def job(self, s: JobSeries) -> str:
        """One job's series."""
        h, i = self.hists, s.index
        return self.series(h.counts_of(i), h.sums[i], h.totals[i], s.label)

    def accumulate(self, jobs: Sequence[JobSeries]) -> None:
        """Add these jobs (consecutive numbers) to the all-jobs series."""
        first = jobs[0].index
        counts, total, count = self.hists.summed(first, first + len(jobs))
        self.counts = [a + b for a, b in zip(self.counts, counts, strict=True)]
        self.total += total
        self.count += count

    def aggregate(self) -> str:
        """The all-jobs series accumulated so far, without a ``task_name`` label."""
        return self.series(self.counts, self.total, self.count, "")


class Exposition:
    """One scrape's text, written a slice of jobs at a time.

    Call :meth:`add` with consecutive slices of the jobs, then :meth:`finish`. Every family's
    lines stay together (the format requires it): each slice appends to every family's part.
    Each job's values are read in one go, so its buckets, sum and count agree; with
    ``per_job_histograms=False`` the two histograms are written once, summed over every job,
    without the ``task_name`` label.
    """

    __slots__ = ("_duration", "_lateness", "_parts", "per_job_histograms")

    def __init__(
        self, duration: Histograms, lateness: Histograms, *, per_job_histograms: bool
    ) -> None:
        self.per_job_histograms = per_job_histograms
        self._parts: list[list[bytes]] = [[] for _ in FAMILIES]
        self._duration = _HistWriter(_DURATION, duration)
        self._lateness = _HistWriter(_LATENESS, lateness)

    def add(self, jobs: Sequence[JobSeries]) -> None:
        """Write the series of ``jobs``: a slice of consecutively numbered jobs, each once
        per scrape."""
        parts = self._parts
        for family, row in _ROWS:
            parts[family].append("".join(map(row, jobs)).encode())
        for writer in (self._duration, self._lateness):
            if self.per_job_histograms:
                parts[writer.family].append("".join(map(writer.job, jobs)).encode())
            elif jobs:
                writer.accumulate(jobs)

    def finish(
        self, *, up: bool, version: str, extra: bytes = b"", records_dropped: int = 0
    ) -> list[bytes]:
        """The whole text, in order, as the pieces written (each family's header, then its
        part of every slice), then ``extra`` (other collectors). Join them with
        :func:`chunked` a chunk at a time, not all at once: joining megabytes is
        milliseconds of copies and page faults in one go."""
        parts = self._parts
        if not self.per_job_histograms:
            for writer in (self._duration, self._lateness):
                parts[writer.family].append(writer.aggregate().encode())
        parts[_DROPPED].append(
            f"scheduled_task_failure_records_dropped_total {records_dropped}\n".encode()
        )
        parts[_UP].append(f"scheduler_up {1 if up else 0}\n".encode())
        parts[_BUILD_INFO].append(
            f'scheduler_build_info{{version="{escape_label(version)}"}} 1\n'.encode()
        )
        pieces = [p for header, part in zip(_HEADERS, parts, strict=True) for p in (header, *part)]
        pieces.append(extra)
        return pieces


def chunked(pieces: Sequence[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """``pieces`` joined into consecutive chunks of at least ``size`` bytes (the last may be
    shorter), one join per chunk as the caller asks for it."""
    start, pending = 0, 0
    for end, piece in enumerate(pieces, 1):
        pending += len(piece)
        if pending >= size:
            yield b"".join(pieces[start:end])
            start, pending = end, 0
    if start < len(pieces):
        yield b"".join(pieces[start:])
