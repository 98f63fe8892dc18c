"""The kernel's public API: managing jobs, manual runs, events and bad input."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

import kernel
from kernel import (
    ConflictingJobIdError,
    CronTrigger,
    IntervalTrigger,
    InvalidJobError,
    JobBusyError,
    JobLookupError,
    Kernel,
    KernelNotRunningError,
)
from kernel.events import RunStarted
from tests.kernel_helpers import Recorder, brief, starts, virtual_kernel

T0 = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)


async def noop() -> None:
    pass


def test_public_names_are_exported() -> None:
    for name in kernel.__all__:
        assert hasattr(kernel, name), name
    assert {"Kernel", "JobDefaults", "Job"} <= set(kernel.__all__)


async def test_get_jobs_lists_ids_names_triggers_and_next_run_times() -> None:
    async with virtual_kernel(T0) as (k, _clock, _rec):
        k.add_interval_job(noop, hours=6, job_id="sync_user_info")
        k.add_cron_job(noop, cron_expression="0 9,18 * * *", job_id="check_token_expiry")
        jobs = k.get_jobs()
        assert [job.id for job in jobs] == ["sync_user_info", "check_token_expiry"]
        assert jobs[0].name == "noop"
        assert jobs[0].func_ref.endswith("test_kernel_api:noop")
        assert isinstance(jobs[0].trigger, IntervalTrigger)
        assert isinstance(jobs[1].trigger, CronTrigger)
        assert jobs[0].next_run_time == T0 + timedelta(hours=6)
        assert jobs[1].next_run_time == datetime(2024, 1, 1, 1, 0, tzinfo=UTC)  # 09:00 +08:00
        assert k.get_job("sync_user_info") == jobs[0]


async def test_jobs_added_before_start_begin_when_the_kernel_starts() -> None:
    from kernel.testing import VirtualClock

    clock = VirtualClock(T0)
    k = Kernel(clock=clock)
    k.add_interval_job(noop, minutes=10, job_id="early")
    rec = Recorder(k)
    await clock.advance(timedelta(minutes=25))  # not started yet: nothing runs
    async with k:
        await clock.advance(timedelta(minutes=10))
        got = [e for e in rec.take() if isinstance(e, RunStarted)]
        assert [e.scheduled_at for e in got] == [T0 + timedelta(minutes=35)]
    rec.stream.close()


async def test_remove_job_stops_it_and_unknown_ids_raise_lookup_error() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        k.add_interval_job(noop, minutes=1, job_id="j")
        await clock.advance(61)
        k.remove_job("j")
        await clock.advance(300)
        assert brief(rec.take(), UTC) == [
            ("JobAdded", "j", "2024-01-01 00:01:00+0000"),
            ("RunStarted", "j", "2024-01-01 00:01:00+0000"),
            ("RunSucceeded", "j", "2024-01-01 00:01:00+0000"),
            ("JobRemoved", "j", None),
        ]
        for call in (k.remove_job, k.pause_job, k.resume_job, k.get_job, k.run_job):
            with pytest.raises(JobLookupError, match="no job with id 'j'"):
                call("j")
        assert issubclass(JobLookupError, LookupError)


async def test_pause_skips_fires_and_resume_continues_from_now() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        k.add_interval_job(noop, minutes=10, job_id="j")
        await clock.advance(timedelta(minutes=10))
        paused = k.pause_job("j")
        assert paused.paused
        assert paused.next_run_time is None
        await clock.advance(timedelta(minutes=35))
        resumed = k.resume_job("j")
        assert resumed.next_run_time == T0 + timedelta(minutes=50)
        await clock.advance(timedelta(minutes=10))
        assert starts(rec.take(), UTC) == ["2024-01-01 00:10:00+0000", "2024-01-01 00:50:00+0000"]


async def test_run_job_runs_now_outside_the_schedule() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        k.add_interval_job(noop, hours=6, job_id="sync_user_info")
        rec.take()
        run_id = k.run_job("sync_user_info")
        await clock.advance(0)
        events = rec.take()
        assert [type(e).__name__ for e in events] == ["RunStarted", "RunSucceeded"]
        assert events[0].run_id == run_id  # type: ignore[union-attr]
        assert events[0].manual  # type: ignore[union-attr]
        assert events[0].scheduled_at is None
        # The schedule is untouched.
        assert k.get_job("sync_user_info").next_run_time == T0 + timedelta(hours=6)


async def test_run_job_refuses_when_max_instances_are_running() -> None:
    async with virtual_kernel(T0) as (k, clock, _rec):

        async def long() -> None:
            await clock.sleep(100)

        k.add_interval_job(long, hours=1, job_id="long")
        k.run_job("long")
        await clock.advance(1)
        with pytest.raises(JobBusyError, match="already runs 1 instance"):
            k.run_job("long")


async def test_run_job_needs_a_running_kernel() -> None:
    k = Kernel()
    k.add_interval_job(noop, hours=1, job_id="j")
    with pytest.raises(KernelNotRunningError):
        k.run_job("j")


async def test_reschedule_job_changes_the_trigger() -> None:
    async with virtual_kernel(T0, timezone="UTC") as (k, clock, rec):
        k.add_interval_job(noop, hours=1, job_id="j")
        job = k.reschedule_job("j", CronTrigger("*/15 * * * *"))
        assert job.next_run_time == T0  # 00:00 matches and is "at or after now"
        await clock.advance(timedelta(minutes=31))
        assert starts(rec.take(), UTC) == [
            "2024-01-01 00:00:00+0000",
            "2024-01-01 00:15:00+0000",
            "2024-01-01 00:30:00+0000",
        ]


async def test_duplicate_job_id_is_refused_unless_replace_existing() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        k.add_interval_job(noop, minutes=1, job_id="j")
        with pytest.raises(ConflictingJobIdError, match="replace_existing=True"):
            k.add_interval_job(noop, minutes=2, job_id="j")
        k.add_interval_job(noop, minutes=5, job_id="j", replace_existing=True)
        await clock.advance(timedelta(minutes=5))
        assert starts(rec.take(), UTC) == ["2024-01-01 00:05:00+0000"]
        assert len(k.get_jobs()) == 1


async def test_add_from_another_thread_wakes_the_loop() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        await asyncio.to_thread(k.add_interval_job, noop, seconds=30, job_id="from-thread")
        await clock.advance(30)
        assert starts(rec.take(), UTC) == ["2024-01-01 00:00:30+0000"]
        assert threading.current_thread() is threading.main_thread()


async def test_subscribe_streams_exact_event_sequence_and_nothing_more() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        k.add_date_job(noop, run_date=T0 + timedelta(seconds=5), job_id="once")
        await clock.advance(10)
        assert [type(e).__name__ for e in rec.take()] == [
            "JobAdded",
            "RunStarted",
            "JobRemoved",
            "RunSucceeded",
        ]
        await clock.advance(3600)
        assert rec.take() == []


async def test_listener_exceptions_are_swallowed_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with virtual_kernel(T0) as (k, clock, _rec):
        seen: list[str] = []

        def bad(event: object) -> None:
            seen.append(type(event).__name__)
            raise RuntimeError("listener bug")

        remove = k.add_listener(bad)
        k.add_interval_job(noop, seconds=1, job_id="j")
        await clock.advance(1)
        remove()
        await clock.advance(1)
        assert seen == ["JobAdded", "RunStarted", "RunSucceeded"]
        assert "listener bug" in caplog.text


def _bad_cases() -> list[object]:
    aware = datetime(2024, 1, 1, tzinfo=UTC)
    naive = datetime(2024, 1, 1)
    return [
        pytest.param(lambda k: k.add_interval_job(noop, seconds=0), "interval", id="zero-interval"),
        pytest.param(
            lambda k: k.add_interval_job(noop, minutes=-5), "minutes", id="negative-interval"
        ),
        pytest.param(
            lambda k: k.add_interval_job(noop, hours=1, start_date=naive),
            "start_date",
            id="naive-start-date",
        ),
        pytest.param(
            lambda k: k.add_date_job(noop, run_date=naive), "run_date", id="naive-run-date"
        ),
        pytest.param(
            lambda k: k.add_cron_job(noop, cron_expression="0 25 * * *"),
            "hour 25",
            id="cron-hour-out-of-range",
        ),
        pytest.param(
            lambda k: k.add_cron_job(noop, cron_expression="0 9 * *"),
            "5 fields",
            id="cron-field-count",
        ),
        pytest.param(
            lambda k: k.add_cron_job(noop, cron_expression="0 9 * * FUNDAY"),
            "FUNDAY",
            id="cron-unknown-name",
        ),
        pytest.param(
            lambda k: k.add_cron_job(noop, cron_expression="every day"),
            "every day",
            id="cron-garbage",
        ),
        pytest.param(
            lambda k: k.add_cron_job(noop, cron_expression="0 9 * * *", timezone="Asia/Shangai"),
            "Asia/Shangai",
            id="unknown-timezone",
        ),
        pytest.param(
            lambda k: k.add_interval_job(noop, hours=1, max_instances=0),
            "max_instances",
            id="max-instances-zero",
        ),
        pytest.param(
            lambda k: k.add_interval_job(noop, hours=1, misfire_grace_time=-1),
            "misfire_grace_time",
            id="negative-grace",
        ),
        pytest.param(
            lambda k: k.add_interval_job(noop, hours=1, timeout=0), "timeout", id="zero-timeout"
        ),
        pytest.param(
            lambda k: k.add_date_job("not callable", run_date=aware),
            "not callable",
            id="not-callable",
        ),
        pytest.param(
            lambda k: k.add_interval_job(noop, hours=1, job_id=""), "job_id", id="empty-job-id"
        ),
    ]


@pytest.mark.parametrize(("call", "fragment"), _bad_cases())
def test_bad_input_is_refused_with_a_message_naming_the_field(call, fragment: str) -> None:  # type: ignore[no-untyped-def]
    k = Kernel()
    with pytest.raises(InvalidJobError) as info:
        call(k)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)
    assert k.get_jobs() == []


def test_unknown_kernel_timezone_is_refused() -> None:
    with pytest.raises(InvalidJobError, match="Mars/Olympus"):
        Kernel(timezone="Mars/Olympus")


async def test_start_and_stop_are_logged_under_the_scheduler_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="scheduler"):
        async with virtual_kernel(T0) as (k, clock, _rec):
            k.add_interval_job(noop, seconds=5, job_id="sync_user_info")
            await clock.advance(5)
    names = {r.name for r in caplog.records}
    assert names <= {"scheduler", "scheduler.job"}
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("Scheduler started (timezone=Asia/Shanghai")
    assert any("Running job sync_user_info" in line for line in lines)
    assert any("Job sync_user_info (run" in line and "succeeded" in line for line in lines)
    assert lines[-1] == "Scheduler stopped"


async def test_a_kernel_restarted_after_shutdown_fires_its_jobs_again() -> None:
    # Its schedule state (in memory by default) outlives the stop: the interval job keeps
    # the grid it had (T0+10, +20, +30), it does not start a new one at the restart.
    from kernel.testing import VirtualClock

    clock = VirtualClock(T0)
    k = Kernel(clock=clock, timezone="UTC")
    rec = Recorder(k)
    k.add_interval_job(noop, minutes=10, job_id="interval")
    k.add_cron_job(noop, cron_expression="*/15 * * * *", job_id="cron")
    await k.start()
    await clock.advance(timedelta(minutes=10))
    await k.shutdown()
    rec.stream.close()
    await clock.advance(timedelta(minutes=5))
    rec = Recorder(k)
    await k.start()
    await clock.advance(timedelta(minutes=15))
    got = [(e.job_id, e.scheduled_at) for e in rec.take() if isinstance(e, RunStarted)]
    await k.shutdown()
    rec.stream.close()
    assert got == [
        ("cron", T0 + timedelta(minutes=15)),
        ("interval", T0 + timedelta(minutes=20)),
        ("cron", T0 + timedelta(minutes=30)),
        ("interval", T0 + timedelta(minutes=30)),
    ]
