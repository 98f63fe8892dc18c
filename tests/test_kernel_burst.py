"""Many jobs due at the same instant: the dispatcher hands them out a bounded batch per loop
callback (kernel.engine.dispatcher), in order, and skips a job changed while it waited."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from kernel import JobDefaults
from kernel.engine.dispatcher import _BATCH
from kernel.events import RunStarted
from kernel.triggers import DateTrigger
from tests.kernel_helpers import virtual_kernel

START = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
DUE = START + timedelta(seconds=10)
N = 2 * _BATCH + 44  # three loop callbacks: two full batches and a part
DEFAULTS = JobDefaults(coalesce=False, max_instances=10, misfire_grace_time=None)


async def test_a_burst_runs_every_job_once_in_the_order_they_were_added() -> None:
    ran: list[int] = []

    async def body(i: int) -> None:
        ran.append(i)

    async with virtual_kernel(START, defaults=DEFAULTS) as (k, clock, rec):
        for i in range(N):
            k.add_date_job(body, DUE, args=(i,), job_id=f"j{i}")
        await clock.advance(timedelta(seconds=10))
        started = [e for e in rec.take() if isinstance(e, RunStarted)]
        assert ran == list(range(N))
        assert [e.job_id for e in started] == [f"j{i}" for i in range(N)]
        # Every fire of the burst counts as started at the instant (the virtual clock
        # does not move while the loop works through the batches).
        assert {e.started_at for e in started} == {DUE}
        assert {e.lateness for e in started} == {0.0}
        assert k.get_jobs() == []  # one-shot jobs leave once fired


async def test_runs_of_a_batch_start_before_the_next_batch_is_handed_out() -> None:
    # What bounds a burst's memory (and keeps the loop responsive): the first runs have
    # started, and finished, before the last fires are handed out.
    events: list[str] = []

    async def body(i: int) -> None:
        events.append(f"ran {i}")

    async with virtual_kernel(START, defaults=DEFAULTS) as (k, clock, _rec):
        k.add_listener(lambda e: events.append(f"start {e.job_id}")
                       if isinstance(e, RunStarted) else None)
        for i in range(N):
            k.add_date_job(body, DUE, args=(i,), job_id=f"j{i}")
        await clock.advance(timedelta(seconds=10))
        assert events.index("ran 0") < events.index(f"start j{_BATCH}")
        assert events.index(f"ran {_BATCH - 1}") < events.index(f"start j{_BATCH}")
        assert len([e for e in events if e.startswith("ran")]) == N


async def test_a_job_removed_or_rescheduled_while_its_fire_waits_is_not_fired_then() -> None:
    ran: list[int] = []
    later = DUE + timedelta(seconds=5)

    async def body(i: int) -> None:
        ran.append(i)
        if i == 0:
            # Runs during the burst, while the jobs of the last batch still wait.
            k.remove_job(f"j{N - 1}")
            k.reschedule_job(f"j{N - 2}", DateTrigger(later))

    async with virtual_kernel(START, defaults=DEFAULTS) as (k, clock, rec):
        for i in range(N):
            k.add_date_job(body, DUE, args=(i,), job_id=f"j{i}")
        await clock.advance(timedelta(seconds=10))
        assert ran == list(range(N - 2))
        assert [j.id for j in k.get_jobs()] == [f"j{N - 2}"]
        await clock.advance(timedelta(seconds=5))
        assert ran == [*range(N - 2), N - 2]
        started = [e for e in rec.take() if isinstance(e, RunStarted)]
        assert started[-1].scheduled_at == later


async def test_a_stop_during_a_burst_drops_the_fires_still_waiting() -> None:
    ran: list[int] = []

    async def body(i: int) -> None:
        ran.append(i)

    async with virtual_kernel(START, defaults=DEFAULTS) as (k, clock, _rec):
        for i in range(N):
            k.add_date_job(body, DUE, args=(i,), job_id=f"j{i}")
        clock.stall(timedelta(seconds=10))
        # The first batch is handed out in this callback; the rest would follow in later
        # loop iterations, but the kernel stops first.
        k._dispatcher._on_timer()
        await k.shutdown(wait=True)
        await asyncio.sleep(0)
        assert ran == list(range(_BATCH))
