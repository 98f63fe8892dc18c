"""The scheduling contract of design.md, pinned on the virtual clock."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from kernel import JobDefaults, Kernel
from kernel.events import RunFailed, RunMissed, RunSkipped, RunStarted, RunSucceeded
from kernel.testing import VirtualClock
from tests.kernel_helpers import Recorder, brief, starts, virtual_kernel

T0 = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)  # 08:00 in Asia/Shanghai


async def noop() -> None:
    pass


async def test_interval_first_run_is_one_interval_after_add_and_never_drifts() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):

        async def slow() -> None:
            await clock.sleep(3600 * 2)  # a 2 h run must not shift later ones

        k.add_interval_job(slow, hours=6, job_id="sync_user_info", max_instances=1)
        await clock.advance(timedelta(hours=24))
        assert starts(rec.take()) == [
            "2024-01-01 14:00:00+0800",
            "2024-01-01 20:00:00+0800",
            "2024-01-02 02:00:00+0800",
            "2024-01-02 08:00:00+0800",
        ]


async def test_interval_with_start_date_fires_at_start_plus_k_intervals() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        k.add_interval_job(noop, minutes=5, start_date=T0 + timedelta(minutes=1), job_id="hc")
        await clock.advance(timedelta(minutes=12))
        assert starts(rec.take(), UTC) == [
            "2024-01-01 00:01:00+0000",
            "2024-01-01 00:06:00+0000",
            "2024-01-01 00:11:00+0000",
        ]


async def test_interval_start_date_in_the_past_resumes_on_the_grid_without_catch_up() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        k.add_interval_job(noop, minutes=10, start_date=T0 - timedelta(minutes=25), job_id="j")
        await clock.advance(timedelta(minutes=20))
        assert starts(rec.take(), UTC) == ["2024-01-01 00:05:00+0000", "2024-01-01 00:15:00+0000"]


async def test_interval_end_date_stops_the_job_and_removes_it() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        k.add_interval_job(noop, seconds=10, end_date=T0 + timedelta(seconds=30), job_id="j")
        await clock.advance(60)
        assert brief(rec.take(), UTC) == [
            ("JobAdded", "j", "2024-01-01 00:00:10+0000"),
            ("RunStarted", "j", "2024-01-01 00:00:10+0000"),
            ("RunSucceeded", "j", "2024-01-01 00:00:10+0000"),
            ("RunStarted", "j", "2024-01-01 00:00:20+0000"),
            ("RunSucceeded", "j", "2024-01-01 00:00:20+0000"),
            ("RunStarted", "j", "2024-01-01 00:00:30+0000"),
            ("JobRemoved", "j", None),
            ("RunSucceeded", "j", "2024-01-01 00:00:30+0000"),
        ]
        assert k.get_jobs() == []


async def test_interval_jitter_delays_within_bound_and_does_not_drift() -> None:
    import random

    async with virtual_kernel(T0, rng=random.Random(7)) as (k, clock, rec):
        k.add_interval_job(noop, seconds=60, jitter=5, job_id="j")
        await clock.advance(60 * 10 + 10)
        got = [e for e in rec.take() if isinstance(e, RunStarted)]
        assert len(got) == 10
        for i, e in enumerate(got, start=1):
            assert e.scheduled_at is not None
            offset = (e.scheduled_at - T0).total_seconds() - 60 * i
            assert 0 <= offset <= 5
            assert e.lateness == pytest.approx(0, abs=1e-6)


RAN = ["JobAdded", "RunStarted", "JobRemoved", "RunSucceeded"]
MISSED = ["JobAdded", "RunMissed", "JobRemoved"]


@pytest.mark.parametrize(
    ("late_by", "grace", "expected"),
    [
        pytest.param(30, 60, RAN, id="within-grace-runs"),
        pytest.param(60, 60, RAN, id="exactly-grace-runs"),
        pytest.param(61, 60, MISSED, id="beyond-grace-missed"),
        pytest.param(10 * 86400, None, RAN, id="grace-none-runs-however-late"),
        pytest.param(1, 0, MISSED, id="grace-zero-any-lateness-missed"),
    ],
)
async def test_misfire_grace_for_a_one_shot_job_added_late(
    late_by: int, grace: float | None, expected: list[str]
) -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        k.add_date_job(
            noop, run_date=T0 - timedelta(seconds=late_by), job_id="once", misfire_grace_time=grace
        )
        await clock.advance(1)
        events = rec.take()
        # Either it ran or it was missed, never both; and the one-shot job is gone.
        assert [type(e).__name__ for e in events] == expected
        lateness = [e.lateness for e in events if isinstance(e, RunStarted | RunMissed)]
        assert lateness == [pytest.approx(late_by)]
        assert k.get_jobs() == []


async def test_missed_run_reports_its_lateness_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        k.add_date_job(noop, run_date=T0 - timedelta(seconds=90), job_id="once")
        with caplog.at_level(logging.WARNING, logger="scheduler"):
            await clock.advance(1)
        missed = [e for e in rec.take() if isinstance(e, RunMissed)]
        assert len(missed) == 1
        assert missed[0].lateness == pytest.approx(90)
        assert (
            "Run of job once scheduled at 2023-12-31 23:58:30+00:00 was missed by 90.000 s"
            in caplog.text
        )


@pytest.mark.parametrize(
    ("coalesce", "expected"),
    [
        pytest.param(
            True,
            [
                ("RunSkipped", "j", "2024-01-01 08:01:00+0800", "coalesced"),
                ("RunSkipped", "j", "2024-01-01 08:02:00+0800", "coalesced"),
                ("RunSkipped", "j", "2024-01-01 08:03:00+0800", "coalesced"),
                ("RunStarted", "j", "2024-01-01 08:04:00+0800"),
                ("RunSucceeded", "j", "2024-01-01 08:04:00+0800"),
            ],
            id="coalesce-runs-once-for-the-latest",
        ),
        pytest.param(
            False,
            [
                ("RunMissed", "j", "2024-01-01 08:01:00+0800"),
                ("RunMissed", "j", "2024-01-01 08:02:00+0800"),
                ("RunStarted", "j", "2024-01-01 08:03:00+0800"),
                ("RunSkipped", "j", "2024-01-01 08:04:00+0800", "max_instances"),
                ("RunSucceeded", "j", "2024-01-01 08:03:00+0800"),
            ],
            id="no-coalesce-runs-each-within-grace",
        ),
    ],
)
async def test_coalesce_after_a_stalled_loop(
    coalesce: bool, expected: list[tuple[str, ...]]
) -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        k.add_interval_job(noop, minutes=1, job_id="j", coalesce=coalesce, misfire_grace_time=90)
        rec.take()
        clock.stall(timedelta(minutes=4, seconds=30))  # the loop was blocked for 4.5 min
        await clock.advance(0)
        assert brief(rec.take()) == expected


async def test_no_coalesce_with_room_for_instances_runs_every_due_time() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        k.add_interval_job(
            noop, minutes=1, job_id="j", coalesce=False, max_instances=5, misfire_grace_time=None
        )
        rec.take()
        clock.stall(timedelta(minutes=3))
        await clock.advance(0)
        assert starts(rec.take()) == [
            "2024-01-01 08:01:00+0800",
            "2024-01-01 08:02:00+0800",
            "2024-01-01 08:03:00+0800",
        ]


async def test_coalesce_when_even_the_latest_is_beyond_grace_reports_it_missed() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        k.add_interval_job(noop, minutes=1, job_id="j", misfire_grace_time=10)
        rec.take()
        clock.stall(timedelta(minutes=2, seconds=30))
        await clock.advance(0)
        assert brief(rec.take()) == [
            ("RunSkipped", "j", "2024-01-01 08:01:00+0800", "coalesced"),
            ("RunMissed", "j", "2024-01-01 08:02:00+0800"),
        ]
        await clock.advance(30)
        assert starts(rec.take()) == ["2024-01-01 08:03:00+0800"]


async def test_max_instances_skips_instead_of_queueing(caplog: pytest.LogCaptureFixture) -> None:
    async with virtual_kernel(T0) as (k, clock, rec):

        async def long() -> None:
            await clock.sleep(150)

        k.add_interval_job(long, seconds=60, job_id="long")
        rec.take()
        with caplog.at_level(logging.WARNING, logger="scheduler"):
            await clock.advance(300)
        assert brief(rec.take()) == [
            ("RunStarted", "long", "2024-01-01 08:01:00+0800"),
            ("RunSkipped", "long", "2024-01-01 08:02:00+0800", "max_instances"),
            ("RunSkipped", "long", "2024-01-01 08:03:00+0800", "max_instances"),
            ("RunSucceeded", "long", "2024-01-01 08:01:00+0800"),
            ("RunStarted", "long", "2024-01-01 08:04:00+0800"),
            ("RunSkipped", "long", "2024-01-01 08:05:00+0800", "max_instances"),
        ]
        assert "maximum number of running instances reached (1)" in caplog.text


async def test_max_instances_two_allows_two_overlapping_runs() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):

        async def long() -> None:
            await clock.sleep(150)

        k.add_interval_job(long, seconds=60, job_id="long", max_instances=2)
        rec.take()
        await clock.advance(180)
        kinds = [
            (type(e).__name__, e.scheduled_at.second if e.scheduled_at else None)
            for e in rec.take()
        ]
        # Runs of 150 s every 60 s: two overlap at 08:02, the third finds both still going.
        assert kinds == [("RunStarted", 0), ("RunStarted", 0), ("RunSkipped", 0)]
        await clock.advance(60)
        assert [type(e).__name__ for e in rec.take()] == ["RunSucceeded", "RunStarted"]


async def test_timeout_stops_a_coroutine_run_at_exactly_its_timeout() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):

        async def hang() -> None:
            await clock.sleep(10_000)

        k.add_interval_job(hang, seconds=60, job_id="hang", timeout=5)
        rec.take()
        await clock.advance(70)
        events = rec.take()
        failed = [e for e in events if isinstance(e, RunFailed)]
        assert len(failed) == 1
        assert failed[0].timed_out
        assert failed[0].duration == pytest.approx(5)
        assert failed[0].exc_type == "JobTimeoutError"
        # The hung run was stopped, so the next fire is not blocked by max_instances.
        await clock.advance(52)
        assert [type(e).__name__ for e in rec.take()] == ["RunStarted"]


async def test_exception_in_a_job_is_isolated_and_logged_with_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with virtual_kernel(T0) as (k, clock, rec):

        async def boom() -> None:
            raise RuntimeError("database unreachable")

        def sync_boom() -> None:
            raise KeyError("missing")

        k.add_interval_job(boom, seconds=10, job_id="boom")
        k.add_interval_job(sync_boom, seconds=10, job_id="sync_boom")
        k.add_interval_job(noop, seconds=10, job_id="fine")
        rec.take()
        with caplog.at_level(logging.INFO, logger="scheduler"):
            await clock.advance(30)
        events = rec.take()
        assert sum(isinstance(e, RunFailed) for e in events) == 6
        assert sum(isinstance(e, RunSucceeded) for e in events) == 3
        assert k.running
        text = caplog.text
        assert "Failed scheduled task boom" in text
        assert "RuntimeError: database unreachable" in text
        assert "Traceback (most recent call last)" in text
        assert "Failed scheduled task sync_boom" in text
        failures = await k.failure_store.list_failures(job_id="boom")
        assert len(failures) == 3
        assert failures[0].exc_type == "RuntimeError"
        assert "database unreachable" in failures[0].traceback


async def test_sync_jobs_run_in_threads_and_do_not_block_the_loop() -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        entered = threading.Event()
        release = threading.Event()
        threads: list[str] = []

        def blocking() -> None:
            threads.append(threading.current_thread().name)
            entered.set()
            release.wait(10)

        k.add_interval_job(blocking, seconds=60, job_id="blocking")
        rec.take()
        advancing = asyncio.create_task(clock.advance(60))
        assert await asyncio.to_thread(entered.wait, 10)
        # The loop is free while the job blocks its thread: this test is running on it.
        loop_ran = asyncio.Event()
        asyncio.get_running_loop().call_soon(loop_ran.set)
        await asyncio.wait_for(loop_ran.wait(), 5)
        assert not advancing.done()
        release.set()
        await advancing
        assert [type(e).__name__ for e in rec.take()] == ["RunStarted", "RunSucceeded"]
        assert threads[0].startswith("scheduler-job")
        assert threading.current_thread().name not in threads


async def test_sync_job_timeout_reports_failure_while_the_thread_finishes() -> None:
    clock = VirtualClock(T0, wait_for_threads=False)
    kernel = Kernel(clock=clock)
    rec = Recorder(kernel)
    release = threading.Event()
    finished = threading.Event()

    def stuck() -> None:
        release.wait(10)
        finished.set()

    async with kernel:
        kernel.add_interval_job(stuck, seconds=60, job_id="stuck", timeout=1)
        rec.take()
        await clock.advance(60)
        assert [type(e).__name__ for e in rec.take()] == ["RunStarted"]
        await clock.advance(1)
        events = rec.take()
        assert len(events) == 1
        assert isinstance(events[0], RunFailed)
        assert events[0].timed_out
        assert events[0].duration == pytest.approx(1)
        assert not finished.is_set()  # the thread could not be stopped; it is still going
        release.set()
        assert await asyncio.to_thread(finished.wait, 10)
    rec.stream.close()


async def test_kernel_defaults_are_the_seeds() -> None:
    defaults = JobDefaults()
    assert (defaults.coalesce, defaults.max_instances, defaults.misfire_grace_time) == (True, 1, 60)
    kernel = Kernel(clock=VirtualClock(T0))  # no timezone, no job_defaults: the defaults
    assert kernel.timezone.key == "Asia/Shanghai"
    job = kernel.add_interval_job(noop, hours=1, job_id="j")
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 60)
    cron = kernel.add_cron_job(noop, "0 9 * * *", job_id="c")
    assert cron.next_run_time == datetime(2024, 1, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


async def test_per_job_options_override_kernel_defaults() -> None:
    async with virtual_kernel(
        T0, defaults=JobDefaults(coalesce=False, max_instances=3, misfire_grace_time=5)
    ) as (k, _c, _r):
        a = k.add_interval_job(noop, hours=1, job_id="a")
        b = k.add_interval_job(noop, hours=1, job_id="b", max_instances=1, misfire_grace_time=None)
        assert (a.coalesce, a.max_instances, a.misfire_grace_time) == (False, 3, 5)
        assert (b.coalesce, b.max_instances, b.misfire_grace_time) == (False, 1, None)
        assert k.get_job("a") == a
        assert k.get_job("b") == b


async def test_shutdown_grace_lets_short_runs_finish_and_cancels_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(T0)
    kernel = Kernel(clock=clock)
    rec = Recorder(kernel)
    finished: list[str] = []

    async def job(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        finished.append(name)

    async with kernel:
        kernel.add_interval_job(job, seconds=60, args=("short", 5), job_id="short")
        kernel.add_interval_job(job, seconds=60, args=("long", 500), job_id="long")
        await clock.advance(60)
        stopping = asyncio.create_task(kernel.shutdown(wait=True, grace=30))
        await clock.advance(30)
        await stopping
    assert finished == ["short"]
    kinds = [(type(e).__name__, e.job_id) for e in rec.take()]
    assert ("RunSucceeded", "short") in kinds
    assert ("RunFailed", "long") in kinds
    assert "exception was never retrieved" not in caplog.text
    rec.stream.close()


async def test_secrets_in_a_failure_never_reach_logs_events_or_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with virtual_kernel(T0) as (k, clock, rec):
        async def leaky() -> None:
            raise RuntimeError(
                "login failed: app_secret=s3cr3t-value Bearer t-abcdefghijklmnopqrstu"
            )

        k.add_interval_job(leaky, seconds=10, job_id="leaky")
        rec.take()
        with caplog.at_level(logging.INFO, logger="scheduler"):
            await clock.advance(10)
        failed = [e for e in rec.take() if isinstance(e, RunFailed)]
        stored = await k.failure_store.list_failures(job_id="leaky")
        for text in (caplog.text, failed[0].message, failed[0].traceback,
                     stored[0].message, stored[0].traceback):
            assert "s3cr3t-value" not in text
            assert "abcdefghijklmnopqrstu" not in text
        assert "Failed scheduled task leaky" in caplog.text


async def test_automatic_retry_follows_the_policy_and_links_attempts() -> None:
    from kernel.retry import RetryPolicy

    async with virtual_kernel(T0) as (k, clock, rec):
        calls: list[float] = []

        async def flaky() -> None:
            calls.append(clock.monotonic())
            if len(calls) < 3:
                raise ConnectionError("Lark API unavailable")

        policy = RetryPolicy(max_attempts=3, backoff=10, max_backoff=60, jitter=0)
        k.add_interval_job(flaky, hours=1, job_id="flaky", retry=policy)
        rec.take()
        await clock.advance(3600 + 60)
        assert calls == [3600, 3610, 3630]  # waits of 10 s, then 20 s
        events = [(type(e).__name__, e.attempt) for e in rec.take()  # type: ignore[union-attr]
                  if not isinstance(e, RunSkipped)]
        assert events == [
            ("RunStarted", 1), ("RunFailed", 1),
            ("RunStarted", 2), ("RunFailed", 2),
            ("RunStarted", 3), ("RunSucceeded", 3),
        ]
        records = await k.failure_store.list_failures(job_id="flaky")
        first = records[-1]
        assert first.attempt == 1
        assert [r.outcome for r in first.retries] == ["failed", "succeeded"]
        assert records[0].retry_of == first.id


async def test_retries_stop_after_max_attempts() -> None:
    from kernel.retry import RetryPolicy

    async with virtual_kernel(T0) as (k, clock, rec):
        async def broken() -> None:
            raise ValueError("always")

        k.add_interval_job(broken, hours=1, job_id="broken",
                           retry=RetryPolicy(max_attempts=2, backoff=5, jitter=0))
        rec.take()
        await clock.advance(3600 + 600)
        failed = [e for e in rec.take() if isinstance(e, RunFailed)]
        assert [e.attempt for e in failed] == [1, 2]
