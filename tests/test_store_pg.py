"""PersistentKernel on the machine's PostgreSQL: stored jobs, changes reaching other
replicas within a second, declarations across restarts, unimportable callables, and
catch-up after downtime through misfire grace and coalesce."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from kernel.distributed._pg import Database
from kernel.distributed._pgstore import StoredJob
from kernel.distributed.persistent import PersistentKernel
from kernel.errors import InvalidJobError, JobLookupError
from kernel.events import Event, RunMissed, RunSkipped, RunStarted
from kernel.retry import RetryPolicy
from kernel.testing import VirtualClock
from kernel.triggers import CronTrigger, IntervalTrigger

from .pg_helpers import drain, eventually, fresh_db

pytestmark = pytest.mark.postgres

T0 = datetime(2024, 5, 1, 1, 0, tzinfo=UTC)
RAN: list[tuple[str, int]] = []
POLICY = RetryPolicy(max_attempts=3, backoff=2.0, jitter=0.0)


async def record_run(tag: str = "", n: int = 0) -> None:
    RAN.append((tag, n))


def noop() -> None:
    """A plain job that does nothing."""


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    async with fresh_db() as database:
        yield database


def replica(db: Database, name: str, **options: object) -> PersistentKernel:
    return PersistentKernel(db=Database(db.dsn, schema=db.schema), replica_id=name,
                            **options)  # type: ignore[arg-type]


async def test_jobs_and_their_options_survive_a_restart(db: Database) -> None:
    k = replica(db, "a")
    async with k:
        k.add_interval_job(record_run, hours=6, job_id="sync", args=["x", 3],
                           max_instances=2, misfire_grace_time=30, retry=POLICY)
        k.add_cron_job(noop, "0 9,18 * * *", job_id="check", timezone="Asia/Shanghai")
        await k.flush()
        first = k.get_job("sync").next_run_time
    k2 = replica(db, "b")
    async with k2:
        jobs = {j.id: j for j in k2.get_jobs()}
    assert sorted(jobs) == ["check", "sync"]
    sync = jobs["sync"]
    assert (sync.func_ref, sync.args, sync.max_instances, sync.misfire_grace_time) == (
        "tests.test_store_pg:record_run", ("x", 3), 2, 30,
    )
    # The interval grid is anchored in the store: the restarted replica keeps it.
    assert sync.next_run_time == first
    assert jobs["check"].trigger == CronTrigger("0 9,18 * * *", "Asia/Shanghai")
    assert (jobs["sync"].retry, jobs["check"].retry) == (POLICY, None)


@pytest.mark.parametrize(
    ("func", "kwargs", "message"),
    [
        (lambda: None, {}, "cannot be stored: a stored job names its function by import"),
        (record_run, {"args": [object()]}, "args=[<object object"),
        (record_run, {"kwargs": {"when": 1j}}, "kwargs={'when': 1j}"),
    ],
    ids=["lambda", "args-not-json", "kwargs-not-json"],
)
async def test_jobs_that_cannot_be_stored_are_refused_at_add(
    db: Database, func: object, kwargs: dict[str, object], message: str
) -> None:
    k = replica(db, "a")
    with pytest.raises(InvalidJobError, match=re.escape(message)):
        k.add_interval_job(func, hours=1, **kwargs)  # type: ignore[arg-type]


async def test_jitter_is_refused_because_replicas_would_disagree(db: Database) -> None:
    k = replica(db, "a")
    with pytest.raises(InvalidJobError, match="jitter=5 cannot be used with replicas"):
        k.add_interval_job(noop, hours=1, jitter=5)


async def test_changes_on_one_replica_reach_another_within_a_second(db: Database) -> None:
    a, b = replica(db, "a"), replica(db, "b")
    async with a, b:
        await eventually(lambda: b.listener.connected)
        loop = asyncio.get_running_loop()

        async def within_a_second(check: object) -> None:
            t0 = loop.time()
            await eventually(check, limit=1.0)  # type: ignore[arg-type]
            assert loop.time() - t0 < 1.0

        a.add_interval_job(noop, hours=1, job_id="j")
        await within_a_second(lambda: [j.id for j in b.get_jobs()] == ["j"])
        assert b.get_job("j").next_run_time == a.get_job("j").next_run_time
        a.pause_job("j")
        await within_a_second(lambda: b.get_job("j").paused)
        a.resume_job("j")
        await within_a_second(lambda: not b.get_job("j").paused)
        a.reschedule_job("j", IntervalTrigger(minutes=5))
        await within_a_second(
            lambda: b.get_job("j").trigger.to_spec() == a.get_job("j").trigger.to_spec())
        a.remove_job("j")
        await within_a_second(lambda: b.get_jobs() == [])
        with pytest.raises(JobLookupError):
            b.get_job("j")


async def test_a_stored_job_whose_function_is_gone_is_reported_and_the_rest_run(
    db: Database,
) -> None:
    from kernel.distributed._pgstore import PostgresJobStore

    await PostgresJobStore(db).upsert(StoredJob(
        id="gone", name="gone", func_ref="tests.no_such_module:job",
        trigger=IntervalTrigger(hours=1, start_date=T0).to_spec(), coalesce=True,
        max_instances=1, misfire_grace_time=60, timeout=None,
    ), "test")
    k = replica(db, "a")
    k.add_interval_job(noop, hours=1, job_id="fine")
    async with k:
        assert [j.id for j in k.get_jobs()] == ["fine"]
        assert list(k.unresolved) == ["gone"]
        assert k.health()["unresolved_jobs"] == ["gone"]
        failures = await k.failure_store.list_failures(job_id="gone")
        k.remove_job("gone")  # the way out: remove the job whose code is gone
        await k.flush()
        assert k.unresolved == {}
        assert [j.id for j in await k.store.load()] == ["fine"]
    assert [(f.exc_type, f.run_id) for f in failures] == [("ImportError", "")]
    assert "names 'tests.no_such_module:job', which cannot be loaded" in failures[0].message


@pytest.mark.parametrize(
    ("coalesce", "grace", "expected"),
    [
        (False, 25, [("missed", -50), ("missed", -40), ("missed", -30),
                     ("run", -20), ("run", -10)]),
        (True, 25, [("coalesced", -50), ("coalesced", -40), ("coalesced", -30),
                    ("coalesced", -20), ("run", -10)]),
        (True, 5, [("coalesced", -50), ("coalesced", -40), ("coalesced", -30),
                   ("coalesced", -20), ("missed", -10)]),
        (False, None, [("run", -50), ("run", -40), ("run", -30), ("run", -20),
                       ("run", -10)]),
    ],
    ids=["no-coalesce-grace-25", "coalesce-grace-25", "coalesce-grace-5", "no-grace-runs-all"],
)
async def test_times_missed_while_down_follow_grace_and_coalesce(
    db: Database, coalesce: bool, grace: float | None, expected: list[tuple[str, int]]
) -> None:
    from kernel.distributed._pgstore import PostgresJobStore

    await PostgresJobStore(db).upsert(StoredJob(
        id="j", name="j", func_ref="tests.test_store_pg:record_run", args=("catch-up", 0),
        trigger=IntervalTrigger(seconds=10, start_date=T0 - timedelta(seconds=100)).to_spec(),
        coalesce=coalesce, max_instances=5, misfire_grace_time=grace, timeout=None,
        last_fire=T0 - timedelta(seconds=55),
    ), "test")
    events: list[Event] = []
    k = replica(db, "a", clock=VirtualClock(T0))
    k.add_listener(events.append)
    async with k:
        await drain(k)
    got = []
    for e in events:
        assert e.scheduled_at is not None
        offset = round((e.scheduled_at - T0).total_seconds())
        if isinstance(e, RunStarted) and offset < 0:
            got.append(("run", offset))
        elif isinstance(e, RunMissed):
            got.append(("missed", offset))
        elif isinstance(e, RunSkipped):
            got.append((e.reason, offset))
    # Claims run concurrently: starts arrive in the order the database answers.
    assert sorted(got, key=lambda g: g[1]) == expected
    # Decided times are recorded: a second replica starting now does nothing again.
    again: list[Event] = []
    k2 = replica(db, "b", clock=VirtualClock(T0))
    k2.add_listener(again.append)
    async with k2:
        await drain(k2)
    assert [e for e in again if e.scheduled_at is not None and e.scheduled_at < T0] == []


async def test_a_lost_listener_reconnects_and_catches_up_on_changes_it_missed(
    db: Database,
) -> None:
    a, b = replica(db, "a"), replica(db, "b")
    async with a, b:
        await eventually(lambda: b.listener.connected)
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            b.listener.application_name)
        await eventually(lambda: not b.listener.connected, limit=2.0)
        assert b.health()["listening"] is False
        report = await b.readiness()
        assert (report.ready, [(c.name, c.ok) for c in report.checks]) == (
            False, [("postgres", True), ("job-changes", False)])
        a.add_interval_job(noop, hours=1, job_id="while-away")
        await a.flush()
        await eventually(lambda: [j.id for j in b.get_jobs()] == ["while-away"], limit=5.0)
        assert b.listener.reconnects == 1
        assert b.health() == {"postgres": "up", "error": None, "listening": True,
                              "unresolved_jobs": []}
        assert (await b.readiness()).ready is True


async def test_claims_go_on_after_the_pool_connections_are_cut(db: Database) -> None:
    from kernel.distributed.postgres import PostgresCoordinator

    mine = Database(db.dsn, schema=db.schema)
    await mine.open()
    try:
        coordinator = PostgresCoordinator(mine, replica_id="a")
        assert (await coordinator.claim("j", T0, "r1", max_instances=5)).verdict == "won"
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 "
            "AND pid <> pg_backend_pid()", f"lark_scheduler:{db.schema}")
        verdicts: list[str] = []
        for i in range(2, 5):
            try:
                verdicts.append((await coordinator.claim(
                    "j", T0 + timedelta(seconds=i), f"r{i}", max_instances=5)).verdict)
            except Exception as exc:  # a connection cut mid-use fails once, then heals
                verdicts.append(type(exc).__name__)
        assert verdicts[-1] == "won"
        assert mine.health.state == "up"
    finally:
        await mine.close()


async def test_many_declarations_are_stored_in_one_transaction_in_their_order(
    db: Database,
) -> None:
    """A first deployment of many jobs: one transaction; an id stored already (another
    replica declared it) is left out; the stored jobs list in the order given; each new row
    is announced to the other replicas."""
    from kernel.distributed._pgstore import PostgresJobStore

    store = PostgresJobStore(db)

    def job(job_id: str) -> StoredJob:
        return StoredJob(
            id=job_id, name=job_id, func_ref="tests.test_store_pg:noop",
            trigger=IntervalTrigger(hours=1, start_date=T0).to_spec(), coalesce=True,
            max_instances=1, misfire_grace_time=60, timeout=None)

    assert await store.insert(job("b"), "other") == 1
    notes: list[str] = []
    conn = await db.connect()
    try:
        await conn.add_listener(db.channel, lambda *args: notes.append(args[-1]))
        ids = ["z", "b", "a", "m"]
        assert await store.insert_many([job(i) for i in ids], "me") == {"z": 1, "a": 1, "m": 1}
        await eventually(lambda: len(notes) == 3)
    finally:
        await conn.close()
    assert [row.id for row in await store.load()] == ["b", "z", "a", "m"]
    assert sorted(n for n in notes) == sorted(
        f'{{"op":"upsert","id":"{i}","version":1,"origin":"me"}}' for i in ("z", "a", "m"))
    assert await store.insert_many([], "me") == {}
