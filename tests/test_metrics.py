"""SchedulerMetrics: the exposition Prometheus scrapes, after synthetic kernel events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from aioprometheus.collectors import Gauge, Registry

from kernel.events import (
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
from kernel.metrics import CONTENT_TYPE, DURATION_BUCKETS, LATENESS_BUCKETS, SchedulerMetrics
from tests.promtext import parse, series, value

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def started(job: str, run: str = "r1", *, lateness: float = 0.0, **kw: object) -> RunStarted:
    return RunStarted(
        job_id=job,
        scheduled_at=T0,
        run_id=run,
        started_at=T0,
        lateness=lateness,
        **kw,  # type: ignore[arg-type]
    )


def succeeded(job: str, run: str = "r1", *, duration: float = 0.1) -> RunSucceeded:
    return RunSucceeded(job_id=job, scheduled_at=T0, run_id=run, started_at=T0, duration=duration)


def failed(job: str, run: str = "r1", *, duration: float = 0.1) -> RunFailed:
    return RunFailed(
        job_id=job,
        scheduled_at=T0,
        run_id=run,
        started_at=T0,
        duration=duration,
        exc_type="RuntimeError",
        message="boom",
        traceback="Traceback ...",
    )


def lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def record(metrics: SchedulerMetrics, *events: Event) -> str:
    for event in events:
        metrics(event)
    return metrics.render().decode()


def test_seed_metrics_exact_exposition() -> None:
    m = SchedulerMetrics(version="1.0")
    text = record(
        m,
        started("sync_user_info"),
        succeeded("sync_user_info", duration=0.2),
        started("check_token_expiry"),
        failed("check_token_expiry", duration=7.0),
    )
    assert lines(text, "scheduled_task_executions_total") == [
        'scheduled_task_executions_total{status="success",task_name="sync_user_info"} 1',
        'scheduled_task_executions_total{status="failure",task_name="sync_user_info"} 0',
        'scheduled_task_executions_total{status="success",task_name="check_token_expiry"} 0',
        'scheduled_task_executions_total{status="failure",task_name="check_token_expiry"} 1',
    ]
    assert "# TYPE scheduled_task_executions_total counter" in text
    assert "# TYPE scheduled_task_duration_seconds histogram" in text
    assert [
        line for line in lines(text, "scheduled_task_duration_seconds") if "sync_user_info" in line
    ] == [
        'scheduled_task_duration_seconds_bucket{le="0.1",task_name="sync_user_info"} 0',
        'scheduled_task_duration_seconds_bucket{le="1.0",task_name="sync_user_info"} 1',
        'scheduled_task_duration_seconds_bucket{le="10.0",task_name="sync_user_info"} 1',
        'scheduled_task_duration_seconds_bucket{le="60.0",task_name="sync_user_info"} 1',
        'scheduled_task_duration_seconds_bucket{le="600.0",task_name="sync_user_info"} 1',
        'scheduled_task_duration_seconds_bucket{le="+Inf",task_name="sync_user_info"} 1',
        'scheduled_task_duration_seconds_sum{task_name="sync_user_info"} 0.2',
        'scheduled_task_duration_seconds_count{task_name="sync_user_info"} 1',
    ]
    assert text.endswith("\n")
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_every_metric_family_has_help_and_type() -> None:
    text = SchedulerMetrics(version="1.0").render().decode()
    families = {
        "scheduled_task_executions_total": "counter",
        "scheduled_task_duration_seconds": "histogram",
        "scheduled_task_lateness_seconds": "histogram",
        "scheduled_task_missed_total": "counter",
        "scheduled_task_skipped_total": "counter",
        "scheduled_task_retries_total": "counter",
        "scheduled_task_running": "gauge",
        "scheduled_task_next_run_timestamp_seconds": "gauge",
        "scheduled_task_last_success_timestamp_seconds": "gauge",
        "scheduled_task_failure_records_dropped_total": "counter",
        "scheduler_up": "gauge",
        "scheduler_build_info": "gauge",
    }
    types = dict(line.removeprefix("# TYPE ").split(" ") for line in lines(text, "# TYPE "))
    assert types == families
    assert {line.split(" ")[2] for line in lines(text, "# HELP ")} == set(families)
    assert parse(text) == {
        ("scheduled_task_failure_records_dropped_total", ()): 0.0,
        ("scheduler_up", ()): 0.0,
        ("scheduler_build_info", (("version", "1.0"),)): 1.0,
    }


@pytest.mark.parametrize(
    ("duration", "first_bucket"),
    [
        pytest.param(0.0, "0.1", id="zero"),
        pytest.param(0.1, "0.1", id="on-a-bound-counts-in-that-bucket"),
        pytest.param(0.1001, "1.0", id="just-above-a-bound"),
        pytest.param(7.0, "10.0", id="seconds"),
        pytest.param(599.0, "600.0", id="ten-minutes"),
        pytest.param(601.0, "+Inf", id="over-ten-minutes"),
    ],
)
def test_duration_bucket_boundaries(duration: float, first_bucket: str) -> None:
    m = SchedulerMetrics()
    samples = parse(record(m, started("j"), succeeded("j", duration=duration)))
    bounds = [*(repr(b) for b in DURATION_BUCKETS), "+Inf"]
    got = [
        value(samples, "scheduled_task_duration_seconds_bucket", le=b, task_name="j")
        for b in bounds
    ]
    i = bounds.index(first_bucket)
    assert got == [0.0] * i + [1.0] * (len(bounds) - i)
    assert value(samples, "scheduled_task_duration_seconds_sum", task_name="j") == duration
    assert value(samples, "scheduled_task_duration_seconds_count", task_name="j") == 1


@pytest.mark.parametrize(
    ("buckets", "must_have"),
    [
        # 5 s: the ScheduledTaskLate alert's threshold, which needs a bound above it too;
        # 60 s: the default misfire_grace_time.
        pytest.param(LATENESS_BUCKETS, (0.005, 5.0, 60.0), id="lateness"),
        # a minute: the shortest schedule interval.
        pytest.param(DURATION_BUCKETS, (0.1, 1.0, 60.0), id="duration"),
    ],
)
def test_a_handful_of_buckets_each_an_operators_question(
    buckets: tuple[float, ...], must_have: tuple[float, ...]
) -> None:
    assert list(buckets) == sorted(set(buckets))
    assert 3 <= len(buckets) <= 6
    assert set(must_have) <= set(buckets)


@pytest.mark.parametrize(
    ("event", "observed"),
    [
        pytest.param(started("j", lateness=0.003), True, id="scheduled-first-attempt"),
        pytest.param(started("j", lateness=0.003, manual=True), False, id="manual-run"),
        pytest.param(started("j", lateness=0.003, attempt=2), False, id="automatic-retry"),
        pytest.param(
            started("j", lateness=0.003, manual=True, retry_of="f1"), False, id="manual-retry"
        ),
    ],
)
def test_lateness_counts_only_scheduled_first_attempts(event: RunStarted, observed: bool) -> None:
    samples = parse(record(SchedulerMetrics(), event))
    assert value(samples, "scheduled_task_lateness_seconds_count", task_name="j") == (
        1 if observed else 0
    )
    assert value(samples, "scheduled_task_lateness_seconds_bucket", le="0.005", task_name="j") == (
        1 if observed else 0
    )
    assert value(samples, "scheduled_task_lateness_seconds_bucket", le="0.1", task_name="j") == (
        1 if observed else 0
    )
    assert value(samples, "scheduled_task_retries_total", task_name="j") == (
        1 if event.attempt > 1 or event.retry_of else 0
    )


def test_missed_and_skipped_by_reason() -> None:
    samples = parse(
        record(
            SchedulerMetrics(),
            RunMissed(job_id="j", scheduled_at=T0, lateness=75.0),
            RunMissed(job_id="j", scheduled_at=T0, lateness=90.0),
            RunSkipped(job_id="j", scheduled_at=T0, reason="max_instances"),
            RunSkipped(job_id="j", scheduled_at=T0, reason="coalesced"),
            RunSkipped(job_id="j", scheduled_at=T0, reason="coalesced"),
            RunSkipped(job_id="j", scheduled_at=T0, reason="coalesced"),
        )
    )
    assert value(samples, "scheduled_task_missed_total", task_name="j") == 2
    assert series(samples, "scheduled_task_skipped_total") == {
        (("reason", "max_instances"), ("task_name", "j")): 1,
        (("reason", "coalesced"), ("task_name", "j")): 3,
    }


def test_running_gauge_follows_starts_and_outcomes() -> None:
    m = SchedulerMetrics()

    def running() -> float:
        return value(parse(m.render().decode()), "scheduled_task_running", task_name="j")

    m(started("j", "r1"))
    m(started("j", "r2"))
    assert running() == 2
    m(succeeded("j", "r1"))
    assert running() == 1
    m(failed("j", "r2"))
    assert running() == 0
    m(succeeded("j", "r3"))  # an outcome whose start was not seen never goes negative
    assert running() == 0


def test_last_success_is_when_the_run_finished() -> None:
    m = SchedulerMetrics()
    samples = parse(record(m, started("j"), succeeded("j", duration=2.5), failed("j")))
    assert value(samples, "scheduled_task_last_success_timestamp_seconds", task_name="j") == (
        T0.timestamp() + 2.5
    )
    only_failed = parse(record(SchedulerMetrics(), failed("k")))
    assert series(only_failed, "scheduled_task_last_success_timestamp_seconds") == {}


def test_next_run_from_job_events() -> None:
    m = SchedulerMetrics()
    nxt = T0 + timedelta(hours=6)

    def next_runs() -> dict[tuple[tuple[str, str], ...], float]:
        return series(parse(m.render().decode()), "scheduled_task_next_run_timestamp_seconds")

    m(JobAdded(job_id="j", scheduled_at=T0))
    assert next_runs() == {(("task_name", "j"),): T0.timestamp()}
    m(JobModified(job_id="j", scheduled_at=nxt, change="rescheduled"))
    assert next_runs() == {(("task_name", "j"),): nxt.timestamp()}
    m(JobModified(job_id="j", scheduled_at=None, change="paused"))
    assert next_runs() == {}
    m(JobModified(job_id="j", scheduled_at=nxt, change="resumed"))
    m(JobRemoved(job_id="j", scheduled_at=None))
    assert next_runs() == {}


def test_a_new_job_exports_zeroed_counters_so_the_first_failure_shows_in_increase() -> None:
    samples = parse(record(SchedulerMetrics(), JobAdded(job_id="j", scheduled_at=T0)))
    assert series(samples, "scheduled_task_executions_total") == {
        (("status", "success"), ("task_name", "j")): 0,
        (("status", "failure"), ("task_name", "j")): 0,
    }
    assert value(samples, "scheduled_task_missed_total", task_name="j") == 0


@pytest.mark.parametrize(
    ("job_id", "rendered"),
    [
        pytest.param('say "hi"', 'task_name="say \\"hi\\""', id="quote"),
        pytest.param("a\\b", 'task_name="a\\\\b"', id="backslash"),
        pytest.param("two\nlines", 'task_name="two\\nlines"', id="newline"),
        pytest.param("用户同步", 'task_name="用户同步"', id="utf-8"),
    ],
)
def test_label_values_are_escaped(job_id: str, rendered: str) -> None:
    text = record(SchedulerMetrics(), started(job_id), succeeded(job_id))
    assert f'scheduled_task_executions_total{{status="success",{rendered}}} 1' in text
    assert value(parse(text), "scheduled_task_missed_total", task_name=job_id) == 0


@dataclass
class FakeJob:
    id: str
    next_run_time: datetime | None


@dataclass
class FakeKernel:
    running: bool = False
    jobs: list[FakeJob] = field(default_factory=list)
    listeners: list[Callable[[Event], None]] = field(default_factory=list)

    def add_listener(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)

    def get_jobs(self) -> list[FakeJob]:
        return list(self.jobs)

    def get_job(self, job_id: str) -> FakeJob:
        for job in self.jobs:
            if job.id == job_id:
                return job
        raise LookupError(job_id)


def test_attach_reads_up_and_next_run_from_the_kernel_when_scraped() -> None:
    kernel = FakeKernel(jobs=[FakeJob("a", T0), FakeJob("b", None)])
    m = SchedulerMetrics(version="9.9")
    detach = m.attach(kernel)
    assert kernel.listeners == [m]
    samples = parse(m.render().decode())
    assert value(samples, "scheduler_up") == 0
    assert value(samples, "scheduled_task_executions_total", status="failure", task_name="b") == 0
    assert series(samples, "scheduled_task_next_run_timestamp_seconds") == {
        (("task_name", "a"),): T0.timestamp()
    }
    kernel.running = True
    kernel.jobs = [FakeJob("b", T0 + timedelta(minutes=5))]  # 'a' left, 'b' got a next run
    samples = parse(m.render().decode())
    assert value(samples, "scheduler_up") == 1
    assert series(samples, "scheduled_task_next_run_timestamp_seconds") == {
        (("task_name", "b"),): (T0 + timedelta(minutes=5)).timestamp()
    }
    with pytest.raises(RuntimeError, match="already attached"):
        m.attach(kernel)
    detach()
    assert kernel.listeners == []
    assert value(parse(m.render().decode()), "scheduler_up") == 0


def test_shares_its_registry_with_the_embedders_metrics() -> None:
    registry = Registry()
    token = Gauge(
        "token_expiry_timestamp_seconds", "When the refresh token expires.", registry=registry
    )
    token.set({"app_id": "cli_a"}, 1.8e9)
    m = SchedulerMetrics(registry, version="1.0")
    assert m.registry is registry
    samples = parse(m.render().decode())
    assert value(samples, "token_expiry_timestamp_seconds", app_id="cli_a") == 1.8e9
    assert value(samples, "scheduler_build_info", version="1.0") == 1
    with pytest.raises(ValueError, match="already registered"):
        SchedulerMetrics(registry)


def test_unrelated_events_are_ignored() -> None:
    m = SchedulerMetrics()
    m(object())  # type: ignore[arg-type]
    assert series(parse(m.render().decode()), "scheduled_task_executions_total") == {}


# -- against the real kernel, on a virtual clock ------------------------------------------


async def test_real_runs_on_a_virtual_clock() -> None:
    from kernel import Kernel
    from kernel.testing import VirtualClock

    clock = VirtualClock(T0)
    kernel = Kernel(timezone="UTC", clock=clock)
    metrics = SchedulerMetrics(version="test")
    metrics.attach(kernel)

    async def ok() -> None:
        await clock.sleep(2.0)  # a 2 s run on the virtual clock

    async def bad() -> None:
        raise RuntimeError("boom")

    kernel.add_interval_job(ok, seconds=10, job_id="sync_user_info")
    kernel.add_interval_job(bad, seconds=10, job_id="check_token_expiry")
    async with kernel:
        await clock.advance(33)
        samples = parse(metrics.render().decode())
        assert series(samples, "scheduled_task_executions_total") == {
            (("status", "success"), ("task_name", "sync_user_info")): 3,
            (("status", "failure"), ("task_name", "sync_user_info")): 0,
            (("status", "success"), ("task_name", "check_token_expiry")): 0,
            (("status", "failure"), ("task_name", "check_token_expiry")): 3,
        }
        ok_ = {"task_name": "sync_user_info"}
        assert value(samples, "scheduled_task_duration_seconds_count", **ok_) == 3
        assert value(samples, "scheduled_task_duration_seconds_sum", **ok_) == 6.0
        assert value(samples, "scheduled_task_duration_seconds_bucket", le="1.0", **ok_) == 0
        assert value(samples, "scheduled_task_duration_seconds_bucket", le="10.0", **ok_) == 3
        # Virtual time: every start is exactly on time.
        assert value(samples, "scheduled_task_lateness_seconds_bucket", le="0.005", **ok_) == 3
        assert value(samples, "scheduled_task_lateness_seconds_count", **ok_) == 3
        assert (
            value(samples, "scheduled_task_last_success_timestamp_seconds", **ok_)
            == (T0 + timedelta(seconds=32)).timestamp()
        )
        assert series(samples, "scheduled_task_next_run_timestamp_seconds") == {
            (("task_name", "sync_user_info"),): (T0 + timedelta(seconds=40)).timestamp(),
            (("task_name", "check_token_expiry"),): (T0 + timedelta(seconds=40)).timestamp(),
        }
        assert value(samples, "scheduled_task_running", **ok_) == 0
        assert value(samples, "scheduler_up") == 1
    assert value(parse(metrics.render().decode()), "scheduler_up") == 0


async def test_jobs_added_before_start_are_exported_from_the_start() -> None:
    # serve attaches the metrics, registers the jobs, then starts the kernel: every job
    # has its zeroed counters and its next run on the first scrape, before any run.
    from kernel import Kernel
    from kernel.testing import VirtualClock

    clock = VirtualClock(T0)
    kernel = Kernel(timezone="UTC", clock=clock)
    metrics = SchedulerMetrics(version="test")
    metrics.attach(kernel)

    async def job() -> None:
        pass

    kernel.add_interval_job(job, minutes=5, job_id="health_check")
    kernel.add_cron_job(job, "0 9 * * *", job_id="check_token_expiry")
    async with kernel:
        samples = parse(metrics.render().decode())
        assert series(samples, "scheduled_task_next_run_timestamp_seconds") == {
            (("task_name", "health_check"),): (T0 + timedelta(minutes=5)).timestamp(),
            (("task_name", "check_token_expiry"),): T0.timestamp(),
        }
        for task in ("health_check", "check_token_expiry"):
            for status in ("success", "failure"):
                assert value(
                    samples, "scheduled_task_executions_total", status=status, task_name=task
                ) == 0


async def test_metrics_agree_with_the_events_through_skips_and_misses() -> None:
    from kernel import Kernel
    from kernel.testing import VirtualClock

    clock = VirtualClock(T0)
    kernel = Kernel(timezone="UTC", clock=clock)
    metrics = SchedulerMetrics()
    metrics.attach(kernel)
    events = kernel.subscribe()

    async def slow() -> None:
        await clock.sleep(25)  # longer than its interval: later fires find it running

    kernel.add_interval_job(slow, seconds=10, job_id="slow")
    kernel.add_interval_job(slow, seconds=10, job_id="late", misfire_grace_time=5, coalesce=False)
    async with kernel:
        await clock.advance(60)
        clock.stall(100)  # a blocked loop: fires fall due late
        await clock.advance(1)
    seen: list[Event] = []
    with events:
        while True:
            try:
                seen.append(events.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
    samples = parse(metrics.render().decode())
    for job in ("slow", "late"):
        mine = [e for e in seen if e.job_id == job]

        def count(kind: type[Event], mine: list[Event] = mine, **attrs: object) -> int:
            return sum(
                isinstance(e, kind) and all(getattr(e, k) == v for k, v in attrs.items())
                for e in mine
            )

        assert value(
            samples, "scheduled_task_executions_total", status="success", task_name=job
        ) == count(RunSucceeded)
        assert value(samples, "scheduled_task_missed_total", task_name=job) == count(RunMissed)
        for reason in ("max_instances", "coalesced"):
            assert value(
                samples, "scheduled_task_skipped_total", reason=reason, task_name=job
            ) == count(RunSkipped, reason=reason)
        assert value(samples, "scheduled_task_lateness_seconds_count", task_name=job) == count(
            RunStarted
        )
    assert (
        value(samples, "scheduled_task_skipped_total", reason="max_instances", task_name="slow") > 0
    )
    assert value(samples, "scheduled_task_missed_total", task_name="late") > 0
