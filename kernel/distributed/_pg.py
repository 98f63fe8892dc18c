"""The PostgreSQL connection shared by the job store, the coordinator and the failure store.

One asyncpg pool whose connections have ``search_path`` set to the scheduler's schema,
so every statement names its tables plainly and all values travel as parameters (the
schema name, an identifier, is validated and quoted once, in the DDL below). The schema
is created and migrated idempotently under a transaction-scoped advisory lock, so
replicas that start together apply it once.

Health: :attr:`Database.state` is ``"up"`` or ``"down"`` (with the last error), updated by
every call that goes through :meth:`Database.call` and by the notification listener.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import msgspec

from ..clock import Clock, RealClock

__all__ = ("Database", "Health", "channel_name")

log = logging.getLogger("scheduler.postgres")
T = TypeVar("T")

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
SCHEMA_VERSION = 1

# What asyncpg raises when the server cannot be reached or the connection died.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
)

_DDL = """
CREATE TABLE IF NOT EXISTS scheduler_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id text PRIMARY KEY,
    name text NOT NULL,
    func_ref text NOT NULL,
    args jsonb NOT NULL,
    kwargs jsonb NOT NULL,
    trigger jsonb NOT NULL,
    options jsonb NOT NULL,
    executor text NOT NULL DEFAULT 'local',
    paused boolean NOT NULL DEFAULT false,
    last_fire timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    version bigint NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS claims (
    job_id text NOT NULL,
    scheduled_at timestamptz NOT NULL,
    replica text NOT NULL,
    run_id text NOT NULL,
    state text NOT NULL,
    attempt integer NOT NULL DEFAULT 1,
    lease_until timestamptz,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    worker text,
    PRIMARY KEY (job_id, scheduled_at)
);
-- A RabbitMQ worker running a claimed run: who, until when, and how it ended.
ALTER TABLE claims ADD COLUMN IF NOT EXISTS worker_until timestamptz;
ALTER TABLE claims ADD COLUMN IF NOT EXISTS worker_outcome jsonb;
CREATE INDEX IF NOT EXISTS claims_live ON claims (job_id, lease_until) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS claims_finished ON claims (finished_at);
CREATE TABLE IF NOT EXISTS failures (
    id text PRIMARY KEY,
    job_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    record jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS failures_job ON failures (job_id, created_at);

-- One round trip per claim: the existing claim, the live count and the insert, under a
-- per-job advisory lock so two replicas cannot both pass the max_instances count.
CREATE OR REPLACE FUNCTION claim_run(
    p_job text, p_at timestamptz, p_replica text, p_run text, p_max integer, p_lease float8
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    existing text;
    live integer;
BEGIN
    PERFORM pg_advisory_xact_lock(
        hashtextextended('lark_scheduler:' || current_schema() || ':' || p_job, 0));
    SELECT run_id INTO existing FROM claims WHERE job_id = p_job AND scheduled_at = p_at;
    IF FOUND THEN
        -- The same run asking again (its first answer was lost with a connection) won.
        RETURN CASE WHEN existing = p_run THEN 'won' ELSE 'taken' END;
    END IF;
    SELECT count(*) INTO live FROM claims
        WHERE job_id = p_job AND state = 'running' AND lease_until > now();
    UPDATE jobs SET last_fire = GREATEST(last_fire, p_at) WHERE id = p_job;
    IF live >= p_max THEN
        INSERT INTO claims (job_id, scheduled_at, replica, run_id, state, finished_at)
            VALUES (p_job, p_at, p_replica, p_run, 'skipped', now());
        RETURN 'busy';
    END IF;
    INSERT INTO claims (job_id, scheduled_at, replica, run_id, state, lease_until)
        VALUES (p_job, p_at, p_replica, p_run, 'running',
                now() + p_lease * interval '1 second');
    RETURN 'won';
END $$;

-- Fencing (issue 13): every won claim draws a token from one increasing sequence; the
-- claim's row holds the token of the attempt that owns it. Additive: claim_run stays.
ALTER TABLE claims ADD COLUMN IF NOT EXISTS token bigint;
CREATE SEQUENCE IF NOT EXISTS claim_tokens;
CREATE INDEX IF NOT EXISTS claims_token ON claims (token) WHERE state = 'running';
-- Live replicas: each renews its row with its claims' leases (one statement per period).
CREATE TABLE IF NOT EXISTS replicas (
    id text PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz NOT NULL
);

-- claim_run with a fencing token, judged on the database's clock: a time later than
-- now() + p_tolerance seconds is not granted ('early', with the seconds to wait).
CREATE OR REPLACE FUNCTION claim_fenced(
    p_job text, p_at timestamptz, p_replica text, p_run text, p_max integer, p_lease float8,
    p_tolerance float8
) RETURNS TABLE (o_verdict text, o_token bigint, o_wait float8) LANGUAGE plpgsql
-- Indexes only (see claim_batch): a plan made while the table was small stays cached.
SET enable_seqscan = off SET jit = off AS $$
DECLARE
    ahead float8;
    existing record;
    live integer;
    t bigint;
BEGIN
    ahead := extract(epoch FROM p_at - now());
    IF ahead > p_tolerance THEN
        -- Ask again at the time itself, not at the tolerance's edge: a replica whose
        -- clock runs ahead does not win every race by the tolerance.
        RETURN QUERY SELECT 'early'::text, 0::bigint, ahead;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(
        hashtextextended('lark_scheduler:' || current_schema() || ':' || p_job, 0));
    SELECT c.run_id, c.token INTO existing FROM claims c
        WHERE c.job_id = p_job AND c.scheduled_at = p_at;
    IF FOUND THEN
        -- The same run asking again (its first answer was lost with a connection) won.
        IF existing.run_id = p_run THEN
            RETURN QUERY SELECT 'won'::text, existing.token, 0::float8;
        ELSE
            RETURN QUERY SELECT 'taken'::text, 0::bigint, 0::float8;
        END IF;
        RETURN;
    END IF;
    SELECT count(*) INTO live FROM claims c
        WHERE c.job_id = p_job AND c.state = 'running' AND c.lease_until > now();
    -- ON CONFLICT: a missed or coalesced time is recorded (mark) without the lock.
    IF live >= p_max THEN
        INSERT INTO claims (job_id, scheduled_at, replica, run_id, state, finished_at)
            VALUES (p_job, p_at, p_replica, p_run, 'skipped', now()) ON CONFLICT DO NOTHING;
        RETURN QUERY SELECT CASE WHEN FOUND THEN 'busy' ELSE 'taken' END, 0::bigint,
            0::float8;
        RETURN;
    END IF;
    t := nextval('claim_tokens');
    INSERT INTO claims (job_id, scheduled_at, replica, run_id, state, lease_until, token)
        VALUES (p_job, p_at, p_replica, p_run, 'running',
                now() + p_lease * interval '1 second', t) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'taken'::text, 0::bigint, 0::float8;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'won'::text, t, 0::float8;
END $$;

-- claim_fenced for a batch, set-based (one plan for the batch instead of one call and
-- five statements per row), with the same verdicts. Times later than now() + p_tolerance
-- are 'early'. The advisory locks of the due jobs are taken in job order (two batches never
-- deadlock), then a second statement, whose snapshot sees every claim committed under
-- them, answers: a time with a row is 'won' for the run that holds it, else 'taken'; of a
-- job's new times, in time order, the k-th is 'won' (with a token) while the job's live
-- running claims + k <= its max_instances, as claim_fenced called row after row would
-- decide, else recorded 'skipped' and answered 'busy'. The claim rows themselves say which
-- times were decided: jobs.last_fire is not moved per claim (see claim_decided).
CREATE OR REPLACE FUNCTION claim_batch(
    p_jobs text[], p_ats timestamptz[], p_runs text[], p_max integer[], p_replica text,
    p_lease float8, p_tolerance float8
) RETURNS TABLE (o_i integer, o_verdict text, o_token bigint, o_wait float8)
LANGUAGE plpgsql
-- Planned once per connection, not per call (a custom plan of this statement costs more
-- than a small batch's rows). That plan must not depend on how big the table was then (a
-- replica that starts on a new schema plans while it is empty, and the plan stays cached
-- while the table grows): no seq scan of claims (each existing claim is one lookup of
-- the primary key, a LATERAL subquery with LIMIT, which is never flattened into a hash
-- join), and no JIT (the cost of a disabled seq scan would set it off on every call).
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(
        hashtextextended('lark_scheduler:' || current_schema() || ':' || d.job, 0))
        FROM (SELECT DISTINCT u.job FROM unnest(p_jobs, p_ats) AS u(job, at)
              WHERE u.at <= now() + p_tolerance * interval '1 second' ORDER BY u.job) AS d;
    RETURN QUERY
    WITH req AS (
        SELECT u.i::integer AS i, u.job, u.at, u.run, u.mx,
            extract(epoch FROM u.at - now())::float8 AS ahead
        FROM unnest(p_jobs, p_ats, p_runs, p_max) WITH ORDINALITY AS u(job, at, run, mx, i)
    ), old AS (
        SELECT r.i, c.run_id, c.token FROM req r
        CROSS JOIN LATERAL (SELECT x.run_id, x.token FROM claims x
                            WHERE x.job_id = r.job AND x.scheduled_at = r.at LIMIT 1) c
        WHERE r.ahead <= p_tolerance
    ), fresh AS (
        -- A time asked twice in one batch: the first request decides, the other is 'taken'.
        SELECT DISTINCT ON (r.job, r.at) r.i, r.job, r.at, r.run, r.mx FROM req r
        WHERE r.ahead <= p_tolerance AND NOT EXISTS (SELECT 1 FROM old o WHERE o.i = r.i)
        ORDER BY r.job, r.at, r.i
    ), decided AS (
        -- The live count per row, so that it is an index lookup of the job's own claims.
        SELECT f.job, f.at, f.run, (SELECT count(*) FROM claims c WHERE c.job_id = f.job
                AND c.state = 'running' AND c.lease_until > now())
            + row_number() OVER (PARTITION BY f.job ORDER BY f.at) <= f.mx AS wins
        FROM fresh f
    ), ins AS (
        -- ON CONFLICT: a missed or coalesced time is recorded (mark) without the lock.
        INSERT INTO claims (job_id, scheduled_at, replica, run_id, state, lease_until,
                            finished_at, token)
        SELECT d.job, d.at, p_replica, d.run,
            CASE WHEN d.wins THEN 'running' ELSE 'skipped' END,
            CASE WHEN d.wins THEN now() + p_lease * interval '1 second' END,
            CASE WHEN d.wins THEN NULL ELSE now() END,
            CASE WHEN d.wins THEN nextval('claim_tokens') END
        FROM decided d
        ON CONFLICT DO NOTHING
        RETURNING claims.run_id, claims.state, claims.token
    )
    SELECT r.i, CASE
            WHEN r.ahead > p_tolerance THEN 'early'
            WHEN o.i IS NOT NULL THEN CASE WHEN o.run_id = r.run THEN 'won' ELSE 'taken' END
            WHEN n.run_id IS NULL THEN 'taken'
            WHEN n.state = 'running' THEN 'won'
            ELSE 'busy' END,
        coalesce(CASE WHEN o.i IS NOT NULL THEN
            CASE WHEN o.run_id = r.run THEN o.token END ELSE n.token END, 0),
        CASE WHEN r.ahead > p_tolerance THEN r.ahead ELSE 0::float8 END
    FROM req r LEFT JOIN old o ON o.i = r.i
    LEFT JOIN ins n ON o.i IS NULL AND n.run_id = r.run
    ORDER BY r.i;
END $$;

-- The latest time a replica decided for a job: its claims' latest scheduled time (one
-- backward step of the primary key), or jobs.last_fire, where the reaper folds the times
-- of the claims it deletes. As when each claim moved jobs.last_fire, only claims made
-- while the row existed count (not those of a job removed and added again), and not the
-- embedded schedule-state's rows (state_pg keeps jobs.last_fire itself).
CREATE OR REPLACE FUNCTION claim_decided(p_job text, p_created timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT max(c.scheduled_at) FROM claims c
    WHERE c.job_id = p_job AND c.started_at >= p_created AND c.replica NOT LIKE 'embedded:%'
$$;

-- A retry takes a claim of its own: attempt p_attempt of a time whose attempt
-- p_attempt - 1 failed or was interrupted (or is this replica's own attempt that just
-- failed and is being finished) gets the row with a new token.
CREATE OR REPLACE FUNCTION claim_retry_fenced(
    p_job text, p_at timestamptz, p_replica text, p_run text, p_attempt integer,
    p_max integer, p_lease float8
) RETURNS TABLE (o_verdict text, o_token bigint, o_wait float8) LANGUAGE plpgsql
SET enable_seqscan = off SET jit = off AS $$
DECLARE
    cur record;
    live integer;
    t bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(
        hashtextextended('lark_scheduler:' || current_schema() || ':' || p_job, 0));
    SELECT c.state, c.attempt, c.replica, c.run_id, c.token INTO cur FROM claims c
        WHERE c.job_id = p_job AND c.scheduled_at = p_at;
    IF FOUND AND cur.attempt = p_attempt AND cur.run_id = p_run THEN
        RETURN QUERY SELECT 'won'::text, cur.token, 0::float8;
        RETURN;
    END IF;
    IF NOT FOUND OR cur.attempt <> p_attempt - 1 OR NOT (
            cur.state IN ('failed', 'interrupted')
            OR (cur.state = 'running' AND cur.replica = p_replica)) THEN
        RETURN QUERY SELECT 'taken'::text, 0::bigint, 0::float8;
        RETURN;
    END IF;
    SELECT count(*) INTO live FROM claims c
        WHERE c.job_id = p_job AND c.state = 'running' AND c.lease_until > now()
        AND c.scheduled_at <> p_at;
    IF live >= p_max THEN
        RETURN QUERY SELECT 'busy'::text, 0::bigint, 0::float8;
        RETURN;
    END IF;
    t := nextval('claim_tokens');
    UPDATE claims SET state = 'running', run_id = p_run, replica = p_replica,
        attempt = p_attempt, token = t, lease_until = now() + p_lease * interval '1 second',
        started_at = now(), finished_at = NULL, worker = NULL, worker_until = NULL,
        worker_outcome = NULL
        WHERE job_id = p_job AND scheduled_at = p_at;
    RETURN QUERY SELECT 'won'::text, t, 0::float8;
END $$;

-- Fewer index entries per fire (issue 13, load): every statement of the hot path finds a
-- claim by its primary key (job, time) and checks the token there, so the token index is
-- gone (an entry per claim); the clean-up of old claims reads a BRIN index of the claims'
-- start times (a few entries per 128 pages, none per row) instead of a b-tree of their end
-- times (an entry per outcome). The b-trees are dropped once; what replaces them is
-- created once (IF NOT EXISTS), so the DDL stays idempotent.
DROP INDEX IF EXISTS claims_token;
DROP INDEX IF EXISTS claims_finished;
CREATE INDEX IF NOT EXISTS claims_started ON claims USING brin (started_at)
    WITH (autosummarize = on);

-- The outcomes of a batch, each fenced by its token. The plan is pinned to one primary-
-- key lookup per row of the batch (a nested loop), whatever the statistics say: they
-- would pick a scan of a young table (a few rows when analysed) or of claims_live (a
-- few running claims, but the index also holds every claim finished since the last
-- vacuum, which the planner does not count). So: no seq scan, no hash or merge join,
-- and "running" is a variable, which a generic plan keeps as a parameter, so the
-- partial index claims_live (state = 'running') cannot be matched to the query.
-- No JIT: a disabled plan node's cost would otherwise make every call compile.
CREATE OR REPLACE FUNCTION finish_batch(
    p_jobs text[], p_ats timestamptz[], p_runs text[], p_states text[], p_tokens bigint[]
) RETURNS TABLE (o_i integer) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off AS $$
DECLARE
    running text := 'running';
BEGIN
    RETURN QUERY
    UPDATE claims c SET state = u.state, finished_at = now(), lease_until = NULL
    FROM unnest(p_jobs, p_ats, p_runs, p_states, p_tokens) WITH ORDINALITY
        AS u(job, at, run, state, token, i)
    WHERE c.job_id = u.job AND c.scheduled_at = u.at AND c.run_id = u.run
        AND c.token = u.token AND c.state = running
    RETURNING u.i::integer;
END $$;

-- The outcomes of the last turn and the claims of this one, in one statement and one
-- commit; the outcomes first, so the claims do not count the runs they end.
CREATE OR REPLACE FUNCTION settle_batch(
    p_fjobs text[], p_fats timestamptz[], p_fruns text[], p_fstates text[],
    p_ftokens bigint[], p_jobs text[], p_ats timestamptz[], p_runs text[], p_max integer[],
    p_replica text, p_lease float8, p_tolerance float8
) RETURNS TABLE (o_kind text, o_i integer, o_verdict text, o_token bigint, o_wait float8)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY SELECT 'finish'::text, f.o_i, NULL::text, NULL::bigint, NULL::float8
        FROM finish_batch(p_fjobs, p_fats, p_fruns, p_fstates, p_ftokens) AS f;
    RETURN QUERY SELECT 'claim'::text, c.o_i, c.o_verdict, c.o_token, c.o_wait
        FROM claim_batch(p_jobs, p_ats, p_runs, p_max, p_replica, p_lease, p_tolerance) AS c;
END $$;

-- One renewal of a replica: its heartbeat, the leases of its running claims (by primary
-- key, each still holding the token it was won with), and the live replicas (a heartbeat
-- within p_window seconds). Plan pinned as finish_batch's.
CREATE OR REPLACE FUNCTION renew_replica(
    p_replica text, p_lease float8, p_jobs text[], p_ats timestamptz[], p_tokens bigint[],
    p_window float8
) RETURNS TABLE (o_token bigint, o_replica text) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off AS $$
DECLARE
    running text := 'running';
BEGIN
    INSERT INTO replicas (id, heartbeat_at, lease_until)
        VALUES (p_replica, now(), now() + p_lease * interval '1 second')
        ON CONFLICT (id) DO UPDATE
        SET heartbeat_at = now(), lease_until = EXCLUDED.lease_until;
    RETURN QUERY
    WITH renewed AS (
        UPDATE claims c SET lease_until = now() + p_lease * interval '1 second'
        FROM unnest(p_jobs, p_ats, p_tokens) AS u(job, at, token)
        WHERE c.job_id = u.job AND c.scheduled_at = u.at AND c.token = u.token
            AND c.state = running
        RETURNING c.token
    )
    SELECT r.token, NULL::text FROM renewed r
    UNION ALL
    SELECT NULL::bigint, p.id FROM replicas p
        WHERE p.heartbeat_at > now() - p_window * interval '1 second';
END $$;
"""


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing to send. Its connections carry no session
    state (advisory locks are transaction-scoped, SET is only SET LOCAL, LISTEN has a
    connection of its own); asyncpg's default reset sends a query (advisory unlock, CLOSE,
    UNLISTEN, RESET ALL) after every statement: a second round trip per statement. An
    open transaction is still rolled back by the pool before this is called."""


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the database answered the last call, and if not, why."""

    state: str = "up"
    error: str | None = None


def channel_name(schema: str) -> str:
    """The LISTEN/NOTIFY channel of a scheduler schema."""
    return f"{schema}_jobs"


class Database:
    """The scheduler's PostgreSQL schema and pool. ``await db.open()`` before use.

    ``clock`` (the real one by default) is what every backoff wait of the database's
    users is measured on.
    """

    def __init__(self, dsn: str, *, schema: str = "lark_scheduler", pool_size: int = 10,
                 clock: Clock | None = None) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(
                f"schema={schema!r} must be lower-case letters, digits and underscores "
                "(at most 41 characters, not starting with a digit)"
            )
        self.dsn = dsn
        self.schema = schema
        self.channel = channel_name(schema)
        self.pool_size = pool_size
        self.clock: Clock = clock if clock is not None else RealClock()
        self.health = Health()
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the database is not open; await Database.open() first")
        return self._pool

    async def open(self, *, patience: float = 30.0) -> None:
        """Create the pool and the schema (idempotent; safe for replicas starting together).

        While the server is unreachable, retries with backoff for ``patience`` seconds."""
        async with self._opening:
            if self._pool is None:
                await self._open(patience)

    async def _open(self, patience: float) -> None:
        # Patience is counted in backoff sleeps (on the injected clock).
        waited = 0.0
        delay = 0.2
        while True:
            try:
                await self.migrate()
                break
            except UNAVAILABLE as exc:
                self.mark_down(exc)
                if waited + delay > patience:
                    raise
                await self.clock.sleep(delay)
                waited += delay
                delay = min(delay * 2, 5.0)
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=self.pool_size,
            server_settings={"search_path": self.schema,
                             "application_name": f"lark_scheduler:{self.schema}"},
            reset=_keep_session,
        )

    async def migrate(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    f"lark_scheduler:schema:{self.schema}",
                )
                # The schema name was validated above (letters, digits, underscores).
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                await conn.execute(f'SET LOCAL search_path TO "{self.schema}"')
                await conn.execute(_DDL)
                await conn.execute(
                    "INSERT INTO scheduler_meta (key, value) VALUES ('version', $1) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    str(SCHEMA_VERSION),
                )
        finally:
            await conn.close()

    async def connect(self) -> asyncpg.Connection:
        """A connection of its own (not from the pool), on the scheduler's schema."""
        conn: asyncpg.Connection = await asyncpg.connect(
            self.dsn, timeout=10,
            server_settings={"search_path": self.schema,
                             "application_name": f"lark_scheduler:{self.schema}"},
        )
        return conn

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def drop(self) -> None:
        """Drop the schema and everything in it (tests)."""
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        finally:
            await conn.close()

    async def call(self, func: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run ``func`` on a pooled connection, keeping :attr:`health` current."""
        try:
            async with self.pool.acquire() as conn:
                result = await func(conn)
        except UNAVAILABLE as exc:
            self.mark_down(exc)
            raise
        if self.health.state != "up":
            self.mark_up()
        return result

    def mark_down(self, exc: BaseException) -> None:
        if self.health.state == "up":
            log.error("PostgreSQL is unavailable: %s: %s", type(exc).__name__, exc)
        self.health = Health(state="down", error=f"{type(exc).__name__}: {exc}")

    def mark_up(self) -> None:
        if self.health.state != "up":
            log.warning("PostgreSQL is reachable again")
        self.health = Health()

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async def run(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

        return await self.call(run)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async def run(conn: asyncpg.Connection) -> Any:
            return await conn.fetchval(sql, *args)

        return await self.call(run)

    async def execute(self, sql: str, *args: Any) -> str:
        async def run(conn: asyncpg.Connection) -> str:
            status: str = await conn.execute(sql, *args)
            return status

        return await self.call(run)
