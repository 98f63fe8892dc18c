"""The failure outbox: a failure record the store cannot take is kept, in order, and written
when the store is back; bounded, with every kept and dropped record said in the log.

Kernel tests run on the virtual clock against a store that fails while ``down``; the
SQLite ones lock a real database file from another connection.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from actors.store.sqlite import SqliteStore
from kernel import Kernel, RealClock
from kernel.events import FailureRecordDropped, RunFailed
from kernel.failures import FailureRecord, MemoryFailureStore, RetryAttempt
from kernel.metrics import SchedulerMetrics
from kernel.observe.outbox import FailureOutbox
from kernel.testing import VirtualClock
from tests.kernel_helpers import Recorder

T0 = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)


class FlakyStore(MemoryFailureStore):
    """A memory store whose writes fail while ``down``; ``attempts`` and ``written`` keep
    (monotonic time, id) of every try and of every record it took, in order."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(capacity=100_000)
        self.clock = clock
        self.down = False
        self.attempts: list[tuple[float, str]] = []
        self.written: list[str] = []

    async def add_failure(self, record: FailureRecord) -> None:
        self.attempts.append((self.clock.monotonic(), record.id))
        if self.down:
            raise ConnectionRefusedError("connection refused (database at 127.0.0.1:5432)")
        await super().add_failure(record)
        self.written.append(record.id)


async def fails() -> None:
    raise RuntimeError("upstream said no")


@asynccontextmanager
async def flaky_kernel(
    **kw: Any,
) -> AsyncIterator[tuple[Kernel, VirtualClock, FlakyStore, Recorder]]:
    clock = VirtualClock(T0)
    store = FlakyStore(clock)
    kernel = Kernel(timezone="UTC", clock=clock, failure_store=store, **kw)
    recorder = Recorder(kernel)
    await kernel.start()
    try:
        yield kernel, clock, store, recorder
    finally:
        store.down = False
        await kernel.shutdown(wait=False)
        recorder.stream.close()


def failed(events: list[Any]) -> list[RunFailed]:
    return [e for e in events if isinstance(e, RunFailed)]


async def test_records_kept_during_an_outage_are_written_in_order_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with flaky_kernel() as (kernel, clock, store, rec):
        metrics = SchedulerMetrics(version="t")
        metrics.attach(kernel)
        kernel.add_interval_job(fails, seconds=1, job_id="flaky")
        await clock.advance(3)  # fires at 1, 2, 3: stored at once
        assert len(store.written) == 3
        before = failed(rec.take())
        store.down = True
        with caplog.at_level(logging.INFO, logger="scheduler.failures"):
            await clock.advance(30)  # fires at 4..33: kept
            during = failed(rec.take())
            assert len(during) == 30
            # Counted at once, with the id of the kept record.
            assert 'status="failure",task_name="flaky"} 33' in metrics.render().decode()
            assert kernel.failure_outbox.pending == 30
            assert [r.id for r in kernel.failure_outbox.waiting()] == [e.failure_id for e in during]
            kept = [r for r in caplog.records if "kept it in memory" in r.getMessage()]
            assert len(kept) == 30
            first = during[0]
            assert first.failure_id is not None
            assert first.failure_id in kept[0].getMessage()
            assert "job flaky" in kept[0].getMessage()
            assert "scheduled 2024-01-01T00:00:04+00:00" in kept[0].getMessage()
            assert "ConnectionRefusedError" in kept[0].getMessage()
            store.down = False
            await clock.advance(20)  # the writer's backoff is at most 15 s
        after = failed(rec.take())
        assert kernel.failure_outbox.pending == 0
        ids = [e.failure_id for e in during + after]
        assert store.written[:3] == [e.failure_id for e in before]
        # Every failed run once, in the order the runs failed.
        assert store.written[3:] == ids
        assert len(set(store.written)) == len(store.written) == 53
        stored = await store.list_failures(job_id="flaky", limit=1000)
        by_id = {r.id: r for r in stored}
        for event in during:
            assert event.failure_id is not None
            assert by_id[event.failure_id].scheduled_at == event.scheduled_at
            assert by_id[event.failure_id].run_id == event.run_id
        # Writes failed from 4 s on; tries at 4.5, 5.5, 7.5, 11.5, 19.5, 34.5 (backoff
        # doubling to 15 s): the fire at 34 s came before the store was tried again, so it
        # was kept too.
        messages = [r.getMessage() for r in caplog.records]
        assert "wrote 31 kept failure record(s); none is waiting" in messages
        tries = [t for t, fid in store.attempts if fid == during[0].failure_id]
        assert tries == [4.0, 4.5, 5.5, 7.5, 11.5, 19.5, 34.5]


async def test_the_writer_backs_off_doubling_up_to_its_cap_and_tries_the_oldest() -> None:
    async with flaky_kernel() as (kernel, clock, store, _):
        kernel.add_date_job(fails, run_date=T0 + timedelta(seconds=1), job_id="once")
        store.down = True
        await clock.advance(1)
        await clock.advance(60)
        (record,) = kernel.failure_outbox.waiting()
        times = [t for t, fid in store.attempts if fid == record.id]
        assert [round(b - a, 6) for a, b in itertools.pairwise(times)] == [
            0.5,
            1.0,
            2.0,
            4.0,
            8.0,
            15.0,
            15.0,
        ]
        store.down = False
        await clock.advance(15)
        assert store.written == [record.id]
        assert kernel.failure_outbox.pending == 0


async def test_a_full_outbox_drops_the_oldest_and_says_which(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with flaky_kernel(failure_outbox_size=3) as (kernel, clock, store, rec):
        metrics = SchedulerMetrics(version="t")
        metrics.attach(kernel)
        end = T0 + timedelta(seconds=5)
        kernel.add_interval_job(fails, seconds=1, job_id="flaky", end_date=end)
        store.down = True
        with caplog.at_level(logging.INFO, logger="scheduler.failures"):
            await clock.advance(5)
        events = rec.take()
        runs = failed(events)
        assert len(runs) == 5
        dropped = [e for e in events if isinstance(e, FailureRecordDropped)]
        assert [(d.failure_id, d.scheduled_at) for d in dropped] == [
            (runs[0].failure_id, T0 + timedelta(seconds=1)),
            (runs[1].failure_id, T0 + timedelta(seconds=2)),
        ]
        assert [r.id for r in kernel.failure_outbox.waiting()] == [e.failure_id for e in runs[2:]]
        assert kernel.failure_outbox.dropped == 2
        lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert len(lines) == 2
        assert f"failure record {runs[0].failure_id} of job flaky" in lines[0]
        assert "scheduled 2024-01-01T00:00:01+00:00" in lines[0]
        assert "1 dropped since start" in lines[0]
        assert "2 dropped since start" in lines[1]
        assert "scheduled_task_failure_records_dropped_total 2" in metrics.render().decode()
        store.down = False
        await clock.advance(15)
        assert store.written == [e.failure_id for e in runs[2:]]


async def test_kept_records_are_listed_and_retried_before_and_after_they_are_written() -> None:
    async with flaky_kernel() as (kernel, clock, store, rec):
        calls: list[int] = []

        async def once_broken() -> None:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("first time")

        kernel.add_interval_job(once_broken, hours=1, job_id="j")
        store.down = True
        await clock.advance(3600)
        (event,) = failed(rec.take())
        assert event.failure_id is not None
        (listed,) = await kernel.failure_store.list_failures(job_id="j")
        assert listed.id == event.failure_id
        assert await kernel.failure_store.get_failure(event.failure_id) == listed
        run_id = await kernel.retry_failure(event.failure_id)  # linked while it is kept
        await clock.advance(0)
        assert len(calls) == 2
        store.down = False
        await clock.advance(1)
        stored = await store.get_failure(event.failure_id)
        assert stored is not None
        assert [(r.run_id, r.outcome) for r in stored.retries] == [(run_id, "succeeded")]


async def test_a_retry_linked_while_the_record_is_written_is_written_too() -> None:
    clock = VirtualClock(T0)
    gate = asyncio.Event()
    written: list[FailureRecord] = []

    class SlowStore(MemoryFailureStore):
        async def add_failure(self, record: FailureRecord) -> None:
            await gate.wait()
            written.append(record)
            await super().add_failure(record)

    outbox = FailureOutbox(SlowStore(), clock)
    record = FailureRecord(
        id="f1",
        job_id="j",
        run_id="r1",
        scheduled_at=T0,
        started_at=T0,
        duration=0.0,
        exc_type="E",
        message="",
        traceback="",
    )
    adding = asyncio.create_task(outbox.add_failure(record))
    await asyncio.sleep(0.01)
    await outbox.set_retry("f1", RetryAttempt(run_id="r2", started_at=T0, outcome="failed"))
    gate.set()
    await adding
    assert [len(r.retries) for r in written] == [0, 1]
    got = await outbox.get_failure("f1")
    assert got is not None
    assert [r.run_id for r in got.retries] == ["r2"]


async def test_shutdown_flushes_within_its_deadline_and_logs_what_was_not_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(T0)
    store = FlakyStore(clock)
    kernel = Kernel(timezone="UTC", clock=clock, failure_store=store, failure_flush_timeout=5)
    kernel.add_interval_job(fails, seconds=1, job_id="flaky")
    await kernel.start()
    store.down = True
    await clock.advance(2)
    waiting = [r.id for r in kernel.failure_outbox.waiting()]
    assert len(waiting) == 2
    with caplog.at_level(logging.INFO, logger="scheduler.failures"):
        stopping = asyncio.create_task(kernel.shutdown(wait=False))
        await clock.advance(6)
        await stopping
    text = caplog.text
    assert "2 failure record(s) could not be written within 5 s" in text
    for fid in waiting:
        assert f"not written: failure record {fid} of job flaky" in text
    assert store.written == []


async def test_shutdown_writes_what_it_can_when_the_store_is_back() -> None:
    clock = VirtualClock(T0)
    store = FlakyStore(clock)
    kernel = Kernel(timezone="UTC", clock=clock, failure_store=store, failure_flush_timeout=5)
    kernel.add_interval_job(fails, seconds=1, job_id="flaky")
    await kernel.start()
    store.down = True
    await clock.advance(2)
    await clock.advance(10)  # the writer now waits out a backoff of 8 s
    waiting = [r.id for r in kernel.failure_outbox.waiting()]
    store.down = False
    await kernel.shutdown(wait=False)  # tries at once, without waiting out the backoff
    assert store.written == waiting
    assert kernel.failure_outbox.pending == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_outbox_size": 0}, "capacity=0 must be a whole number of records >= 1"),
        ({"failure_flush_timeout": -1}, "failure_flush_timeout=-1 must be"),
    ],
    ids=["size-0", "negative-flush"],
)
def test_bad_outbox_settings_are_refused_naming_the_fix(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Kernel(**kwargs)


# -- the SQLite store: a file another process has locked ----------------------------------


@asynccontextmanager
async def locked(path: Path) -> AsyncIterator[None]:
    """Hold SQLite's write lock on ``path`` from another connection."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def _record(n: int) -> FailureRecord:
    return FailureRecord(
        id=f"f{n}",
        job_id="sync_user_info",
        run_id=f"r{n}",
        scheduled_at=T0 + timedelta(minutes=n),
        started_at=T0 + timedelta(minutes=n),
        duration=0.5,
        exc_type="RuntimeError",
        message="boom",
        traceback="",
    )


async def test_a_locked_sqlite_database_keeps_records_until_the_lock_goes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with SqliteStore(tmp_path / "lark.db", busy_timeout=0.05) as store:
        outbox = FailureOutbox(store, RealClock(), backoff=0.05, max_backoff=0.2)
        await outbox.add_failure(_record(0))
        with caplog.at_level(logging.INFO, logger="scheduler.failures"):
            async with locked(tmp_path / "lark.db"):
                for n in range(1, 6):
                    await outbox.add_failure(_record(n))
                assert outbox.pending == 5
                assert outbox.failing
                await asyncio.sleep(0.3)
                assert outbox.pending == 5
                # Listed while waiting (reads go on: the file is in WAL mode).
                listed = await outbox.list_failures(limit=10)
                assert [r.id for r in listed] == ["f5", "f4", "f3", "f2", "f1", "f0"]
            for _ in range(100):
                if not outbox.pending:
                    break
                await asyncio.sleep(0.05)
        assert outbox.pending == 0
        stored = await store.list_failures(limit=10)
        assert [r.id for r in stored] == ["f5", "f4", "f3", "f2", "f1", "f0"]  # in order
        kept = [r.getMessage() for r in caplog.records if "kept it in memory" in r.getMessage()]
        assert len(kept) == 5
        assert "locked" in kept[0]
        await outbox.close(1.0)


async def test_a_replicas_interrupted_run_is_kept_while_the_store_is_down() -> None:
    # kernel.distributed reaps a dead replica's claims through the port: the same outbox.
    async with flaky_kernel() as (kernel, clock, store, rec):
        kernel.add_interval_job(fails, hours=1, job_id="j")
        rec.take()
        store.down = True
        record = FailureRecord(
            id="interrupted-1",
            job_id="j",
            run_id="r-dead",
            scheduled_at=T0,
            started_at=T0,
            duration=0.0,
            exc_type="Interrupted",
            message="replica r1 stopped renewing its claim",
            traceback="",
        )
        await kernel.port.report_interrupted(record)
        (event,) = failed(rec.take())
        assert event.failure_id == "interrupted-1"
        assert kernel.failure_outbox.waiting() == [record]
        store.down = False
        await clock.advance(1)
        assert store.written == ["interrupted-1"]
