"""PostgreSQL coordination for several replicas: claims, leases, the reaper, failure records.

:class:`PostgresCoordinator` implements :class:`kernel.coordination.Coordinator` with a
``claims`` table, one row per (job id, scheduled time), primary key on the pair. A claim
is one call of the ``claim_fenced`` SQL function (see ``_pg.py``): it refuses a time
later than the database's ``now()`` plus ``DUE_TOLERANCE`` (``early``, with the seconds
to wait: the database's clock decides "due", not the replica's), takes a per-job
advisory lock, answers ``taken`` if the row exists, counts the job's live running
claims against ``max_instances``, and inserts the row with a fencing token drawn from
the ``claim_tokens`` sequence. A batch (``claim_many``) is one call of
``claim_batch``, which gives every row the verdict ``claim_fenced`` would, set-based.
A retry (``claim_retry_fenced``) takes the row of a failed or interrupted attempt with
a new token. Finishing a claim is fenced: it only succeeds while the row still holds
the run's token. A job's last decided time is its claims' latest scheduled time
(``claim_decided``), so a claim writes no ``jobs`` row; the reaper keeps the latest time
of the claims it deletes in ``jobs.last_fire``.

Leases are timestamps computed by the database (``now() + lease``), so replica clock
skew does not affect them. The leases of all of this replica's running claims, and its
row in the ``replicas`` table, are renewed by one statement every ``lease / 3``
seconds on a connection of its own (so a busy pool does not delay it) and, on the real
clock, on a thread with an event loop of its own (so an overloaded or blocked kernel loop
makes runs late, never loses their leases; what a renewal finds reaches the kernel's loop
through ``call_soon_threadsafe``). A claim the
statement does not renew is lost (reaped, or retried elsewhere) and its run is told at
once; when the database cannot be reached, a run is told its lease is unrenewable
``lease / 6`` seconds before its lease would expire, counted on this replica's monotonic
clock from the last renewal sent, so it is cancelled before any other replica can
take the time over.

The reaper, run by every replica every ``lease / 2`` seconds, turns running claims
whose lease has expired into ``interrupted`` with one ``UPDATE ... RETURNING``; row
locks make each expired claim come back to exactly one replica, which hands it to its
kernel (:meth:`kernel.port.KernelPort.report_interrupted`): the failure record
(``exc_type="Interrupted"``), ``RunFailed``, and the job's retry policy, with its delay.
It also deletes the claims started and finished more than ``keep_claims``
ago (found through a BRIN index of their start times). The reaper waits on the
kernel's clock.

:class:`PostgresFailureStore` keeps failure records in the same schema so every
replica sees them (the reaper's records included).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from ..clock import RealClock
from ..coordination import (
    Claim,
    ClaimRequest,
    ClaimState,
    ClaimVerdict,
    FinishRequest,
    LeaseLost,
    MarkRequest,
)
from ..observe.failures import FailureRecord, RetryAttempt
from ._pg import Database, Health
from ._pgstore import PostgresJobStore, StoredJob

if TYPE_CHECKING:
    from ..port import KernelPort

__all__ = (
    "Database",
    "Health",
    "PostgresCoordinator",
    "PostgresFailureStore",
    "PostgresJobStore",
    "StoredJob",
    "WorkerOutcome",
)

log = logging.getLogger("scheduler.coordination")

_VERDICTS: dict[str, ClaimVerdict] = {"won": "won", "taken": "taken", "busy": "busy",
                                      "early": "early"}
DUE_TOLERANCE = 0.05
"""Seconds a claim may come before its scheduled time on the database's clock."""

# One statement per renewal period: this replica's heartbeat, every held lease (by the
# claim's primary key and token), and the replicas that are live (a heartbeat within two
# renewal periods: $6 seconds). See renew_replica in _pg.py.
_RENEW = ("SELECT o_token AS token, o_replica AS replica FROM renew_replica("
          "$1, $2, $3::text[], $4::timestamptz[], $5::bigint[], $6)")


def _call_now(func: Callable[..., object], *args: object) -> None:
    func(*args)


def owner_of(live: Sequence[str], job_id: str) -> str:
    """The live replica that fires ``job_id``: rendezvous (highest random weight) hashing,
    so a replica joining or leaving moves only its share of the jobs."""
    return max(live, key=lambda replica: hashlib.blake2b(
        f"{replica}\0{job_id}".encode(), digest_size=8).digest())


class _Held:
    """A running claim's lease as this replica sees it."""

    __slots__ = ("job_id", "on_lost", "scheduled_at", "valid_until")

    def __init__(self, valid_until: float, on_lost: Callable[[LeaseLost], None],
                 job_id: str, scheduled_at: datetime) -> None:
        self.valid_until = valid_until  # monotonic: lease from the last renewal sent
        self.on_lost = on_lost
        self.job_id = job_id  # the claim's primary key, by which it is renewed
        self.scheduled_at = scheduled_at


def default_replica_id() -> str:
    """``host:pid:random``: unique per process, readable in the claims table."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class WorkerOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """How a run on a RabbitMQ worker ended (stored in its claim, sent to the replica)."""

    run_id: str
    ok: bool
    worker: str
    duration: float
    exc_type: str | None = None
    message: str = ""
    traceback: str = ""
    timed_out: bool = False


class PostgresCoordinator:
    """Claims in PostgreSQL; see the module doc. ``lease`` is in seconds."""

    def __init__(
        self,
        db: Database,
        *,
        replica_id: str | None = None,
        lease: float = 15.0,
        keep_claims: timedelta = timedelta(days=7),
        partition: bool = True,
    ) -> None:
        if lease < 0.1:
            raise ValueError(f"lease={lease} must be at least 0.1 seconds")
        self.db = db
        self.replica_id = replica_id if replica_id is not None else default_replica_id()
        self.lease = float(lease)
        self.keep_claims = keep_claims
        self._port: KernelPort | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        # On the real clock, renewals run on a thread of their own (see _renew_on_thread).
        self._renew_thread: threading.Thread | None = None
        self._renew_loop: asyncio.AbstractEventLoop | None = None
        self._renew_task: asyncio.Task[None] | None = None
        self._renew_conn: asyncpg.Connection | None = None
        self._held: dict[int, _Held] = {}
        # token -> (monotonic time its claim was sent, job id, scheduled time)
        self._granted: dict[int, tuple[float, str, datetime]] = {}
        self.partition = partition
        self.live: tuple[str, ...] = (self.replica_id,)
        """The live replicas as of the last renewal (this one always included)."""
        self.on_rebalance: Callable[[tuple[str, ...], tuple[str, ...]], None] | None = None
        """Called with (old, new) live replicas when the set changes."""
        self._owns: dict[str, bool] = {}

    # -- Coordinator ------------------------------------------------------------------
    async def attach(self, port: KernelPort) -> None:
        self._port = port
        await self.db.open()
        loop = asyncio.get_running_loop()
        self._reaper = loop.create_task(self._reap_forever(port))
        if isinstance(port.clock, RealClock):
            self._start_renew_thread(port, loop)
        else:
            self._renewer = loop.create_task(self._renew_forever(port))

    async def detach(self) -> None:
        for task in (self._reaper, self._renewer):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._reaper = self._renewer = None
        thread = self._renew_thread
        if thread is not None:
            renew_loop, renew_task = self._renew_loop, self._renew_task
            if renew_loop is not None and renew_task is not None:
                renew_loop.call_soon_threadsafe(renew_task.cancel)
            # It removes this replica's row and closes its connection on its way out.
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 10)
            self._renew_thread = self._renew_loop = self._renew_task = None
        self.live = (self.replica_id,)
        self._owns.clear()
        await self._leave()

    async def _leave(self) -> None:
        """Leaving: this replica's row goes (the others stop counting it at once), and the
        renewal's connection is closed (on the loop that owns it)."""
        conn, self._renew_conn = self._renew_conn, None
        if conn is not None:
            try:
                await conn.execute("DELETE FROM replicas WHERE id = $1", self.replica_id,
                                   timeout=2)
            except Exception as exc:
                log.warning("could not remove replica %s from the replicas table: %s",
                            self.replica_id, exc)
            try:
                await conn.close(timeout=2)
            except Exception:
                conn.terminate()  # cut mid-statement (a renewal cancelled at shutdown)

    def _start_renew_thread(self, port: KernelPort, main: asyncio.AbstractEventLoop) -> None:
        """Renewals on a thread with a loop and a connection of their own, so that an
        overloaded (or blocked) kernel loop makes its runs late, never loses their
        leases: only a stopped process (SIGSTOP, a frozen VM) or an unreachable database
        does. What a renewal finds reaches the kernel's loop with call_soon_threadsafe."""
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._renew_loop = loop
            self._renew_task = loop.create_task(self._renew_on_thread(port, main))
            started.set()
            try:
                loop.run_until_complete(asyncio.gather(self._renew_task,
                                                       return_exceptions=True))
                loop.run_until_complete(self._leave())
            finally:
                loop.close()

        thread = threading.Thread(target=run, name=f"lease-renewal:{self.replica_id}",
                                  daemon=True)
        self._renew_thread = thread
        thread.start()
        started.wait()

    async def _renew_on_thread(self, port: KernelPort, main: asyncio.AbstractEventLoop
                               ) -> None:
        while True:
            await port.clock.sleep(self.lease / 3)
            if main.is_closed():
                return
            try:
                await self.renew_held(on_loop=main.call_soon_threadsafe)
            except Exception:
                log.exception("lease renewal pass failed")

    def owns(self, job_id: str) -> bool:
        """Whether this replica fires ``job_id`` (see :func:`owner_of`); every replica
        owns every job while it is alone or ``partition`` is off."""
        live = self.live
        if not self.partition or len(live) == 1:
            return True
        owned = self._owns.get(job_id)
        if owned is None:
            owned = self._owns[job_id] = owner_of(live, job_id) == self.replica_id
        return owned

    def _set_live(self, live: tuple[str, ...]) -> None:
        if live == self.live:
            return
        old, self.live = self.live, live
        self._owns.clear()
        log.info("Live replicas: %s (were %s)", ", ".join(live), ", ".join(old))
        if self.on_rebalance is not None:
            self.on_rebalance(old, live)

    def _monotonic(self) -> float:
        return self.db.clock.monotonic() if self._port is None else \
            self._port.clock.monotonic()

    async def claim(
        self, job_id: str, scheduled_at: datetime, run_id: str, *, max_instances: int
    ) -> Claim:
        sent = self._monotonic()
        rows = await self.db.fetch(
            "SELECT o_verdict, o_token, o_wait FROM claim_fenced($1, $2, $3, $4, $5, $6, $7)",
            job_id, scheduled_at, self.replica_id, run_id, max_instances, self.lease,
            DUE_TOLERANCE,
        )
        return self._answer(rows[0], sent, job_id, scheduled_at)

    async def claim_many(self, requests: Sequence[ClaimRequest]) -> list[Claim]:
        """One statement for all ``requests`` (``claim_batch``, which takes the jobs'
        locks in job order, so two replicas' batches never deadlock)."""
        sent = self._monotonic()
        rows = await self.db.fetch(
            "SELECT o_i, o_verdict, o_token, o_wait FROM "
            "claim_batch($1::text[], $2::timestamptz[], $3::text[], $4::int[], $5, $6, $7)",
            [r.job_id for r in requests], [r.scheduled_at for r in requests],
            [r.run_id for r in requests], [r.max_instances for r in requests],
            self.replica_id, self.lease, DUE_TOLERANCE,
        )
        answers: list[Claim] = [Claim("taken")] * len(requests)
        for row in rows:
            request = requests[row["o_i"] - 1]
            answers[row["o_i"] - 1] = self._answer(row, sent, request.job_id,
                                                    request.scheduled_at)
        return answers

    async def claim_retry(
        self, job_id: str, scheduled_at: datetime, run_id: str, *, attempt: int,
        max_instances: int,
    ) -> Claim:
        sent = self._monotonic()
        rows = await self.db.fetch(
            "SELECT o_verdict, o_token, o_wait FROM claim_retry_fenced("
            "$1, $2, $3, $4, $5, $6, $7)",
            job_id, scheduled_at, self.replica_id, run_id, attempt, max_instances, self.lease,
        )
        return self._answer(rows[0], sent, job_id, scheduled_at)

    def _answer(self, row: Any, sent: float, job_id: str, scheduled_at: datetime) -> Claim:
        claim = Claim(_VERDICTS[row["o_verdict"]], int(row["o_token"]), float(row["o_wait"]))
        if claim.verdict == "won":
            self._granted[claim.token] = (sent, job_id, scheduled_at)
        return claim

    def hold(self, token: int, on_lost: Callable[[LeaseLost], None]) -> None:
        granted = self._granted.pop(token, None)
        if granted is None:
            raise ValueError(f"token {token} was not won by a claim of this coordinator "
                             "(hold takes the token of a claim it answered 'won')")
        sent, job_id, scheduled_at = granted
        if self._monotonic() >= sent + self.lease - self.lease / 6:
            # Won, but this process was paused (or its loop blocked) for most of the lease
            # since: it may be reaped already. Not held: the run must not start.
            on_lost("unrenewable")
            return
        self._held[token] = _Held(sent + self.lease, on_lost, job_id, scheduled_at)

    def release(self, token: int) -> None:
        self._held.pop(token, None)
        self._granted.pop(token, None)

    async def finish(
        self, job_id: str, scheduled_at: datetime, run_id: str, state: ClaimState, *,
        token: int,
    ) -> bool:
        status = await self.db.execute(
            "UPDATE claims SET state = $5, finished_at = now(), lease_until = NULL "
            "WHERE job_id = $1 AND scheduled_at = $2 AND run_id = $3 AND token = $4 "
            "AND state = 'running'",
            job_id, scheduled_at, run_id, token, state,
        )
        return status.endswith(" 1")

    async def finish_many(self, requests: Sequence[FinishRequest]) -> list[bool]:
        """One statement for all ``requests`` (``finish_batch``: each by its primary key,
        fenced by its token)."""
        rows = await self.db.fetch(
            "SELECT o_i FROM finish_batch($1::text[], $2::timestamptz[], $3::text[], "
            "$4::text[], $5::bigint[])",
            [r.job_id for r in requests], [r.scheduled_at for r in requests],
            [r.run_id for r in requests], [r.state for r in requests],
            [r.token for r in requests],
        )
        stored = [False] * len(requests)
        for row in rows:
            stored[row["o_i"] - 1] = True
        return stored

    async def settle_many(
        self, claims: Sequence[ClaimRequest], finishes: Sequence[FinishRequest]
    ) -> tuple[list[Claim], list[bool]]:
        """The outcomes, then the claims, in one statement and one commit
        (``settle_batch``: ``finish_batch`` then ``claim_batch``)."""
        sent = self._monotonic()
        rows = await self.db.fetch(
            "SELECT o_kind, o_i, o_verdict, o_token, o_wait FROM settle_batch("
            "$1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::bigint[], "
            "$6::text[], $7::timestamptz[], $8::text[], $9::int[], $10, $11, $12)",
            [r.job_id for r in finishes], [r.scheduled_at for r in finishes],
            [r.run_id for r in finishes], [r.state for r in finishes],
            [r.token for r in finishes],
            [r.job_id for r in claims], [r.scheduled_at for r in claims],
            [r.run_id for r in claims], [r.max_instances for r in claims],
            self.replica_id, self.lease, DUE_TOLERANCE,
        )
        answers: list[Claim] = [Claim("taken")] * len(claims)
        stored = [False] * len(finishes)
        for row in rows:
            i = row["o_i"] - 1
            if row["o_kind"] == "finish":
                stored[i] = True
            else:
                answers[i] = self._answer(row, sent, claims[i].job_id, claims[i].scheduled_at)
        return answers, stored

    async def renew_held(self, on_loop: Callable[..., object] | None = None) -> None:
        """One renewal: this replica's heartbeat and every held lease in one statement;
        tell the runs whose lease is lost or can no longer be renewed in time.
        ``on_loop`` carries what it finds to the kernel's loop when the renewal runs on a
        thread of its own (``loop.call_soon_threadsafe``); None: it runs on that loop."""
        call: Callable[..., object] = on_loop if on_loop is not None else _call_now
        held_now = list(self._held.items())  # one step under the GIL: a safe snapshot
        tokens = [token for token, _ in held_now]
        sent = self._monotonic()
        renewed: set[int] | None = None
        try:
            conn = self._renew_conn
            if conn is None or conn.is_closed():
                conn = self._renew_conn = await self.db.connect()
            rows = await conn.fetch(_RENEW, self.replica_id, self.lease,
                                    [held.job_id for _, held in held_now],
                                    [held.scheduled_at for _, held in held_now], tokens,
                                    2 * self.lease / 3, timeout=max(self.lease / 2, 0.05))
            renewed = {row["token"] for row in rows if row["token"] is not None}
            live = {row["replica"] for row in rows if row["replica"] is not None}
            call(self.db.mark_up)
            call(self._set_live, tuple(sorted(live | {self.replica_id})))
        except Exception as exc:
            log.warning("Could not renew the leases of %d run(s) of replica %s: %s: %s",
                        len(tokens), self.replica_id, type(exc).__name__, exc)
            conn, self._renew_conn = self._renew_conn, None
            if conn is not None:
                conn.terminate()
        lost: list[tuple[_Held, LeaseLost]] = []
        if renewed is not None:
            for token, held in held_now:
                if self._held.get(token) is not held:
                    continue  # released meanwhile
                if token in renewed:
                    held.valid_until = sent + self.lease
                else:
                    self._held.pop(token, None)
                    lost.append((held, "lost"))
        margin = self.lease / 6
        now = self._monotonic()
        for token, held in list(self._held.items()):
            if now >= held.valid_until - margin:
                self._held.pop(token, None)
                lost.append((held, "unrenewable"))
        call(self._forget_grants, now)
        for held, why in lost:
            call(held.on_lost, why)

    def _forget_grants(self, now: float) -> None:
        """Grants won but never held (the kernel stopped, or the job went, before the run
        began) are forgotten after a lease: hold would refuse them by now."""
        for token, (granted_at, _, _) in list(self._granted.items()):
            if now >= granted_at + self.lease:
                del self._granted[token]

    async def _renew_forever(self, port: KernelPort) -> None:
        while True:
            await port.clock.sleep(self.lease / 3)
            try:
                await self.renew_held()
            except Exception:
                log.exception("lease renewal pass failed")

    # -- beyond the protocol ----------------------------------------------------------
    async def mark(self, job_id: str, scheduled_at: datetime, state: ClaimState) -> bool:
        """Record a decision that runs nothing (``missed``, ``coalesced``) for a scheduled
        time; True if this replica recorded it first (and so reports it)."""

        inserted = await self.db.fetchval(
            "INSERT INTO claims (job_id, scheduled_at, replica, run_id, state, "
            "finished_at) VALUES ($1, $2, $3, '', $4, now()) "
            "ON CONFLICT DO NOTHING RETURNING true",
            job_id, scheduled_at, self.replica_id, state,
        )
        return bool(inserted)

    async def mark_many(self, requests: Sequence[MarkRequest]) -> list[bool]:
        """One statement for all ``requests``; a time asked twice is recorded once."""
        rows = await self.db.fetch(
            "INSERT INTO claims (job_id, scheduled_at, replica, run_id, state, finished_at) "
            "SELECT u.job, u.at, $4, '', u.state, now() FROM unnest($1::text[], "
            "$2::timestamptz[], $3::text[]) AS u(job, at, state) "
            "ON CONFLICT DO NOTHING RETURNING job_id, scheduled_at",
            [r.job_id for r in requests], [r.scheduled_at for r in requests],
            [r.state for r in requests], self.replica_id,
        )
        first = {(row["job_id"], row["scheduled_at"]) for row in rows}
        answers = []
        for r in requests:
            key = (r.job_id, r.scheduled_at)
            answers.append(key in first)
            first.discard(key)  # asked twice in one batch: only the first reports it
        return answers

    def health(self) -> Health:
        """The database's state as this replica last saw it."""
        return self.db.health

    async def reap(self) -> list[FailureRecord]:
        """Mark expired running claims interrupted; record and report each once."""
        # A claim a worker finished (its outcome is stored) but whose replica died before
        # recording it ends as the worker said; one nobody finished is interrupted.
        rows = await self.db.fetch(
            "UPDATE claims SET finished_at = now(), state = CASE "
            "WHEN worker_outcome IS NULL THEN 'interrupted' "
            "WHEN (worker_outcome->>'ok')::boolean THEN 'succeeded' ELSE 'failed' END "
            "WHERE state = 'running' AND lease_until < now() AND "
            "(worker_until IS NULL OR worker_until < now()) "
            "RETURNING job_id, scheduled_at, run_id, replica, attempt, started_at, lease_until, "
            "state, worker_outcome::text AS outcome",
        )
        records = [self._interrupted(row) for row in rows if row["state"] != "succeeded"]
        port = self._port
        for record in records:
            log.error(
                "Run %s of job %s (scheduled %s) ended without its replica: %s", record.run_id,
                record.job_id, record.scheduled_at, record.message,
            )
            if port is not None:
                await port.report_interrupted(record)
        # The claims say which times were decided (jobs.last_fire is not moved per claim):
        # the latest time of each job's deleted claims is kept in the column.
        await self.db.execute(
            "WITH gone AS (DELETE FROM claims WHERE started_at < now() - $1::interval "
            "AND finished_at < now() - $1::interval "
            "RETURNING job_id, scheduled_at) UPDATE jobs SET last_fire = GREATEST("
            "last_fire, g.at) FROM (SELECT job_id, max(scheduled_at) AS at FROM gone "
            "GROUP BY job_id) AS g WHERE jobs.id = g.job_id", self.keep_claims,
        )
        return records

    def _interrupted(self, row: Any) -> FailureRecord:
        lease_until: datetime = row["lease_until"]
        started: datetime = row["started_at"]
        last_seen = lease_until - timedelta(seconds=self.lease)
        if row["outcome"] is not None:
            outcome = msgspec.json.decode(row["outcome"], type=WorkerOutcome)
            return FailureRecord(
                id=uuid.uuid4().hex, job_id=row["job_id"], run_id=row["run_id"],
                scheduled_at=row["scheduled_at"], started_at=started,
                duration=outcome.duration, exc_type=outcome.exc_type or "Exception",
                message=outcome.message, traceback=outcome.traceback,
                timed_out=outcome.timed_out, attempt=row["attempt"],
            )
        return FailureRecord(
            id=uuid.uuid4().hex, job_id=row["job_id"], run_id=row["run_id"],
            scheduled_at=row["scheduled_at"], started_at=started,
            duration=max(0.0, (last_seen - started).total_seconds()),
            exc_type="Interrupted",
            message=(
                f"replica {row['replica']} stopped renewing the lease of this run; it was "
                f"last alive at {last_seen.isoformat()} and its outcome is unknown"
            ),
            traceback="", attempt=row["attempt"],
        )

    async def _reap_forever(self, port: KernelPort) -> None:
        while True:
            await port.clock.sleep(self.lease / 2)
            try:
                await self.reap()
            except Exception as exc:
                log.warning("reaper pass failed: %s: %s", type(exc).__name__, exc)


class PostgresFailureStore:
    """Failure records in the scheduler's schema, shared by all replicas."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_failure(self, record: FailureRecord) -> None:
        await self.db.open()
        await self.db.execute(
            "INSERT INTO failures (id, job_id, record) VALUES ($1, $2, $3::jsonb) "
            "ON CONFLICT (id) DO NOTHING",
            record.id, record.job_id, msgspec.json.encode(record).decode(),
        )

    async def get_failure(self, failure_id: str) -> FailureRecord | None:
        await self.db.open()
        raw = await self.db.fetchval("SELECT record::text FROM failures WHERE id = $1",
                                     failure_id)
        return None if raw is None else msgspec.json.decode(raw, type=FailureRecord)

    async def list_failures(
        self, *, job_id: str | None = None, limit: int = 100
    ) -> list[FailureRecord]:
        await self.db.open()
        rows = await self.db.fetch(
            "SELECT record::text AS r FROM failures WHERE $1::text IS NULL OR job_id = $1 "
            "ORDER BY created_at DESC, id LIMIT $2",
            job_id, limit,
        )
        return [msgspec.json.decode(row["r"], type=FailureRecord) for row in rows]

    async def set_retry(self, failure_id: str, attempt: RetryAttempt) -> None:
        await self.db.open()

        async def run(conn: Any) -> None:
            async with conn.transaction():
                raw = await conn.fetchval(
                    "SELECT record::text FROM failures WHERE id = $1 FOR UPDATE", failure_id
                )
                if raw is None:
                    return
                record = msgspec.json.decode(raw, type=FailureRecord)
                retries = [r for r in record.retries if r.run_id != attempt.run_id]
                retries.append(attempt)
                retries.sort(key=lambda r: r.started_at)
                record = msgspec.structs.replace(record, retries=tuple(retries))
                await conn.execute(
                    "UPDATE failures SET record = $2::jsonb WHERE id = $1",
                    failure_id, msgspec.json.encode(record).decode(),
                )

        await self.db.call(run)
