"""What recording one run costs the kernel's hot path, with metrics (and logs) attached.

``python -m bench.metrics_cost``: feeds RunStarted + RunSucceeded pairs straight into the
listeners (no kernel, no loop) and prints microseconds per recorded run, next to the same
recording done with plain aioprometheus collectors, and the cost of one scrape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aioprometheus.collectors import Counter, Gauge, Histogram, Registry

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


def main() -> None:
    """Print the measurements."""
    metrics = SchedulerMetrics()
    print(f"SchedulerMetrics:               {_per_run(metrics):6.2f} us per recorded run")
    print(f"plain aioprometheus collectors: {_per_run(_plain_aioprometheus(), RUNS // 10):6.2f} us")
    logging.getLogger("scheduler.run").setLevel(logging.WARNING)
    print(f"RunLogger, INFO lines off:      {_per_run(RunLogger()):6.2f} us per recorded run")
    t0 = time.perf_counter()
    body = metrics.render()
    print(
        f"one scrape of {JOBS} jobs:         {(time.perf_counter() - t0) * 1e3:6.2f} ms, "
        f"{len(body)} bytes"
    )


if __name__ == "__main__":
    main()
