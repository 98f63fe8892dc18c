"""Restore semantics on the virtual clock: a kernel killed and started again on its
schedule state (``kernel.state``) loses nothing.

A "crash" is simulated by copying the store as it is while the first kernel still runs
(the disk image a SIGKILL would leave) and starting a second kernel on the copy; the
real SIGKILL of a ``serve`` process is in ``test_serve_restart.py``. Every test runs on
the memory store and on the SQLite store, and asserts exact scheduled times.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from kernel import Kernel, RunFailed, RunMissed, RunSkipped, RunStarted, RunSucceeded
from kernel.events import Event
from kernel.failures import MemoryFailureStore
from kernel.retry import RetryPolicy
from kernel.state import ScheduleStore
from kernel.state.memory import MemoryScheduleStore
from kernel.state.sqlite import SqliteScheduleStore
from kernel.testing import VirtualClock
from tests.kernel_helpers import Recorder

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def noop() -> None:
    return None


async def slow() -> None:
    await anyio.sleep_forever()


class Stores:
    """Makes a store of one kind and copies one as a SIGKILL would leave it."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.n = 0

    def new(self) -> ScheduleStore:
        if self.kind == "memory":
            return MemoryScheduleStore()
        self.n += 1
        return SqliteScheduleStore(self.tmp_path / f"state{self.n}.db")

    def crash_image(self, store: ScheduleStore) -> ScheduleStore:
        if isinstance(store, MemoryScheduleStore):
            image = MemoryScheduleStore()
            image.definitions = dict(store.definitions)
            image.decided = dict(store.decided)
            image.last_run = dict(store.last_run)
            image.started = dict(store.started)
            return image
        assert isinstance(store, SqliteScheduleStore)
        self.n += 1
        path = self.tmp_path / f"state{self.n}.db"
        with sqlite3.connect(store.path) as src, sqlite3.connect(path) as dst:
            src.backup(dst)
        src.close()
        dst.close()
        return SqliteScheduleStore(path)


@pytest.fixture(params=["memory", "sqlite"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    return Stores(request.param, tmp_path)


_recorders: list[Recorder] = []


def record(kernel: Kernel) -> Recorder:
    rec = Recorder(kernel)
    _recorders.append(rec)
    return rec


@pytest.fixture(autouse=True)
def _close_recorders() -> Any:
    yield
    while _recorders:
        _recorders.pop().stream.close()


def kinds(events: list[Event]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for e in events:
        if isinstance(e, RunStarted):
            out.append(("started", e.job_id, e.scheduled_at, e.lateness, e.attempt))
        elif isinstance(e, RunMissed):
            out.append(("missed", e.job_id, e.scheduled_at, e.lateness))
        elif isinstance(e, RunSkipped):
            out.append(("skipped", e.job_id, e.scheduled_at, e.reason))
        elif isinstance(e, RunFailed):
            out.append(("failed", e.job_id, e.scheduled_at, e.exc_type, e.attempt))
        elif isinstance(e, RunSucceeded):
            out.append(("succeeded", e.job_id, e.scheduled_at))
    return out


async def crash_and_restart(
    stores: Stores, clock: VirtualClock, first: Kernel, downtime: timedelta,
    make: Callable[[ScheduleStore], Kernel],
) -> tuple[Kernel, Recorder]:
    """Copy ``first``'s store as it is now, drop ``first``, let ``downtime`` pass and start
    a kernel made by ``make`` on the copy."""
    await clock.settle()
    image = stores.crash_image(first.schedule_store)
    await first.shutdown(wait=False)
    clock.stall(downtime)
    second = make(image)
    rec = record(second)
    await second.start()
    await clock.settle()
    return second, rec


def cron_kernel(clock: VirtualClock, store: ScheduleStore, **options: Any) -> Kernel:
    k = Kernel(clock=clock, timezone="UTC", schedule_store=store)
    k.add_cron_job(noop, "* * * * *", job_id="every_minute", **options)
    return k


async def test_a_fire_in_the_downtime_within_grace_runs_once_late(stores: Stores) -> None:
    clock = VirtualClock(at(0.5))  # 00:00:30
    first = cron_kernel(clock, stores.new())
    rec = record(first)
    await first.start()
    await clock.advance(70)  # 00:01:00 runs; killed at 00:01:40
    assert kinds(rec.take()) == [("started", "every_minute", at(1), 0.0, 1),
                                 ("succeeded", "every_minute", at(1))]
    second, rec = await crash_and_restart(stores, clock, first, timedelta(seconds=35),
                                          lambda s: cron_kernel(clock, s))
    # Back at 00:02:15: 00:02:00 fell in the downtime, 15 s late, within the 60 s grace.
    assert kinds(rec.take()) == [("started", "every_minute", at(2), 15.0, 1),
                                 ("succeeded", "every_minute", at(2))]
    await clock.advance(50)
    assert kinds(rec.take()) == [("started", "every_minute", at(3), 0.0, 1),
                                 ("succeeded", "every_minute", at(3))]
    # Killed again at 00:03:05 and back at 00:03:10: nothing ran twice, nothing fell.
    third, rec = await crash_and_restart(stores, clock, second, timedelta(seconds=5),
                                         lambda s: cron_kernel(clock, s))
    assert kinds(rec.take()) == []
    await clock.advance(50)
    assert kinds(rec.take()) == [("started", "every_minute", at(4), 0.0, 1),
                                 ("succeeded", "every_minute", at(4))]
    await third.shutdown()


@pytest.mark.parametrize(
    ("coalesce", "expected"),
    [
        pytest.param(True, [("skipped", "every_minute", at(2), "coalesced"),
                            ("started", "every_minute", at(3), 5.0, 1),
                            ("succeeded", "every_minute", at(3))], id="coalesce"),
        pytest.param(False, [("missed", "every_minute", at(2), 65.0),
                             ("started", "every_minute", at(3), 5.0, 1),
                             ("succeeded", "every_minute", at(3))], id="no-coalesce"),
    ],
)
async def test_fires_beyond_grace_are_missed_and_coalesced_by_the_policy(
    stores: Stores, coalesce: bool, expected: list[tuple[Any, ...]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(at(0.5))
    first = cron_kernel(clock, stores.new(), coalesce=coalesce)
    await first.start()
    await clock.advance(70)
    # Killed at 00:01:40, back at 00:03:05: 00:02:00 is 65 s late, 00:03:00 5 s.
    second, rec = await crash_and_restart(
        stores, clock, first, timedelta(seconds=85),
        lambda s: cron_kernel(clock, s, coalesce=coalesce))
    assert kinds(rec.take()) == expected
    if not coalesce:
        assert any("scheduled at 2024-01-01 00:02:00+00:00 was missed by 65.000 s" in r.message
                   for r in caplog.records)
    await second.shutdown()


async def test_a_run_in_flight_at_the_crash_is_recorded_interrupted_and_retried(
    stores: Stores,
) -> None:
    clock = VirtualClock(at(0.5))

    def make(store: ScheduleStore) -> Kernel:
        # A failure store per process: the dropped kernel's cancellation records stay in
        # its own (a SIGKILL leaves none).
        k = Kernel(clock=clock, timezone="UTC", schedule_store=store,
                   failure_store=MemoryFailureStore())
        k.add_cron_job(slow, "0 * * * *", job_id="hourly",
                       retry=RetryPolicy(max_attempts=2, backoff=30, jitter=0))
        return k

    first = make(stores.new())
    await first.start()
    await clock.advance(timedelta(minutes=60))  # 01:00 started, never ends
    assert first.in_flight == 1
    second, rec = await crash_and_restart(stores, clock, first, timedelta(minutes=5), make)
    assert kinds(rec.take()) == [("failed", "hourly", at(60), "Interrupted", 1)]
    (record,) = await second.failure_store.list_failures()
    assert (record.job_id, record.scheduled_at, record.exc_type, record.attempt) == (
        "hourly", at(60), "Interrupted", 1)
    assert "stopped (killed or crashed) while this run was in progress" in record.message
    await clock.advance(30)  # the retry policy's delay
    assert kinds(rec.take()) == [("started", "hourly", at(60), 0.0, 2)]
    # The first interruption is recorded as such: a third start reports only the retry's.
    third, rec = await crash_and_restart(stores, clock, second, timedelta(seconds=1), make)
    assert kinds(rec.take()) == [("failed", "hourly", at(60), "Interrupted", 2)]
    await third.shutdown(wait=False)


async def test_an_interval_job_keeps_its_grid(stores: Stores) -> None:
    clock = VirtualClock(at(0))

    def make(store: ScheduleStore) -> Kernel:
        k = Kernel(clock=clock, timezone="UTC", schedule_store=store)
        k.add_interval_job(noop, minutes=10, job_id="every_10", misfire_grace_time=None)
        return k

    first = make(stores.new())
    rec = record(first)
    await first.start()
    await clock.advance(timedelta(minutes=25))
    assert [k[2] for k in kinds(rec.take()) if k[0] == "started"] == [at(10), at(20)]
    # Down from 00:25 to 00:47: 00:30 and 00:40 fell (coalesced into one late run of 00:40);
    # the grid goes on at 00:50, not 10 minutes after the restart.
    second, rec = await crash_and_restart(stores, clock, first, timedelta(minutes=22), make)
    await clock.advance(timedelta(minutes=13))
    assert kinds(rec.take()) == [
        ("skipped", "every_10", at(30), "coalesced"),
        ("started", "every_10", at(40), 420.0, 1),
        ("succeeded", "every_10", at(40)),
        ("started", "every_10", at(50), 0.0, 1),
        ("succeeded", "every_10", at(50)),
        ("started", "every_10", at(60), 0.0, 1),
        ("succeeded", "every_10", at(60)),
    ]
    await second.shutdown()


async def test_a_changed_trigger_starts_afresh(stores: Stores) -> None:
    clock = VirtualClock(at(0))
    first = Kernel(clock=clock, timezone="UTC", schedule_store=stores.new())
    first.add_interval_job(noop, minutes=10, job_id="job")
    await first.start()
    await clock.advance(timedelta(minutes=25))

    def make(store: ScheduleStore) -> Kernel:
        k = Kernel(clock=clock, timezone="UTC", schedule_store=store)
        k.add_interval_job(noop, minutes=7, job_id="job")
        return k

    second, rec = await crash_and_restart(stores, clock, first, timedelta(minutes=22), make)
    await clock.advance(timedelta(minutes=7))
    assert [k[:3] for k in kinds(rec.take())] == [("started", "job", at(54)),
                                                  ("succeeded", "job", at(54))]
    await second.shutdown()


async def test_a_one_shot_job_that_ran_does_not_run_again(stores: Stores) -> None:
    clock = VirtualClock(at(0))

    def make(store: ScheduleStore) -> Kernel:
        k = Kernel(clock=clock, timezone="UTC", schedule_store=store)
        k.add_date_job(noop, at(5), job_id="once", misfire_grace_time=None)
        return k

    first = make(stores.new())
    await first.start()
    await clock.advance(timedelta(minutes=6))
    second, rec = await crash_and_restart(stores, clock, first, timedelta(minutes=1), make)
    await clock.advance(timedelta(minutes=1))
    assert kinds(rec.take()) == []
    assert [j.id for j in second.get_jobs()] == []
    await second.shutdown()


async def test_a_job_added_while_running_keeps_its_grid_after_a_clean_restart(
    stores: Stores,
) -> None:
    clock = VirtualClock(at(0))
    store = stores.new()
    first = Kernel(clock=clock, timezone="UTC", schedule_store=store)
    await first.start()
    await clock.advance(60)
    first.add_interval_job(noop, minutes=10, job_id="late_comer")  # grid 00:11, 00:21, ...
    await clock.advance(timedelta(minutes=24))
    await first.shutdown()
    clock.stall(timedelta(minutes=10))  # back at 00:35: 00:31 fell, 4 minutes late

    second = Kernel(clock=clock, timezone="UTC", schedule_store=store)
    second.add_interval_job(noop, minutes=10, job_id="late_comer")
    rec = record(second)
    await second.start()
    await clock.settle()
    assert kinds(rec.take()) == [("missed", "late_comer", at(31), 240.0)]
    assert second.get_job("late_comer").next_run_time == at(41)
    await second.shutdown()
