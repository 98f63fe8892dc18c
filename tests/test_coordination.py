"""The kernel's coordinator hook on the virtual clock, with an in-memory coordinator:
only the claim's winner runs and reports, busy claims are skipped, an unreachable
coordinator is retried within grace, leases are renewed while a run lasts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kernel import Kernel
from kernel.coordination import (
    Claim,
    ClaimRequest,
    ClaimState,
    FinishRequest,
    LeaseLost,
    MarkRequest,
    current_run,
)
from kernel.engine.claims import CLAIM_LEAD
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
        self.tokens = 0
        self.early: list[float] = []
        self.elsewhere: set[tuple[str, str]] = set()  # (replica, job) it does not fire
        self.won_at: dict[int, float] = {}  # token -> when its claim was won


class MemoryCoordinator:
    def __init__(self, shared: Shared, replica_id: str, lease: float = 3.0) -> None:
        self.shared = shared
        self.replica_id = replica_id
        self.lease = lease
        self.held: dict[int, Callable[[LeaseLost], None]] = {}
        self.on_rebalance: Callable[[tuple[str, ...], tuple[str, ...]], None] | None = None

    async def attach(self, kernel: Kernel) -> None:
        self.shared.calls.append(("attach", self.replica_id))

    async def detach(self) -> None:
        self.shared.calls.append(("detach", self.replica_id))

    def owns(self, job_id: str) -> bool:
        return (self.replica_id, job_id) not in self.shared.elsewhere

    def _token(self) -> int:
        self.shared.tokens += 1
        return self.shared.tokens

    async def claim(self, job_id: str, scheduled_at: datetime, run_id: str, *,
                    max_instances: int) -> Claim:
        if self.shared.failures:
            self.shared.failures -= 1
            raise ConnectionError("database unreachable")
        if self.shared.early:
            wait = self.shared.early.pop(0)
            self.shared.calls.append(("early", self.replica_id, CLOCK.now()))
            return Claim("early", wait=wait)
        key = (job_id, scheduled_at)
        if key in self.shared.claims:
            return Claim("taken")
        state = "skipped" if self.shared.busy else "running"
        token = self._token()
        self.shared.claims[key] = [self.replica_id, run_id, state, token, 1]
        self.shared.won_at[token] = CLOCK.monotonic()
        return Claim("busy") if self.shared.busy else Claim("won", token)

    async def claim_many(self, requests: Sequence[ClaimRequest]) -> list[Claim]:
        self.shared.calls.append(("batch", self.replica_id, len(requests)))
        return [await self.claim(r.job_id, r.scheduled_at, r.run_id,
                                 max_instances=r.max_instances) for r in requests]

    async def settle_many(self, claims: Sequence[ClaimRequest],
                          finishes: Sequence[FinishRequest]) -> tuple[list[Claim], list[bool]]:
        self.shared.calls.append(("settle", self.replica_id, len(finishes), len(claims)))
        stored = [await self.finish(r.job_id, r.scheduled_at, r.run_id, r.state, token=r.token)
                  for r in finishes]
        return await self.claim_many(claims), stored

    async def finish_many(self, requests: Sequence[FinishRequest]) -> list[bool]:
        self.shared.calls.append(("finish_many", self.replica_id, len(requests)))
        return [await self.finish(r.job_id, r.scheduled_at, r.run_id, r.state, token=r.token)
                for r in requests]

    async def claim_retry(self, job_id: str, scheduled_at: datetime, run_id: str, *,
                          attempt: int, max_instances: int) -> Claim:
        row = self.shared.claims[(job_id, scheduled_at)]
        if row[4] != attempt - 1 or row[2] not in ("failed", "interrupted"):
            return Claim("taken")
        token = self._token()
        self.shared.claims[(job_id, scheduled_at)] = [self.replica_id, run_id, "running", token,
                                                      attempt]
        self.shared.calls.append(("retry", self.replica_id, attempt))
        return Claim("won", token)

    def hold(self, token: int, on_lost: Callable[[LeaseLost], None]) -> None:
        self.shared.calls.append(("hold", self.replica_id, token))
        won_at = self.shared.won_at.get(token, CLOCK.monotonic())
        if CLOCK.monotonic() >= won_at + self.lease * 5 / 6:  # as PostgresCoordinator
            on_lost("unrenewable")
            return
        self.held[token] = on_lost

    def release(self, token: int) -> None:
        self.shared.calls.append(("release", self.replica_id, token))
        self.held.pop(token, None)

    def lose(self, why: LeaseLost) -> None:
        """The leases of this replica's runs are lost (reaped elsewhere)."""
        for key, row in self.shared.claims.items():
            if row[0] == self.replica_id and row[2] == "running":
                self.shared.claims[key][2] = "interrupted"
        for on_lost in list(self.held.values()):
            on_lost(why)
        self.held.clear()

    async def finish(self, job_id: str, scheduled_at: datetime, run_id: str,
                     state: ClaimState, *, token: int) -> bool:
        row = self.shared.claims[(job_id, scheduled_at)]
        if row[3] != token or row[2] != "running":
            return False
        row[2] = state
        return True

    async def mark(self, job_id: str, scheduled_at: datetime, state: ClaimState) -> bool:
        if (job_id, scheduled_at) in self.shared.claims:
            return False
        self.shared.claims[(job_id, scheduled_at)] = [self.replica_id, "", state, 0, 1]
        return True

    async def mark_many(self, requests: Sequence[MarkRequest]) -> list[bool]:
        self.shared.calls.append(("mark_many", self.replica_id, len(requests)))
        return [await self.mark(r.job_id, r.scheduled_at, r.state) for r in requests]


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
    assert [c for c in shared.calls if c[0] in ("attach", "detach")] == [
        ("attach", "r0"), ("attach", "r1"), ("detach", "r1"), ("detach", "r0")]


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


async def test_the_winner_holds_its_lease_while_the_run_lasts_and_sees_its_token() -> None:
    shared = Shared()
    (a,), _ = replicas(shared, 1, args=[2.5])
    async with a:
        await CLOCK.advance(10)
        await CLOCK.advance(3)
    row = shared.claims[("j", START)]
    token = row[3]
    assert [c for c in shared.calls if c[0] in ("hold", "release")] == [
        ("hold", "r0", token), ("release", "r0", token)]
    assert row[2] == "succeeded"
    assert [(r.run_id, r.token) for r in SEEN] == [(row[1], token)]


async def test_a_lost_lease_cancels_the_run_at_once_and_stores_no_outcome() -> None:
    shared = Shared()
    (a,), events = replicas(shared, 1, args=[5.0])
    coordinator = a._coordinator
    assert isinstance(coordinator, MemoryCoordinator)
    async with a:
        await CLOCK.advance(10)
        await CLOCK.advance(1)
        coordinator.lose("lost")
        await CLOCK.advance(0)
        assert a.in_flight == 0  # cancelled at once, not at the end of its 5 s
        await CLOCK.advance(8)
    # The claim stays as the reaper left it; no success and no second record from here.
    assert shared.claims[("j", START)][2] == "interrupted"
    assert ("r0", "RunSucceeded") not in events
    assert ("r0", "RunFailed") not in events


async def test_a_time_not_due_on_the_coordinators_clock_is_asked_again_later() -> None:
    shared = Shared()
    shared.early = [0.75]  # this replica's clock runs 0.8 s ahead of the database's
    (a,), events = replicas(shared, 1)
    async with a:
        await CLOCK.advance(10)
        assert events == []
        await CLOCK.advance(0.75)
    assert events == [("r0", "RunStarted"), ("r0", "RunSucceeded")]
    # Asked CLAIM_LEAD before the time (claims go out ahead), answered "early", asked again.
    assert [c for c in shared.calls if c[0] == "early"] == [
        ("early", "r0", START - timedelta(seconds=CLAIM_LEAD))]


async def test_a_replica_ahead_of_the_database_warns_once_per_ten_minutes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    shared = Shared()
    (a,), events = replicas(shared, 1)

    def ahead() -> list[tuple[int, str]]:
        return [(r.levelno, r.getMessage().split(" scheduled at ")[1][:19])
                for r in caplog.records if "not due yet on the database's clock" in r.message]

    with caplog.at_level(logging.DEBUG, logger="scheduler.coordination"):
        async with a:
            shared.early = [0.3, 0.3]  # the first fire is asked twice too early
            await CLOCK.advance(10)
            await CLOCK.advance(1)
            assert ahead() == [(logging.WARNING, "2024-05-01 01:00:10"),
                               (logging.DEBUG, "2024-05-01 01:00:10")]
            await CLOCK.advance(289)  # 300 s on: said again at DEBUG only
            shared.early = [0.3]
            await CLOCK.advance(10)
            assert ahead()[2:] == [(logging.DEBUG, "2024-05-01 01:05:10")]
            await CLOCK.advance(290)  # 600 s after the first warning: a warning again
            shared.early = [0.3]
            await CLOCK.advance(10)
            await CLOCK.advance(1)
            assert ahead()[3:] == [(logging.WARNING, "2024-05-01 01:10:10")]
    assert events.count(("r0", "RunSucceeded")) == 61
    first = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "runs ahead of the database's" in first.getMessage()


async def test_a_retry_takes_a_claim_of_its_own_with_a_new_token() -> None:
    from kernel.retry import RetryPolicy

    shared = Shared()
    (a, b), events = replicas(shared, 2, args=["not a number"],
                              retry=RetryPolicy(max_attempts=2, backoff=2.0, jitter=0.0))
    async with a, b:
        await CLOCK.advance(10)
        await CLOCK.advance(2)
    row = shared.claims[("j", START)]
    assert row[4] == 2
    assert row[2] == "failed"
    assert [c for c in shared.calls if c[0] == "retry"] == [("retry", row[0], 2)]
    assert sorted(e for _, e in events) == ["RunFailed", "RunFailed", "RunStarted",
                                            "RunStarted"]


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


async def test_the_claims_of_one_timer_tick_go_in_one_batch() -> None:
    shared = Shared()
    (a,), _ = replicas(shared, 1)
    for name in ("k", "l"):
        a.add_job(job, IntervalTrigger(seconds=10, start_date=START), job_id=name)
    async with a:
        await CLOCK.advance(10)
    assert [c for c in shared.calls if c[0] == "batch"] == [("batch", "r0", 3)]
    assert [c for c in shared.calls if c[0] == "finish_many"] == [("finish_many", "r0", 3)]
    assert sorted(key for key, row in shared.claims.items() if row[2] == "succeeded") == [
        ("j", START), ("k", START), ("l", START)]


async def test_claims_go_out_ahead_and_each_run_starts_at_its_time() -> None:
    """The dispatcher hands a job to the claim gate up to CLAIM_LEAD early, ticks at least
    half the lead apart, and fires what fell due meanwhile together: their claims go in
    one statement, answered before the times, and each run starts at its own time."""
    shared = Shared()
    (a,), _ = replicas(shared, 1)
    started: dict[str, datetime] = {}

    async def stamp(name: str) -> None:
        started[name] = CLOCK.now()

    # j (START) is claimed at START - lead; k and l come within the next half-lead, so the
    # next tick (half a lead later) fires them together.
    for name, after in (("k", 0.01), ("l", 0.012)):
        a.add_job(stamp, IntervalTrigger(seconds=10, start_date=START + timedelta(
            seconds=after)), args=[name], job_id=name)
    async with a:
        await CLOCK.advance(10 - CLAIM_LEAD)
        assert [c for c in shared.calls if c[0] == "batch"] == [("batch", "r0", 1)]
        assert SEEN == []  # won, not started: the time is ahead
        await CLOCK.advance(CLAIM_LEAD / 2)
        assert [c for c in shared.calls if c[0] == "batch"] == [
            ("batch", "r0", 1), ("batch", "r0", 2)]
        assert started == {}
        await CLOCK.advance(CLAIM_LEAD / 2 + 0.02)
    assert [r.scheduled_at for r in SEEN] == [START]
    assert started == {"k": START + timedelta(seconds=0.01),
                       "l": START + timedelta(seconds=0.012)}


async def test_a_job_due_more_often_than_the_lead_still_runs_every_time() -> None:
    """Only the fired time is claimed ahead: a later time inside the lead window is not
    coalesced with it (it is fired, and claimed, in its own turn), and runs at its time."""
    shared = Shared()
    (a,), _ = replicas(shared, 1)
    a.remove_job("j")
    started: list[datetime] = []

    async def stamp() -> None:
        started.append(CLOCK.now())

    a.add_job(stamp, IntervalTrigger(seconds=0.01, start_date=START), job_id="fast")
    async with a:
        await CLOCK.advance(10.045)
        assert started == [START + timedelta(seconds=0.01 * i) for i in range(5)]
    # Stopping at 10.045 starts at once the run whose claim (10.05) was won ahead of its
    # time, instead of making the shutdown wait for it; every claimed time ran once.
    times = [START + timedelta(seconds=0.01 * i) for i in range(6)]
    assert started == [*times[:5], START + timedelta(seconds=0.045)]
    assert sorted(at for (job_id, at), row in shared.claims.items()
                  if row[2] == "succeeded") == times


async def test_a_job_another_replica_fires_leaves_the_wheel_until_the_replicas_change(
) -> None:
    """A job this replica does not own parks at its next fire: no claim, no timer (its
    actor is out of the wheel, so 3 replicas do not each keep every job's timer); when the
    live replicas change it is timed again from now, and runs here if it is ours again."""
    shared = Shared()
    shared.elsewhere.add(("r0", "j"))
    (a,), events = replicas(shared, 1)
    async with a:
        await CLOCK.advance(10)  # START: its fire parks it
        job = a._jobs.get("j")
        assert job is not None
        assert job.parked
        assert job.entry is None
        await CLOCK.advance(30)  # nothing is timed: no claim for START + 10, + 20, + 30
        assert [c for c in shared.calls if c[0] == "batch"] == []
        shared.elsewhere.clear()  # the other replica left: j is r0's now
        coordinator = a._coordinator
        assert isinstance(coordinator, MemoryCoordinator)
        assert coordinator.on_rebalance is not None  # the kernel listens
        coordinator.on_rebalance(("r0", "r1"), ("r0",))
        assert not job.parked
        assert job.entry is not None
        await CLOCK.advance(10)
    # Timed again from now (START + 30 s, a time of its grid, so due at once), run here;
    # the times while parked were another replica's (catch-up is kernel.distributed's).
    assert [r.scheduled_at for r in SEEN] == [START + timedelta(seconds=30),
                                              START + timedelta(seconds=40)]
    assert events == [("r0", "RunStarted"), ("r0", "RunSucceeded")] * 2


async def test_a_run_whose_claim_was_won_before_a_long_pause_does_not_start() -> None:
    """Claimed ahead, then the process is paused (SIGSTOP) past most of the lease before
    the time: its claim may be reaped and retried elsewhere, so the body must not start
    (the reaper records the time interrupted, once); no outcome is stored from here."""
    shared = Shared()
    (a,), events = replicas(shared, 1)
    async with a:
        await CLOCK.advance(10 - CLAIM_LEAD)  # won, waiting for its time
        assert shared.claims[("j", START)][2] == "running"
        CLOCK.stall(5)  # paused: the lease (3 s) has run out meanwhile
        await CLOCK.advance(0)
        assert SEEN == []
        assert a.in_flight == 0
    assert shared.claims[("j", START)][2] == "running"  # left to the reaper
    assert ("r0", "RunSucceeded") not in events
    assert ("r0", "RunFailed") not in events


async def test_the_times_several_jobs_decide_to_skip_are_recorded_in_one_statement() -> None:
    """Three jobs stalled past two times each: with coalesce, each records its older time
    as coalesced; the three marks (one turn of the loop) go in one mark_many."""
    shared = Shared()
    (a,), events = replicas(shared, 1)
    for name in ("k", "l"):
        a.add_job(job, IntervalTrigger(seconds=10, start_date=START), job_id=name)
    async with a:
        CLOCK.stall(20)  # START and START + 10 s due at once for each job
        await CLOCK.advance(0)
    assert [c for c in shared.calls if c[0] == "mark_many"] == [("mark_many", "r0", 3)]
    assert sorted(job_id for (job_id, at), row in shared.claims.items()
                  if row[2] == "coalesced" and at == START) == ["j", "k", "l"]
    assert events.count(("r0", "RunSkipped")) == 3


async def test_claims_not_due_yet_on_the_database_clock_are_asked_again_together() -> None:
    """A replica whose clock runs ahead gets ``early`` for a tick's claims; after the wait
    they are asked again in one statement, not one each."""
    shared = Shared()
    shared.early = [0.75, 0.75, 0.75]
    (a,), events = replicas(shared, 1)
    for name in ("k", "l"):
        a.add_job(job, IntervalTrigger(seconds=10, start_date=START), job_id=name)
    async with a:
        await CLOCK.advance(10)
        assert SEEN == []
        await CLOCK.advance(0.75)
    assert [c for c in shared.calls if c[0] == "batch"] == [("batch", "r0", 3)] * 2
    assert sorted(r.job_id for r in SEEN) == ["j", "k", "l"]
    assert events.count(("r0", "RunSucceeded")) == 3
