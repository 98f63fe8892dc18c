"""The journal between the engine and a write-ahead schedule-state store: one commit per
timer tick, bodies after their start is committed, outcomes folded into the next commit
(or ``OUTCOME_DELAY`` later), a failing store retried without stopping the schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kernel import Kernel
from kernel.engine.journal import OUTCOME_DELAY, RETRY_DELAY
from kernel.state import Batch, RunEnded, RunStarted
from kernel.state.memory import MemoryScheduleStore
from kernel.testing import VirtualClock

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class RecordingStore(MemoryScheduleStore):
    """A write-ahead store in memory that remembers each commit (and can fail)."""

    write_ahead = True

    def __repr__(self) -> str:
        return "RecordingStore"

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log
        self.commits: list[list[str]] = []
        self.fail = 0

    async def commit(self, batch: Batch) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError("disk unplugged")
        self.commits.append([f"{type(r).__name__}:{r.job_id}" for r in batch])
        self.log.append(f"commit {len(batch)}")
        await super().commit(batch)


async def test_one_commit_per_tick_and_bodies_after_it() -> None:
    log: list[str] = []
    store = RecordingStore(log)
    clock = VirtualClock(T0)
    k = Kernel(clock=clock, timezone="UTC", schedule_store=store)

    async def body(name: str) -> None:
        log.append(f"body {name}")

    for name in ("a", "b", "c"):
        k.add_interval_job(body, seconds=10, job_id=name, args=(name,))
    await k.start()
    await clock.advance(1)  # the definitions are written
    assert store.commits == [["Defined:a", "Defined:b", "Defined:c"]]
    store.commits.clear()
    log.clear()
    await clock.advance(9)
    # The three starts of the tick in one commit, before any body; their outcomes wait.
    assert log == ["commit 3", "body a", "body b", "body c"]
    assert store.commits == [["RunStarted:a", "RunStarted:b", "RunStarted:c"]]
    await clock.advance(OUTCOME_DELAY)
    assert store.commits[1:] == [["RunEnded:a", "RunEnded:b", "RunEnded:c"]]
    await clock.advance(10 - OUTCOME_DELAY)
    # Outcomes still pending when the next tick starts runs share its commit.
    assert store.commits[2] == ["RunStarted:a", "RunStarted:b", "RunStarted:c"]
    await clock.advance(1)
    assert store.started == {}
    await k.shutdown()


async def test_outcomes_share_the_next_start_commit() -> None:
    store = RecordingStore([])
    clock = VirtualClock(T0)
    k = Kernel(clock=clock, timezone="UTC", schedule_store=store)

    async def body() -> None:
        return None

    k.add_interval_job(body, seconds=OUTCOME_DELAY / 2, job_id="fast")
    await k.start()
    await clock.advance(OUTCOME_DELAY / 2 * 3)
    assert store.commits == [["Defined:fast", "RunStarted:fast"],
                             ["RunEnded:fast", "RunStarted:fast"],
                             ["RunEnded:fast", "RunStarted:fast"]]
    await k.shutdown()


async def test_a_failing_store_is_retried_and_runs_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = RecordingStore([])
    clock = VirtualClock(T0)
    k = Kernel(clock=clock, timezone="UTC", schedule_store=store)
    ran: list[datetime] = []

    async def body() -> None:
        ran.append(clock.now())

    k.add_interval_job(body, seconds=10, job_id="job")
    await k.start()
    await clock.advance(1)
    store.fail = 2
    await clock.advance(9)
    assert ran == [T0 + timedelta(seconds=10)]  # not held back by the store
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "Could not write the schedule state to RecordingStore (OSError: disk unplugged); runs "
        "go on, 1 record(s) kept to write again in 1 s"]
    await clock.advance(2 * RETRY_DELAY + 2 * OUTCOME_DELAY)
    assert store.commits[-1] == ["RunStarted:job", "RunEnded:job"]
    assert store.started == {}
    assert "Schedule state is written again (RecordingStore)" in caplog.text
    await k.shutdown()


def test_records_are_plain_tuples() -> None:
    rec: Any = RunStarted("a", "r", None, T0, 1)
    assert rec._fields == ("job_id", "run_id", "scheduled_at", "started_at", "attempt")
    assert RunEnded("a", "r", "succeeded").outcome == "succeeded"
