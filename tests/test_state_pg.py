"""The schedule state on PostgreSQL: the store-level table of ``test_state_stores.py``,
and what it leaves in the cluster tables (``claims``, ``jobs.last_fire``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kernel.distributed._pg import Database
from kernel.distributed.postgres import PostgresCoordinator
from kernel.distributed.state_pg import PostgresScheduleStore
from kernel.state import Decided, Defined, RunEnded, RunStarted
from tests.conftest import POSTGRES_DSN
from tests.pg_helpers import unique_schema
from tests.test_state_stores import CRON, check_store

pytestmark = pytest.mark.postgres

T0 = datetime(2024, 1, 1, tzinfo=UTC)


async def test_postgres_store() -> None:
    schema = unique_schema("state")
    store = PostgresScheduleStore(Database(POSTGRES_DSN, schema=schema))
    again = PostgresScheduleStore(Database(POSTGRES_DSN, schema=schema))
    try:
        await check_store(store, again)
    finally:
        await Database(POSTGRES_DSN, schema=schema).drop()


async def test_runs_are_claims_without_a_lease_that_no_reaper_takes() -> None:
    schema = unique_schema("state")
    db = Database(POSTGRES_DSN, schema=schema)
    store = PostgresScheduleStore(db, owner="embedded:test")
    try:
        await store.open()
        await db.execute(
            "INSERT INTO jobs (id, name, func_ref, args, kwargs, trigger, options) VALUES "
            "('a', 'a', 'm:f', '[]', '{}', '{}', '{}')")
        await store.commit([
            Defined("a", "m:f", CRON, None, T0),
            RunStarted("a", "r1", T0 + timedelta(minutes=1), T0 + timedelta(minutes=1), 1),
            Decided("a", T0 + timedelta(minutes=2), "missed"),
            RunStarted("a", "r2", T0 + timedelta(minutes=3), T0 + timedelta(minutes=3), 1),
            RunEnded("a", "r2", "succeeded"),
        ])
        rows = await db.fetch("SELECT scheduled_at, replica, run_id, state, lease_until "
                              "FROM claims ORDER BY scheduled_at")
        assert [tuple(r) for r in rows] == [
            (T0 + timedelta(minutes=1), "embedded:test", "r1", "running", None),
            (T0 + timedelta(minutes=2), "embedded:test", "", "missed", None),
            (T0 + timedelta(minutes=3), "embedded:test", "r2", "succeeded", None),
        ]
        assert await db.fetchval("SELECT last_fire FROM jobs WHERE id = 'a'") == \
            T0 + timedelta(minutes=3)
        # A replica's reaper looks for expired leases: a run of this store has none.
        assert await PostgresCoordinator(db, lease=0.1).reap() == []
        _, runs = await store.load()
        assert [r.run_id for r in runs] == ["r1"]
    finally:
        await store.close()
        await db.drop()
