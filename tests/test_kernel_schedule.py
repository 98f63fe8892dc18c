"""Cron and date jobs through the kernel: daylight saving and wall-clock steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kernel.triggers import CronTrigger
from tests.kernel_helpers import LONDON, NEW_YORK, SHANGHAI, brief, starts, virtual_kernel


async def noop() -> None:
    pass


async def test_seed_schedules_fire_at_their_times_in_asia_shanghai() -> None:
    start = datetime(2024, 1, 1, 0, 0, tzinfo=SHANGHAI)
    async with virtual_kernel(start) as (k, clock, rec):
        k.add_cron_job(noop, cron_expression="0 9,18 * * *", job_id="check_token_expiry")
        k.add_cron_job(noop, cron_expression="0 3 * * *", job_id="cleanup_expired_tokens")
        k.add_interval_job(noop, hours=6, job_id="sync_user_info")
        await clock.advance(timedelta(days=1))
        runs = [(e[1], e[2]) for e in brief(rec.take()) if e[0] == "RunStarted"]
        assert runs == [
            ("cleanup_expired_tokens", "2024-01-01 03:00:00+0800"),
            ("sync_user_info", "2024-01-01 06:00:00+0800"),
            ("check_token_expiry", "2024-01-01 09:00:00+0800"),
            ("sync_user_info", "2024-01-01 12:00:00+0800"),
            ("check_token_expiry", "2024-01-01 18:00:00+0800"),
            ("sync_user_info", "2024-01-01 18:00:00+0800"),
            ("sync_user_info", "2024-01-02 00:00:00+0800"),
        ]


async def test_cron_job_uses_the_kernel_timezone_unless_given_its_own() -> None:
    start = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    async with virtual_kernel(start) as (k, clock, rec):
        k.add_cron_job(noop, cron_expression="0 9 * * *", job_id="shanghai")
        k.add_cron_job(noop, cron_expression="0 9 * * *", job_id="london", timezone="Europe/London")
        await clock.advance(timedelta(days=1))
        runs = [(e[1], e[2]) for e in brief(rec.take(), UTC) if e[0] == "RunStarted"]
        assert runs == [
            ("shanghai", "2024-01-01 01:00:00+0000"),
            ("london", "2024-01-01 09:00:00+0000"),
        ]


DST_CASES = [
    pytest.param(
        NEW_YORK,
        datetime(2024, 3, 9, 12, 0, tzinfo=NEW_YORK),
        "30 2 * * *",
        40,
        ["2024-03-10 03:00:00-0400", "2024-03-11 02:30:00-0400"],
        id="new-york-spring-forward-fixed-hour-runs-at-gap-end",
    ),
    pytest.param(
        NEW_YORK,
        datetime(2024, 3, 10, 0, 50, tzinfo=NEW_YORK),
        "*/20 * * * *",
        1.5,
        [
            "2024-03-10 01:00:00-0500",
            "2024-03-10 01:20:00-0500",
            "2024-03-10 01:40:00-0500",
            "2024-03-10 03:00:00-0400",
            "2024-03-10 03:20:00-0400",
        ],
        id="new-york-spring-forward-star-hour-collapses-gap-into-one-run",
    ),
    pytest.param(
        NEW_YORK,
        datetime(2024, 11, 2, 12, 0, tzinfo=NEW_YORK),
        "30 1 * * *",
        40,
        ["2024-11-03 01:30:00-0400", "2024-11-04 01:30:00-0500"],
        id="new-york-fall-back-fixed-hour-runs-once-first-occurrence",
    ),
    pytest.param(
        NEW_YORK,
        datetime(2024, 11, 3, 0, 0, tzinfo=NEW_YORK),
        "30 * * * *",
        3.5,
        [
            "2024-11-03 00:30:00-0400",
            "2024-11-03 01:30:00-0400",
            "2024-11-03 01:30:00-0500",
            "2024-11-03 02:30:00-0500",
        ],
        id="new-york-fall-back-star-hour-fires-at-each-real-instant",
    ),
    pytest.param(
        LONDON,
        datetime(2024, 3, 30, 12, 0, tzinfo=LONDON),
        "30 1 * * *",
        40,
        ["2024-03-31 02:00:00+0100", "2024-04-01 01:30:00+0100"],
        id="london-spring-forward-fixed-hour-runs-at-gap-end",
    ),
    pytest.param(
        LONDON,
        datetime(2024, 10, 26, 12, 0, tzinfo=LONDON),
        "30 1 * * *",
        40,
        ["2024-10-27 01:30:00+0100", "2024-10-28 01:30:00+0000"],
        id="london-fall-back-fixed-hour-runs-once-first-occurrence",
    ),
    pytest.param(
        LONDON,
        datetime(2024, 10, 27, 0, 0, tzinfo=LONDON),
        "15 * * * *",
        3.5,
        [
            "2024-10-27 00:15:00+0100",
            "2024-10-27 01:15:00+0100",
            "2024-10-27 01:15:00+0000",
            "2024-10-27 02:15:00+0000",
        ],
        id="london-fall-back-star-hour-fires-at-each-real-instant",
    ),
]


@pytest.mark.parametrize(("tz", "start", "expr", "hours", "expected"), DST_CASES)
async def test_daylight_saving_through_the_kernel(
    tz: object, start: datetime, expr: str, hours: float, expected: list[str]
) -> None:
    async with virtual_kernel(start.astimezone(UTC)) as (k, clock, rec):
        k.add_cron_job(noop, cron_expression=expr, job_id="dst", timezone=tz)  # type: ignore[arg-type]
        await clock.advance(timedelta(hours=hours))
        assert starts(rec.take(), tz) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "became_cron",
    [pytest.param("added", id="added-as-cron"),
     pytest.param("rescheduled", id="rescheduled-from-an-interval")],
)
async def test_forward_wall_clock_jump_turns_skipped_fires_into_coalesced_and_missed(
    became_cron: str,
) -> None:
    start = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    async with virtual_kernel(start, timezone="UTC") as (k, clock, rec):
        if became_cron == "added":
            k.add_cron_job(noop, cron_expression="0 * * * *", job_id="hourly")
        else:  # the wall-clock watch must notice this job as much as one added as cron
            k.add_interval_job(noop, hours=12, job_id="hourly")
            k.reschedule_job("hourly", CronTrigger("0 * * * *"))
        await clock.advance(timedelta(minutes=30))
        assert starts(rec.take(), UTC) == ["2024-01-01 00:00:00+0000"]  # due at add time
        clock.jump(timedelta(hours=3))  # wall 03:30, monotonic still at +30 min
        await clock.advance(timedelta(seconds=10))
        assert brief(rec.take(), UTC) == [
            ("RunSkipped", "hourly", "2024-01-01 01:00:00+0000", "coalesced"),
            ("RunSkipped", "hourly", "2024-01-01 02:00:00+0000", "coalesced"),
            ("RunMissed", "hourly", "2024-01-01 03:00:00+0000"),
        ]
        await clock.advance(timedelta(minutes=30))
        assert starts(rec.take(), UTC) == ["2024-01-01 04:00:00+0000"]


async def test_forward_jump_with_unlimited_grace_runs_the_latest_once() -> None:
    start = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    async with virtual_kernel(start, timezone="UTC") as (k, clock, rec):
        k.add_cron_job(noop, cron_expression="0 * * * *", job_id="hourly", misfire_grace_time=None)
        await clock.advance(timedelta(minutes=30))
        rec.take()
        clock.jump(timedelta(hours=3))
        await clock.advance(timedelta(seconds=10))
        assert starts(rec.take(), UTC) == ["2024-01-01 03:00:00+0000"]


async def test_backward_wall_clock_jump_never_runs_a_fire_twice() -> None:
    start = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    async with virtual_kernel(start, timezone="UTC") as (k, clock, rec):
        k.add_cron_job(noop, cron_expression="0 * * * *", job_id="hourly")
        await clock.advance(timedelta(hours=1, seconds=30))
        assert starts(rec.take(), UTC) == ["2024-01-01 00:00:00+0000", "2024-01-01 01:00:00+0000"]
        clock.jump(timedelta(hours=-1))  # wall back to 00:00:30
        await clock.advance(timedelta(hours=2))  # wall reaches 02:00:30
        assert starts(rec.take(), UTC) == ["2024-01-01 02:00:00+0000"]


async def test_wall_clock_jumps_do_not_move_interval_jobs() -> None:
    start = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    async with virtual_kernel(start) as (k, clock, rec):
        k.add_interval_job(noop, minutes=10, job_id="every10")
        await clock.advance(timedelta(minutes=15))
        clock.jump(timedelta(hours=2))
        await clock.advance(timedelta(minutes=10))
        clock.jump(timedelta(hours=-5))
        await clock.advance(timedelta(minutes=10))
        got = [e for e in rec.take() if type(e).__name__ == "RunStarted"]
        assert [round(e.lateness, 6) for e in got] == [0.0, 0.0, 0.0]  # type: ignore[attr-defined]
        assert starts(got, UTC) == [
            "2024-01-01 00:10:00+0000",
            "2024-01-01 00:20:00+0000",
            "2024-01-01 00:30:00+0000",
        ]


async def test_date_job_runs_once_and_leaves() -> None:
    start = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    async with virtual_kernel(start) as (k, clock, rec):
        k.add_date_job(noop, run_date=start + timedelta(minutes=5), job_id="once")
        await clock.advance(timedelta(hours=1))
        assert brief(rec.take(), UTC) == [
            ("JobAdded", "once", "2024-01-01 00:05:00+0000"),
            ("RunStarted", "once", "2024-01-01 00:05:00+0000"),
            ("JobRemoved", "once", None),
            ("RunSucceeded", "once", "2024-01-01 00:05:00+0000"),
        ]
        assert k.get_jobs() == []
        await clock.advance(timedelta(days=2))
        assert rec.take() == []  # once means once


async def test_a_small_backward_wall_step_never_fires_a_cron_job_early() -> None:
    start = datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC)
    async with virtual_kernel(start, timezone="UTC") as (k, clock, rec):
        k.add_cron_job(noop, cron_expression="0 * * * *", job_id="hourly")
        await clock.advance(timedelta(minutes=30))
        clock.jump(timedelta(seconds=-0.5))  # below the step tolerance: no remap
        await clock.advance(timedelta(minutes=30))  # wall now 01:00:29.5
        started = [e for e in rec.take() if type(e).__name__ == "RunStarted"]
        assert [e.started_at for e in started] == [  # type: ignore[attr-defined]
            datetime(2024, 1, 1, 1, 0, tzinfo=UTC)
        ]

