"""The schedule-state stores, each on its own: what a batch of records leaves behind.

The same table runs on every implementation of :class:`kernel.state.ScheduleStore`
(PostgreSQL in ``test_state_pg.py``, sharing :func:`check_store`).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kernel.state import (
    Decided,
    Defined,
    Forgotten,
    InFlight,
    JobState,
    RunEnded,
    RunStarted,
    ScheduleStore,
    trigger_key,
)
from kernel.state.memory import MemoryScheduleStore
from kernel.state.sqlite import SqliteScheduleStore
from kernel.triggers import CronTrigger, DateTrigger, IntervalTrigger

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CRON = CronTrigger("* * * * *", "UTC")
EVERY_10 = IntervalTrigger(minutes=10)
EVERY_7 = IntervalTrigger(minutes=7)
ONCE = DateTrigger(T0)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def check_store(store: ScheduleStore, reopen: ScheduleStore | None = None) -> None:
    """Write batches and read back (from ``reopen`` too: another connection, after close)."""
    await store.open()
    assert await store.load() == ({}, [])
    await store.commit([
        Defined("a", "m:f", CRON, None, t(0)),
        Defined("b", "m:g", EVERY_10, t(600), t(0)),
        RunStarted("a", "r1", t(60), t(60.5), 1),
        RunStarted("a", "r2", None, t(61), 1),  # a manual run: no scheduled time
        Decided("b", t(600), "missed"),
    ])
    await store.commit([
        RunEnded("a", "r2", "succeeded"),
        RunStarted("a", "r3", t(120), t(120), 1),
        Decided("a", t(90), "coalesced"),  # older than the latest decided: kept as is
        RunStarted("a", "r0", t(30), t(30), 1),
        RunEnded("a", "r0", "failed"),
        RunStarted("a", "r4", t(30), t(130), 2),  # its retry: an older time
        RunEnded("a", "r4", "failed"),
        Defined("c", "m:h", ONCE, None, t(1)),
        Forgotten("c"),
    ])
    expected_jobs = {
        "a": JobState(job_id="a", func_ref="m:f", trigger=trigger_key(CRON), anchor=None,
                      since=t(0), last_decided=t(120), last_outcome="run"),
        "b": JobState(job_id="b", func_ref="m:g", trigger=trigger_key(EVERY_10),
                      anchor=t(600), since=t(0), last_decided=t(600), last_outcome="missed"),
    }
    expected_runs = [
        InFlight(run_id="r1", job_id="a", scheduled_at=t(60), started_at=t(60.5)),
        InFlight(run_id="r3", job_id="a", scheduled_at=t(120), started_at=t(120)),
    ]
    assert await store.load() == (expected_jobs, expected_runs)
    # A definition written again starts its state afresh.
    await store.commit([Defined("b", "m:g", EVERY_7, t(900), t(800))])
    jobs, _ = await store.load()
    assert jobs["b"] == JobState(job_id="b", func_ref="m:g", trigger=trigger_key(EVERY_7),
                                 anchor=t(900), since=t(800))
    await store.close()
    if reopen is not None:
        await reopen.open()
        assert (await reopen.load())[1] == expected_runs
        await reopen.close()


async def test_memory_store() -> None:
    await check_store(MemoryScheduleStore())


async def test_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "lark.db"
    await check_store(SqliteScheduleStore(path), SqliteScheduleStore(path))
    assert SqliteScheduleStore(path).integrity_check() == "ok"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


async def test_sqlite_store_commits_all_or_nothing(tmp_path: Path) -> None:
    store = SqliteScheduleStore(tmp_path / "lark.db")
    await store.open()
    await store.commit([Defined("a", "m:f", CRON, None, t(0))])
    bad = RunStarted("a", "r1", t(60), None, 1)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        await store.commit([RunStarted("a", "r0", t(30), t(30), 1), bad])
    kept = JobState(job_id="a", func_ref="m:f", trigger=trigger_key(CRON), anchor=None,
                    since=t(0))
    assert await store.load() == ({"a": kept}, [])
    await store.close()


def test_sqlite_store_refuses_an_unknown_synchronous_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous='OFF': use 'NORMAL' or 'FULL'"):
        SqliteScheduleStore(tmp_path / "x.db", synchronous="OFF")


async def test_sqlite_store_waits_in_its_thread_while_another_connection_writes(
    tmp_path: Path,
) -> None:
    import anyio

    path = tmp_path / "lark.db"
    store = SqliteScheduleStore(path, busy_timeout=10)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # the service's store in the middle of a write
    done = anyio.Event()

    async def commit() -> None:
        await store.commit([Defined("a", "m:f", CRON, None, t(0))])
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(commit)
        await anyio.sleep(0.2)
        assert not done.is_set()  # waiting for the lock, without blocking the loop
        other.execute("COMMIT")
        with anyio.fail_after(5):
            await done.wait()
    other.close()
    assert list((await store.load())[0]) == ["a"]
    await store.close()
