"""The kernel's coordinator hook on the virtual clock, with an in-memory coordinator:
only the claim's winner runs and reports, busy claims are skipped, an unreachable
coordinator is retried within grace, leases are renewed while a run lasts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kernel import Kernel
from kernel.coordination import ClaimState, ClaimVerdict, current_run
from kernel.events import Event, JobAdded
from kernel.testing import VirtualClock
from kernel.triggers import IntervalTrigger

T0 = datetime(2024, 5, 1, 1, 0, tzinfo=UTC)
START = T0 + timedelta(seconds=10)


class Shared:
    """The 'database' several in-memory coordinators share."""

    def __init__(self) -> None:
        self.claims: dict[tuple[str, datetime], list[Any]] = {}
        self.calls: list[tuple[str, ...]] = []
        self.failures = 0
        self.busy = False


class MemoryCoordinator:
    def __init__(self, shared: Shared, replica_id: str, lease: float = 3.0) -> None:
        self.shared = shared
        self.replica_id = replica_id
        self.lease = lease

    async def attach(self, kernel: Kernel) -> None:
        self.shared.calls.append(("attach", self.replica_id))

    async def detach(self) -> None:
        self.shared.calls.append(("detach", self.replica_id))

    async def claim(self, job_id: str, scheduled_at: datetime, run_id: str, *,
                    max_instances: int) -> ClaimVerdict:
        if self.shared.failures:
            self.shared.failures -= 1
            raise ConnectionError("database unreachable")
        key = (job_id, scheduled_at)
        if key in self.shared.claims:
            return "taken"
        state = "skipped" if self.shared.busy else "running"
        self.shared.claims[key] = [self.replica_id, run_id, state]
        return "busy" if self.shared.busy else "won"

    async def renew(self, job_id: str, scheduled_at: datetime, run_id: str) -> bool:
        self.shared.calls.append(("renew", self.replica_id, run_id))
        return True

    async def finish(self, job_id: str, scheduled_at: datetime, run_id: str,
                     state: ClaimState) -> None:
        self.shared.claims[(job_id, scheduled_at)][2] = state

    async def mark(self, job_id: str, scheduled_at: datetime, state: ClaimState) -> bool:
        if (job_id, scheduled_at) in self.shared.claims:
            return False
        self.shared.claims[(job_id, scheduled_at)] = [self.replica_id, "", state]
        return True


SEEN: list[Any] = []


async def job(seconds: float = 0.0) -> None:
    SEEN.append(current_run.get())
    if seconds:
        await CLOCK.sleep(seconds)


CLOCK = VirtualClock(T0)


def replicas(shared: Shared, n: int, **options: Any
             ) -> tuple[list[Kernel], list[tuple[str, str]]]:
    """``n`` kernels on one clock sharing ``shared``; their events as (replica, kind)."""
    events: list[tuple[str, str]] = []
    kernels = []
    for i in range(n):
        k = Kernel(clock=CLOCK, coordinator=MemoryCoordinator(shared, f"r{i}"))
        name = f"r{i}"

        def record(event: Event, name: str = name) -> None:
            if not isinstance(event, JobAdded):  # each replica announces its job at start
                events.append((name, type(event).__name__))

        k.add_listener(record)
        k.add_job(job, IntervalTrigger(seconds=10, start_date=START), job_id="j", **options)
        kernels.append(k)
    return kernels, events


@pytest.fixture(autouse=True)
def _fresh_clock() -> None:
    global CLOCK
    CLOCK = VirtualClock(T0)
    SEEN.clear()


async def test_only_the_winner_of_the_claim_runs_and_reports() -> None:
    shared = Shared()
    (a, b), events = replicas(shared, 2)
    async with a, b:
        await CLOCK.advance(10)
    assert events == [("r0", "RunStarted"), ("r0", "RunSucceeded")]
    assert shared.claims[("j", START)][2] == "succeeded"
    assert [(r.job_id, r.scheduled_at) for r in SEEN] == [("j", START)]
    # ``async with a, b`` stops b first.
    assert shared.calls == [("attach", "r0"), ("attach", "r1"), ("detach", "r1"),
                            ("detach", "r0")]


async def test_a_busy_claim_is_reported_skipped_by_the_replica_that_recorded_it() -> None:
    shared = Shared()
    shared.busy = True
    (a, b), events = replicas(shared, 2)
    async with a, b:
        await CLOCK.advance(10)
    assert events == [("r0", "RunSkipped")]
    assert SEEN == []


@pytest.mark.parametrize(
    ("failures", "grace", "expected"),
    [
        (2, 60, [("r0", "RunStarted"), ("r0", "RunSucceeded")]),
        (50, 1, [("r0", "RunMissed")]),
    ],
    ids=["recovers-within-grace", "unreachable-past-grace-is-missed"],
)
async def test_an_unreachable_coordinator_is_retried_within_grace(
    failures: int, grace: float, expected: list[tuple[str, str]]
) -> None:
    shared = Shared()
    shared.failures = failures
    (a,), events = replicas(shared, 1, misfire_grace_time=grace)
    async with a:
        await CLOCK.advance(10)
        await CLOCK.advance(5)
    assert events == expected


async def test_the_winner_renews_its_lease_while_the_run_lasts() -> None:
    shared = Shared()
    (a,), _ = replicas(shared, 1, args=[2.5])
    async with a:
        await CLOCK.advance(10)
        await CLOCK.advance(3)
    # Lease 3 s, renewed every second of a 2.5 s run.
    run_id = shared.claims[("j", START)][1]
    assert [c for c in shared.calls if c[0] == "renew"] == [("renew", "r0", run_id)] * 2
    assert shared.claims[("j", START)][2] == "succeeded"


async def test_a_failed_run_finishes_its_claim_as_failed() -> None:
    shared = Shared()
    (a,), events = replicas(shared, 1, args=["not a number"])
    async with a:
        await CLOCK.advance(10)
    assert events == [("r0", "RunStarted"), ("r0", "RunFailed")]
    assert shared.claims[("j", START)][2] == "failed"


async def test_manual_runs_are_not_claimed() -> None:
    shared = Shared()
    (a,), events = replicas(shared, 1)
    async with a:
        a.run_job("j")
        await CLOCK.advance(0)
    assert events == [("r0", "RunStarted"), ("r0", "RunSucceeded")]
    assert shared.claims == {}
    assert SEEN == [None]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"coalesce": True}, [("r0", "RunSkipped"), ("r0", "RunSkipped"),
                              ("r0", "RunStarted"), ("r0", "RunSucceeded")]),
        ({"coalesce": False, "misfire_grace_time": 15},
         [("r0", "RunMissed"), ("r0", "RunStarted"), ("r0", "RunStarted"),
          ("r0", "RunSucceeded"), ("r0", "RunSucceeded")]),
    ],
    ids=["coalesced-reported-once", "missed-reported-once"],
)
async def test_times_decided_after_a_stall_are_reported_by_one_replica(
    options: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    shared = Shared()
    (a, b), events = replicas(shared, 2, max_instances=3, **options)
    async with a, b:
        CLOCK.stall(30)  # both loops blocked: the times at 10, 20 and 30 s are due at once
        await CLOCK.advance(0)
    assert sorted(events) == sorted(expected)
    states = sorted((when - START).total_seconds() for (_, when) in shared.claims)
    assert states == [0.0, 10.0, 20.0]


async def test_a_replica_whose_loop_stalled_reports_nothing_another_ran() -> None:
    shared = Shared()
    (a,), events = replicas(shared, 1, misfire_grace_time=5)
    await MemoryCoordinator(shared, "other").claim("j", START, "x", max_instances=1)
    async with a:
        CLOCK.stall(17)  # 7 s late: past grace, but another replica ran it on time
        await CLOCK.advance(0)
    assert events == []


async def test_an_unreachable_database_is_retried_then_reported_down() -> None:
    from kernel.distributed._pg import Database

    db = Database("postgresql://postgres@127.0.0.1:1/test", schema="t_unreachable")
    with pytest.raises(OSError, match=r"Connect call failed|Connection refused"):
        await db.open(patience=0)  # no patience: the first refusal is final
    assert db.health.state == "down"
    assert db.health.error is not None
    assert "127.0.0.1" in db.health.error
