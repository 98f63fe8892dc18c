"""What recording one run costs the kernel's hot path, with metrics (and logs) attached,
and what writing a scrape costs, ours against aioprometheus's.

``python -m bench.metrics_cost``: feeds RunStarted + RunSucceeded pairs straight into the
listeners (no kernel, no loop) and prints microseconds per recorded run, next to the same
recording done with plain aioprometheus collectors. Then, for 1k and 10k jobs (each run
once), the CPU of one whole scrape written by ``SchedulerMetrics.render`` against
aioprometheus's ``TextFormatter`` marshalling the same series (same names, labels and
buckets) from plain collectors: with per-job histograms and with one histogram of all jobs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aioprometheus.collectors import Counter, Gauge, Histogram, Registry
from aioprometheus.formats.text import TextFormatter

from kernel.events import Event, RunStarted, RunSucceeded
from kernel.logs import RunLogger
from kernel.metrics import DURATION_BUCKETS, LATENESS_BUCKETS, SchedulerMetrics

RUNS = 200_000
JOBS = 100


def _events() -> list[tuple[RunStarted, RunSucceeded]]:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        (
            RunStarted(job_id=f"job{i}", scheduled_at=t, run_id="r", started_at=t, lateness=0.0012),
            RunSucceeded(
                job_id=f"job{i}", scheduled_at=t, run_id="r", started_at=t, duration=0.042
            ),
        )
        for i in range(JOBS)
    ]


def _per_run(listener: Callable[[Event], None], runs: int = RUNS) -> float:
    pairs = _events()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(runs):
            started, done = pairs[i % JOBS]
            listener(started)
            listener(done)
        best = min(best, time.perf_counter() - t0)
    return best / runs * 1e6


def _plain_aioprometheus() -> Callable[[Event], None]:
    r = Registry()
    executions = Counter("executions_total", "x", registry=r)
    duration = Histogram("duration_seconds", "x", registry=r, buckets=DURATION_BUCKETS)
    lateness = Histogram("lateness_seconds", "x", registry=r, buckets=LATENESS_BUCKETS)
    running = Gauge("running", "x", registry=r)

    def listener(event: Event) -> None:
        labels = {"task_name": event.job_id}
        if isinstance(event, RunStarted):
            running.inc(labels)
            lateness.observe(labels, event.lateness)
        elif isinstance(event, RunSucceeded):
            running.dec(labels)
            executions.inc({"task_name": event.job_id, "status": "success"})
            duration.observe(labels, event.duration)

    return listener


def _same_series_in_aioprometheus(jobs: int, per_job: bool) -> Registry:
    """Plain aioprometheus collectors holding what SchedulerMetrics exposes for ``jobs``
    jobs that each ran once."""
    r = Registry()
    executions = Counter("scheduled_task_executions_total", "x", registry=r)
    duration = Histogram(
        "scheduled_task_duration_seconds", "x", registry=r, buckets=DURATION_BUCKETS
    )
    lateness = Histogram(
        "scheduled_task_lateness_seconds", "x", registry=r, buckets=LATENESS_BUCKETS
    )
    missed = Counter("scheduled_task_missed_total", "x", registry=r)
    skipped = Counter("scheduled_task_skipped_total", "x", registry=r)
    retries = Counter("scheduled_task_retries_total", "x", registry=r)
    running = Gauge("scheduled_task_running", "x", registry=r)
    next_run = Gauge("scheduled_task_next_run_timestamp_seconds", "x", registry=r)
    last_success = Gauge("scheduled_task_last_success_timestamp_seconds", "x", registry=r)
    for i in range(jobs):
        task = {"task_name": f"job{i}"}
        executions.set({**task, "status": "success"}, 1)
        executions.set({**task, "status": "failure"}, 0)
        duration.observe(task if per_job else {}, 0.042)
        lateness.observe(task if per_job else {}, 0.0012)
        missed.set(task, 0)
        skipped.set({**task, "reason": "max_instances"}, 0)
        skipped.set({**task, "reason": "coalesced"}, 0)
        retries.set(task, 0)
        running.set(task, 0)
        next_run.set(task, 1764403200.0)
        last_success.set(task, 1764403199.042)
    return r


def _cpu(render: Callable[[], bytes]) -> tuple[float, int]:
    """Best CPU seconds of three renders, and the size."""
    best, size = float("inf"), 0
    for _ in range(3):
        t0 = time.thread_time()
        size = len(render())
        best = min(best, time.thread_time() - t0)
    return best, size


def compare_renderers(jobs: int, per_job: bool) -> dict[str, float]:
    """CPU ms and bytes per job of one scrape, ours and aioprometheus's, same series."""
    ours = SchedulerMetrics(per_job_histograms=jobs if per_job else 0)
    t = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(jobs):
        job_id = f"job{i}"
        ours(RunStarted(job_id=job_id, scheduled_at=t, run_id="r", started_at=t, lateness=0.0012))
        ours(RunSucceeded(job_id=job_id, scheduled_at=t, run_id="r", started_at=t, duration=0.042))
    registry = _same_series_in_aioprometheus(jobs, per_job)
    formatter = TextFormatter()
    ours_s, ours_b = _cpu(ours.render)
    theirs_s, theirs_b = _cpu(lambda: formatter.marshall(registry))
    return {
        "ours_ms": ours_s * 1e3,
        "aioprometheus_ms": theirs_s * 1e3,
        "ours_bytes_per_job": ours_b / jobs,
        "aioprometheus_bytes_per_job": theirs_b / jobs,
    }


def main() -> None:
    """Print the measurements."""
    metrics = SchedulerMetrics()
    print(f"SchedulerMetrics:               {_per_run(metrics):6.2f} us per recorded run")
    print(f"plain aioprometheus collectors: {_per_run(_plain_aioprometheus(), RUNS // 10):6.2f} us")
    logging.getLogger("scheduler.run").setLevel(logging.WARNING)
    print(f"RunLogger, INFO lines off:      {_per_run(RunLogger()):6.2f} us per recorded run")
    print("one whole scrape, CPU (bytes per job): ours vs aioprometheus, same series")
    for jobs in (1_000, 10_000):
        for per_job in (True, False):
            c = compare_renderers(jobs, per_job)
            form = "per-job histograms" if per_job else "all-jobs histograms"
            print(
                f"  {jobs:>6,} jobs, {form:19}: {c['ours_ms']:7.1f} ms "
                f"({c['ours_bytes_per_job']:,.0f} B) vs {c['aioprometheus_ms']:7.1f} ms "
                f"({c['aioprometheus_bytes_per_job']:,.0f} B) = "
                f"{c['aioprometheus_ms'] / c['ours_ms']:.1f}x"
            )


if __name__ == "__main__":
    main()
