"""Claims in PostgreSQL: one winner per (job, scheduled time), max_instances across
replicas, expired leases reported as interrupted runs, skewed clocks."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from kernel import Kernel
from kernel.coordination import MarkRequest
from kernel.distributed._pg import Database
from kernel.distributed.postgres import PostgresCoordinator, PostgresFailureStore
from kernel.events import Event, RunFailed, RunSkipped, RunStarted, RunSucceeded
from kernel.retry import RetryPolicy
from kernel.testing import VirtualClock
from kernel.triggers import IntervalTrigger

from .pg_helpers import drain, fresh_db

pytestmark = pytest.mark.postgres


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    async with fresh_db() as database:
        yield database

T0 = datetime(2024, 5, 1, 1, 0, tzinfo=UTC)


def coordinators(db: Database, n: int, lease: float = 15.0) -> list[PostgresCoordinator]:
    return [PostgresCoordinator(db, replica_id=f"r{i}", lease=lease) for i in range(n)]


async def test_racing_claims_on_one_scheduled_time_have_exactly_one_winner(db: Database) -> None:
    a, b = coordinators(db, 2)
    verdicts = await asyncio.gather(*(
        c.claim("job", T0, f"run-{i}", max_instances=5)
        for i, c in enumerate([a, b] * 10)
    ))
    assert sorted(v.verdict for v in verdicts) == ["taken"] * 19 + ["won"]


async def test_a_claim_asked_again_by_the_same_run_is_still_won(db: Database) -> None:
    (a,) = coordinators(db, 1)
    first = await a.claim("job", T0, "run-1", max_instances=1)
    assert first.verdict == "won"
    # The first answer may have been lost with the connection: asking again is safe.
    assert await a.claim("job", T0, "run-1", max_instances=1) == first


@pytest.mark.parametrize(
    ("max_instances", "second"),
    [(1, "busy"), (2, "won")],
    ids=["limit-1-second-replica-busy", "limit-2-second-replica-runs"],
)
async def test_max_instances_holds_across_replicas(
    db: Database, max_instances: int, second: str
) -> None:
    a, b = coordinators(db, 2)
    won = await a.claim("job", T0, "a-1", max_instances=max_instances)
    assert won.verdict == "won"
    later = T0 + timedelta(seconds=1)
    assert (await b.claim("job", later, "b-1", max_instances=max_instances)).verdict == second
    # A busy time is decided (skipped): no replica runs it later.
    assert (await a.claim("job", later, "a-2", max_instances=max_instances)).verdict == "taken"
    assert await a.finish("job", T0, "a-1", "succeeded", token=won.token)
    assert (await b.claim("job", T0 + timedelta(seconds=2), "b-2",
                          max_instances=max_instances)).verdict == "won"


async def test_an_expired_lease_is_reaped_once_as_an_interrupted_run(db: Database) -> None:
    a, b = coordinators(db, 2, lease=5.0)
    won = await a.claim("job", T0, "a-1", max_instances=1)
    assert won.verdict == "won"
    lost: list[str] = []
    a.hold(won.token, lost.append)
    assert await b.reap() == []
    # Replica a dies: it stops renewing and the lease runs out (moved back, not waited for).
    await db.execute("UPDATE claims SET lease_until = now() - interval '1 second'")
    reaped = await asyncio.gather(a.reap(), b.reap())
    records = reaped[0] + reaped[1]
    assert [(r.job_id, r.run_id, r.scheduled_at, r.exc_type) for r in records] == [
        ("job", "a-1", T0, "Interrupted")
    ]
    assert "replica r0 stopped renewing the lease" in records[0].message
    rows = await db.fetch("SELECT state, finished_at IS NOT NULL AS done FROM claims")
    assert [(r["state"], r["done"]) for r in rows] == [("interrupted", True)]
    # The scheduled time is decided: it is never started again, and the dead run's late
    # outcome does not overwrite "interrupted".
    assert (await b.claim("job", T0, "b-1", max_instances=1)).verdict == "taken"
    # The next renewal finds the lease lost and tells the run at once.
    await a.renew_held()
    assert lost == ["lost"]
    assert await a.finish("job", T0, "a-1", "succeeded", token=won.token) is False
    assert await db.fetchval("SELECT state FROM claims") == "interrupted"
    # An interrupted run no longer counts against max_instances.
    assert (await b.claim("job", T0 + timedelta(seconds=1), "b-2",
                          max_instances=1)).verdict == "won"
    await a.detach()


async def test_a_reaping_kernel_stores_and_reports_the_interrupted_run(db: Database) -> None:
    dead = PostgresCoordinator(db, replica_id="dead", lease=5.0)
    assert (await dead.claim("job", T0, "d-1", max_instances=1)).verdict == "won"
    await db.execute("UPDATE claims SET lease_until = now() - interval '1 second'")
    store = PostgresFailureStore(db)
    alive = PostgresCoordinator(db, replica_id="alive", lease=5.0)
    kernel = Kernel(clock=VirtualClock(T0), coordinator=alive, failure_store=store)
    events: list[Event] = []
    kernel.add_listener(events.append)
    async with kernel:
        await alive.reap()
    failures = await store.list_failures(job_id="job")
    assert [(f.run_id, f.exc_type, f.scheduled_at) for f in failures] == [
        ("d-1", "Interrupted", T0)
    ]
    assert [(type(e).__name__, e.job_id, e.run_id) for e in events
            if isinstance(e, RunFailed)] == [("RunFailed", "job", "d-1")]


@pytest.mark.parametrize("skew", [0.0, 2.5, -3.0], ids=["no-skew", "ahead-2.5s", "behind-3s"])
async def test_replicas_with_skewed_clocks_run_each_scheduled_time_once(
    db: Database, skew: float
) -> None:
    ran: list[tuple[str, datetime]] = []

    def replica(name: str, offset: float) -> tuple[Kernel, VirtualClock]:
        clock = VirtualClock(T0 + timedelta(seconds=offset))
        # Both replicas fire the job (no partitioning): the claims alone keep it once.
        kernel = Kernel(clock=clock, coordinator=PostgresCoordinator(db, replica_id=name,
                                                                     partition=False))

        async def job() -> None:
            ran.append((name, clock.now()))

        # Both replicas share the stored anchor of the interval grid.
        kernel.add_job(job, IntervalTrigger(seconds=1, start_date=T0 + timedelta(seconds=1)),
                       job_id="tick")
        return kernel, clock

    (ka, ca), (kb, cb) = replica("a", 0.0), replica("b", skew)
    started: list[Event] = []
    ka.add_listener(lambda e: started.append(e) if isinstance(e, RunStarted) else None)
    kb.add_listener(lambda e: started.append(e) if isinstance(e, RunStarted) else None)
    async with ka, kb:
        for _ in range(20):
            # Interleave the replicas in real order of their (skewed) clocks.
            for clock, kernel in sorted([(ca, ka), (cb, kb)], key=lambda p: p[0].now()):
                await clock.advance(0.5)
                await drain(kernel)
    scheduled = sorted(e.scheduled_at for e in started if e.scheduled_at is not None)
    assert len(scheduled) == len(set(scheduled)) == len(ran)
    expected = {T0 + timedelta(seconds=s) for s in range(1, 10)}
    assert expected <= set(scheduled)
    skipped = [e for e in started if isinstance(e, RunSkipped)]
    assert skipped == []


RETRIED: list[str] = []


async def retried_job() -> None:
    RETRIED.append("ran")


async def _after_a_dead_replica(
    db: Database, policy: RetryPolicy
) -> tuple[Kernel, PostgresCoordinator, VirtualClock, list[Event]]:
    """A replica died holding the claim of job's 00:00 run; a kernel on another replica
    with ``policy`` for the job, whose events are recorded (not started yet)."""
    dead = PostgresCoordinator(db, replica_id="dead", lease=5.0)
    assert (await dead.claim("job", T0, "d-1", max_instances=1)).verdict == "won"
    await db.execute("UPDATE claims SET lease_until = now() - interval '1 second'")
    alive = PostgresCoordinator(db, replica_id="alive", lease=5.0)
    clock = VirtualClock(T0 + timedelta(seconds=30))
    kernel = Kernel(clock=clock, coordinator=alive)
    kernel.add_job(retried_job, IntervalTrigger(hours=1, start_date=T0), job_id="job",
                   retry=policy)
    events: list[Event] = []
    kernel.add_listener(events.append)
    return kernel, alive, clock, events


@pytest.mark.parametrize(
    ("max_attempts", "expected"),
    [(1, []), (2, [("RunStarted", 2), ("RunSucceeded", 2)])],
    ids=["no-retry-policy-no-rerun", "retry-policy-reruns-once"],
)
async def test_an_interrupted_run_runs_again_only_if_the_retry_policy_says_so(
    db: Database, max_attempts: int, expected: list[tuple[str, int]]
) -> None:
    policy = RetryPolicy(max_attempts=max_attempts, backoff=0.0, jitter=0.0)
    kernel, alive, clock, events = await _after_a_dead_replica(db, policy)
    RETRIED.clear()
    async with kernel:
        await alive.reap()
        await clock.advance(0)
        await drain(kernel)
    runs = [(type(e).__name__, e.attempt) for e in events
            if isinstance(e, RunStarted | RunSucceeded)]
    assert runs == expected
    assert len(RETRIED) == len(expected) // 2
    failures = [e for e in events if isinstance(e, RunFailed)]
    assert [(f.run_id, f.exc_type, f.attempt) for f in failures] == [("d-1", "Interrupted", 1)]
    # The scheduler itself never starts the interrupted time again.
    assert await db.fetchval("SELECT count(*) FROM claims") == 1


async def test_an_interrupted_run_is_retried_after_the_retry_policy_delay(db: Database) -> None:
    policy = RetryPolicy(max_attempts=2, backoff=10.0, jitter=0.0)
    kernel, alive, clock, events = await _after_a_dead_replica(db, policy)

    def started() -> list[tuple[int, datetime]]:
        return [(e.attempt, e.started_at) for e in events if isinstance(e, RunStarted)]

    async with kernel:
        await alive.reap()
        await clock.advance(0)
        await drain(kernel)
        assert started() == []  # not at once: the policy waits 10 s after the first attempt
        await clock.advance(9.9)
        await drain(kernel)
        assert started() == []
        await clock.advance(0.1)
        await drain(kernel)
        assert started() == [(2, T0 + timedelta(seconds=40))]


async def test_tokens_grow_and_a_stale_token_cannot_store_an_outcome(db: Database) -> None:
    a, b = coordinators(db, 2, lease=5.0)
    first = await a.claim("job", T0, "a-1", max_instances=2)
    second = await b.claim("job", T0 + timedelta(seconds=1), "b-1", max_instances=2)
    assert 0 < first.token < second.token
    # Attempt 1 of T0 interrupted (its lease ran out); attempt 2 takes a claim of its own.
    await db.execute("UPDATE claims SET lease_until = now() - interval '1 second' "
                     "WHERE run_id = 'a-1'")
    await b.reap()
    retry = await b.claim_retry("job", T0, "b-2", attempt=2, max_instances=2)
    assert retry.verdict == "won"
    assert retry.token > second.token
    # Another replica asking for the same attempt loses; so does an attempt out of turn.
    assert (await a.claim_retry("job", T0, "a-2", attempt=2, max_instances=2)).verdict \
        == "taken"
    assert (await a.claim_retry("job", T0, "a-3", attempt=3, max_instances=2)).verdict \
        == "taken"
    # The first attempt's late outcome is fenced off; the retry's is stored.
    assert await a.finish("job", T0, "a-1", "succeeded", token=first.token) is False
    assert await b.finish("job", T0, "b-2", "succeeded", token=retry.token) is True
    rows = await db.fetch("SELECT state, attempt, run_id FROM claims WHERE scheduled_at = $1",
                          T0)
    assert [(r["state"], r["attempt"], r["run_id"]) for r in rows] == [("succeeded", 2, "b-2")]


async def test_a_time_not_due_on_the_database_clock_is_not_granted(db: Database) -> None:
    (a,) = coordinators(db, 1)
    db_now: datetime = await db.fetchval("SELECT now()")
    ahead = await a.claim("job", db_now + timedelta(seconds=5), "a-1", max_instances=1)
    assert ahead.verdict == "early"
    assert 4.0 < ahead.wait <= 5.0  # until the time itself
    assert await db.fetchval("SELECT count(*) FROM claims") == 0
    # Within the 50 ms tolerance it is due.
    now2: datetime = await db.fetchval("SELECT now()")
    soon = await a.claim("job", now2 + timedelta(milliseconds=20), "a-2", max_instances=1)
    assert soon.verdict == "won"


async def test_renewal_is_one_statement_that_keeps_held_leases_and_the_heartbeat(
    db: Database
) -> None:
    (a,) = coordinators(db, 1, lease=5.0)
    claims = [await a.claim("job", T0 + timedelta(seconds=i), f"a-{i}", max_instances=9)
              for i in range(3)]
    lost: list[str] = []
    for c in claims:
        a.hold(c.token, lost.append)
    await db.execute("UPDATE claims SET lease_until = now() + interval '1 second'")
    await a.renew_held()
    assert lost == []
    left = await db.fetchval("SELECT min(lease_until - now()) FROM claims")
    assert left > timedelta(seconds=4)
    assert await db.fetchval("SELECT count(*) FROM replicas WHERE id = 'r0'") == 1
    a.release(claims[0].token)
    await a.detach()
    assert await db.fetchval("SELECT count(*) FROM replicas") == 0


def test_rendezvous_moves_only_the_leaving_replicas_jobs() -> None:
    from kernel.distributed.postgres import owner_of

    jobs = [f"job-{i}" for i in range(3000)]
    three = {j: owner_of(("a", "b", "c"), j) for j in jobs}
    shares = Counter(three.values())
    assert set(shares) == {"a", "b", "c"}
    assert min(shares.values()) > 800
    two = {j: owner_of(("a", "b"), j) for j in jobs}
    moved = [j for j in jobs if three[j] != two[j]]
    assert moved
    assert all(three[j] == "c" for j in moved)
    assert len(moved) == shares["c"]


async def test_live_replicas_partition_the_jobs_and_rebalance_on_leave(db: Database) -> None:
    a, b = coordinators(db, 2, lease=3.0)
    seen: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    a.on_rebalance = lambda old, new: seen.append((old, new))
    assert a.owns("x")
    assert a.live == ("r0",)
    await b.renew_held()
    await a.renew_held()
    assert a.live == ("r0", "r1")
    assert seen == [(("r0",), ("r0", "r1"))]
    jobs = [f"job-{i}" for i in range(100)]
    await b.renew_held()
    assert all(a.owns(j) != b.owns(j) for j in jobs)
    await b.detach()  # leaves: its row goes, a takes everything at its next renewal
    await a.renew_held()
    assert a.live == ("r0",)
    assert all(a.owns(j) for j in jobs)
    await a.detach()


async def test_a_batch_of_claims_is_one_statement_answered_in_order(db: Database) -> None:
    from kernel.coordination import ClaimRequest

    a, b = coordinators(db, 2)
    assert (await b.claim("j2", T0, "b-1", max_instances=1)).verdict == "won"
    db_now: datetime = await db.fetchval("SELECT now()")
    answers = await a.claim_many([
        ClaimRequest("j3", T0, "a-3", 1),
        ClaimRequest("j2", T0, "a-2", 1),  # b has it
        ClaimRequest("j1", T0, "a-1", 1),
        ClaimRequest("j1", db_now + timedelta(seconds=5), "a-4", 1),  # not due yet
    ])
    assert [c.verdict for c in answers] == ["won", "taken", "won", "early"]
    assert answers[0].token != answers[2].token
    assert await db.fetchval("SELECT count(*) FROM claims") == 3


async def test_a_batch_of_outcomes_stores_only_current_tokens(db: Database) -> None:
    from kernel.coordination import FinishRequest

    (a,) = coordinators(db, 1)
    one = await a.claim("j1", T0, "a-1", max_instances=1)
    two = await a.claim("j2", T0, "a-2", max_instances=1)
    stored = await a.finish_many([
        FinishRequest("j1", T0, "a-1", "succeeded", one.token),
        FinishRequest("j2", T0, "a-2", "failed", one.token),  # not j2's token: refused
    ])
    assert stored == [True, False]
    rows = await db.fetch("SELECT job_id, state FROM claims ORDER BY job_id")
    assert [(r["job_id"], r["state"]) for r in rows] == [("j1", "succeeded"), ("j2", "running")]
    assert await a.finish_many([FinishRequest("j2", T0, "a-2", "failed", two.token)]) == [True]


async def test_a_batch_of_claims_decides_each_row_as_claims_one_after_the_other(
    db: Database,
) -> None:
    from kernel.coordination import ClaimRequest

    a, b = coordinators(db, 2)
    db_now: datetime = await db.fetchval("SELECT now()")
    held = await a.claim("job", T0, "a-0", max_instances=2)
    other = await b.claim("job", T0 + timedelta(seconds=1), "b-1", max_instances=2)
    assert (held.verdict, other.verdict) == ("won", "won")
    await b.finish("job", T0 + timedelta(seconds=1), "b-1", "succeeded", token=other.token)
    later = [T0 + timedelta(seconds=s) for s in (2, 3, 4)]
    answers = await a.claim_many([
        ClaimRequest("job", db_now + timedelta(seconds=5), "a-early", 2),
        ClaimRequest("job", later[2], "a-4", 2),
        ClaimRequest("job", T0, "a-0", 2),  # asked again by its run: still won
        ClaimRequest("job", T0 + timedelta(seconds=1), "a-1", 2),  # b's: taken
        ClaimRequest("job", later[0], "a-2", 2),
        ClaimRequest("job", later[0], "a-2bis", 2),  # the same time twice: one decides
        ClaimRequest("job", later[1], "a-3", 2),
        ClaimRequest("solo", T0, "a-solo", 1),
    ])
    verdicts = [c.verdict for c in answers]
    # One live claim (a-0) and max_instances 2: of the new times, in time order, the
    # first wins and the next are busy (recorded skipped), whatever the batch's order.
    assert verdicts == ["early", "busy", "won", "taken", "won", "taken", "busy", "won"]
    assert answers[2].token == held.token
    assert 4.0 < answers[0].wait <= 5.0
    assert len({c.token for c in answers if c.verdict == "won"}) == 3
    rows = await db.fetch("SELECT scheduled_at, state, run_id FROM claims WHERE job_id = 'job' "
                          "ORDER BY scheduled_at")
    assert [(r["state"], r["run_id"]) for r in rows] == [
        ("running", "a-0"), ("succeeded", "b-1"), ("running", "a-2"), ("skipped", "a-3"),
        ("skipped", "a-4")]


async def test_the_last_decided_time_is_read_from_the_claims_and_kept_when_they_go(
    db: Database,
) -> None:
    from kernel.distributed._pgstore import PostgresJobStore, StoredJob

    store = PostgresJobStore(db)
    job = StoredJob(id="j", name="j", func_ref="tests.test_store_pg:noop", args=(),
                    trigger={"kind": "interval", "seconds": 1.0}, coalesce=False,
                    max_instances=1, misfire_grace_time=None, timeout=None)
    await store.upsert(job, "test")
    (a,) = coordinators(db, 1)
    a.keep_claims = timedelta(0)
    db_now: datetime = await db.fetchval("SELECT now()")
    t1, t2 = db_now - timedelta(seconds=2), db_now - timedelta(seconds=1)
    won = await a.claim("j", t1, "a-1", max_instances=1)
    assert await a.mark("j", t2, "missed")
    stored = await store.get("j")
    assert stored is not None
    assert stored.last_fire == t2  # the column was not written
    assert await db.fetchval("SELECT last_fire FROM jobs WHERE id = 'j'") is None
    assert await a.finish("j", t1, "a-1", "succeeded", token=won.token)
    await a.reap()  # keep_claims 0: both claims go, their latest time stays in the column
    assert await db.fetchval("SELECT count(*) FROM claims") == 0
    assert await db.fetchval("SELECT last_fire FROM jobs WHERE id = 'j'") == t2
    stored = await store.get("j")
    assert stored is not None
    assert stored.last_fire == t2
    # A job removed and added again does not inherit the claims of the one before.
    await a.mark("j", db_now, "missed")
    await store.delete("j", "test")
    await store.upsert(job, "test")
    stored = await store.get("j")
    assert stored is not None
    assert stored.last_fire is None
    # A time earlier than the row (a one-shot job added with a past date) decided now counts.
    past = db_now - timedelta(days=1)
    assert await a.mark("j", past, "missed")
    stored = await store.get("j")
    assert stored is not None
    assert stored.last_fire == past


async def test_marks_in_one_statement_are_reported_by_the_first_replica_only(
    db: Database,
) -> None:
    """Catch-up records thousands of missed/coalesced times at once: one statement, and each
    time is reported by the replica that recorded it first, once (even if asked twice)."""
    a, b = coordinators(db, 2)
    t1, t2 = T0, T0 + timedelta(seconds=1)
    assert await a.mark_many([MarkRequest("job", t1, "coalesced"),
                              MarkRequest("job", t1, "coalesced"),
                              MarkRequest("other", t1, "missed")]) == [True, False, True]
    assert await b.mark_many([MarkRequest("job", t1, "coalesced"),
                              MarkRequest("job", t2, "missed")]) == [False, True]
    rows = await db.fetch("SELECT job_id, scheduled_at, state, replica FROM claims "
                          "ORDER BY job_id, scheduled_at")
    assert [(r["job_id"], r["scheduled_at"], r["state"], r["replica"]) for r in rows] == [
        ("job", t1, "coalesced", a.replica_id), ("job", t2, "missed", b.replica_id),
        ("other", t1, "missed", a.replica_id)]
    # A marked time is decided: no replica claims it to run.
    assert (await b.claim("job", t2, "b-1", max_instances=1)).verdict == "taken"


async def test_a_claim_held_after_most_of_its_lease_has_passed_is_lost_at_once(
    db: Database,
) -> None:
    """Won, then the process paused for most of the lease before the run began: hold
    answers lost at once (the run must not start); a grant never held is forgotten."""
    (a,) = coordinators(db, 1, lease=6.0)
    won = await a.claim("job", T0, "a-1", max_instances=1)
    assert won.verdict == "won"
    sent, job_id, at = a._granted[won.token]
    a._granted[won.token] = (sent - 5.5, job_id, at)  # as if paused 5.5 s since
    lost: list[str] = []
    a.hold(won.token, lost.append)
    assert lost == ["unrenewable"]
    assert won.token not in a._held
    other = await a.claim("job", T0 + timedelta(seconds=1), "a-2", max_instances=2)
    sent, job_id, at = a._granted[other.token]
    a._granted[other.token] = (sent - 7.0, job_id, at)
    try:
        await a.renew_held()
    finally:
        await a.detach()  # closes the renewal's connection
    assert other.token not in a._granted


async def test_a_blocked_loop_keeps_its_leases_renewed_on_their_own_thread(
    db: Database,
) -> None:
    """On the real clock the renewals run on a thread of their own: a run that blocks the
    kernel's loop for longer than the lease keeps its lease (another replica's reaper finds
    nothing to reap), and its outcome is stored. Overload makes runs late, never falsely
    interrupted; only a stopped process or an unreachable database loses leases."""
    started = threading.Event()
    seen: dict[str, object] = {}

    async def block() -> None:
        started.set()
        time.sleep(2.0)  # noqa: ASYNC251 - on purpose: the kernel's loop runs nothing

    def watch() -> None:
        async def check() -> None:
            other = Database(db.dsn, schema=db.schema)
            await other.open()
            try:
                assert started.wait(10)
                await asyncio.sleep(1.6)  # the loop is blocked past the 1.2 s lease
                seen["live"] = await other.fetchval(
                    "SELECT lease_until > now() FROM claims WHERE job_id = 'block'")
                seen["reaped"] = len(await PostgresCoordinator(other, replica_id="b").reap())
            finally:
                await other.close()

        asyncio.run(check())

    watcher = threading.Thread(target=watch)
    watcher.start()
    k = Kernel(coordinator=PostgresCoordinator(db, replica_id="a", lease=1.2))
    k.add_job(block, IntervalTrigger(hours=1, start_date=datetime.now(UTC) + timedelta(
        seconds=0.3)), job_id="block")
    try:
        async with k:
            await asyncio.get_running_loop().run_in_executor(None, watcher.join, 15)
            await drain(k)
            assert await db.fetchval("SELECT state FROM claims WHERE job_id = 'block'") \
                == "succeeded"
    finally:
        watcher.join(15)
    assert seen == {"live": True, "reaped": 0}
