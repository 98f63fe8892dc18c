"""Schedule state in a SQLite file: the service's embedded default.

It lives in the service's own database file (two tables of its own, created if missing),
next to the service's store. WAL mode with ``synchronous=NORMAL``: a commit survives the
process being killed (SIGKILL, a crash), which is what this state is for; only a power
loss can take the last commits back. One transaction per batch (a timer tick's records):
the hot path pays one commit per tick, not one per fire.

Two connections. A commit is first tried on the event loop with a connection that never
waits (``busy_timeout`` 0, no automatic checkpoint): in WAL mode with ``NORMAL`` it is a
write into the operating system's page cache, tens of microseconds, cheaper than handing
it to a thread (measured in ``bench/latest/durable.md``). When the write lock is held by
another connection (the service's store is writing) it goes to a worker thread whose
connection waits up to ``busy_timeout``. The worker thread also runs the checkpoints
(which ``fsync``) every ``CHECKPOINT_EVERY`` commits, so the loop never waits for one.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

from ._records import (
    Batch,
    Decided,
    Defined,
    Forgotten,
    InFlight,
    JobState,
    RunEnded,
    RunStarted,
    trigger_key,
)

__all__ = ("CHECKPOINT_EVERY", "SqliteScheduleStore")

CHECKPOINT_EVERY = 500

T = TypeVar("T")

_DDL = (
    """CREATE TABLE IF NOT EXISTS schedule_jobs (
        job_id TEXT PRIMARY KEY,
        func_ref TEXT NOT NULL,
        trigger TEXT NOT NULL,
        anchor TEXT,
        since TEXT NOT NULL,
        last_decided TEXT,
        last_outcome TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS schedule_runs (
        run_id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        scheduled_at TEXT,
        started_at TEXT NOT NULL,
        attempt INTEGER NOT NULL
    )""",
)
# Times are UTC ISO text of one fixed shape, so text order is time order (MAX works).
_DECIDED = (
    "UPDATE schedule_jobs SET last_decided = ?2, last_outcome = ?3 "
    "WHERE job_id = ?1 AND (last_decided IS NULL OR last_decided <= ?2)"
)
_STARTED = ("INSERT OR REPLACE INTO schedule_runs (run_id, job_id, scheduled_at, started_at, "
            "attempt) VALUES (?, ?, ?, ?, ?)")
_ENDED = "DELETE FROM schedule_runs WHERE run_id = ?"
_DEFINED = (
    "INSERT OR REPLACE INTO schedule_jobs (job_id, func_ref, trigger, anchor, since, "
    "last_decided, last_outcome) VALUES (?, ?, ?, ?, ?, NULL, NULL)"
)
_FORGOTTEN = "DELETE FROM schedule_jobs WHERE job_id = ?"


def _text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _opt(value: datetime | None) -> str | None:
    return None if value is None else _text(value)


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class SqliteScheduleStore:
    """:class:`~kernel.state.ScheduleStore` on a SQLite file (see the module doc).

    ``busy_timeout`` (seconds) is how long a write waits for another connection's (the
    service's store) write lock. ``synchronous`` is SQLite's setting (``NORMAL`` or
    ``FULL``).
    """

    write_ahead = True

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0,
                 synchronous: str = "NORMAL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous={synchronous!r}: use 'NORMAL' or 'FULL'")
        self.path = os.fspath(path)
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous
        self._conn: sqlite3.Connection | None = None  # the worker thread's
        self._fast: sqlite3.Connection | None = None  # the loop's: never waits
        self._thread: ThreadPoolExecutor | None = None
        self._commits = 0
        self._checkpoint: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"SqliteScheduleStore({self.path!r})"

    async def _call(self, func: Callable[..., T], *args: object) -> T:
        assert self._thread is not None, "open() the store first"
        return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)

    async def open(self) -> None:
        if self._thread is not None:
            return
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="schedule-state")
        try:
            await self._call(self._open)
        except BaseException:
            self._thread.shutdown(wait=False)
            self._thread = None
            raise

    def _open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=self.busy_timeout)
        fast = None
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _DDL:
                conn.execute(statement)
            conn.execute("COMMIT")
            fast = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=0)
            fast.execute(f"PRAGMA synchronous = {self.synchronous}")
            fast.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException:
            conn.close()
            if fast is not None:
                fast.close()
            raise
        self._conn, self._fast = conn, fast

    async def close(self) -> None:
        if self._thread is None:
            return
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        await self._call(self._close)
        self._thread.shutdown(wait=True)
        self._thread = None

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        fast, self._fast = self._fast, None
        if fast is not None:
            fast.close()
        if conn is not None:
            conn.close()

    async def load(self) -> tuple[dict[str, JobState], list[InFlight]]:
        return await self._call(self._load)

    def _load(self) -> tuple[dict[str, JobState], list[InFlight]]:
        conn = self._conn
        assert conn is not None
        jobs = {
            row[0]: JobState(job_id=row[0], func_ref=row[1], trigger=row[2],
                             anchor=_time(row[3]), since=datetime.fromisoformat(row[4]),
                             last_decided=_time(row[5]), last_outcome=row[6])
            for row in conn.execute(
                "SELECT job_id, func_ref, trigger, anchor, since, last_decided, last_outcome "
                "FROM schedule_jobs ORDER BY job_id")
        }
        runs = [
            InFlight(run_id=row[0], job_id=row[1], scheduled_at=_time(row[2]),
                     started_at=datetime.fromisoformat(row[3]), attempt=row[4])
            for row in conn.execute(
                "SELECT run_id, job_id, scheduled_at, started_at, attempt FROM schedule_runs "
                "ORDER BY started_at, run_id")
        ]
        return jobs, runs

    async def commit(self, batch: Batch) -> None:
        fast = self._fast
        assert fast is not None, "open() the store first"
        if self._checkpoint is not None and self._checkpoint.done():
            self._checkpoint = None
        try:
            # A PASSIVE checkpoint in the worker thread does not stop this writer (WAL).
            _transaction(fast, batch)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            await self._call(self.apply, batch)  # another connection writes: wait there
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0 and self._checkpoint is None:
            loop = asyncio.get_running_loop()
            assert self._thread is not None
            self._checkpoint = loop.run_in_executor(self._thread, self._passive_checkpoint)

    def _passive_checkpoint(self) -> None:
        conn = self._conn
        if conn is not None:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def apply(self, batch: Batch) -> None:
        """Write ``batch`` in one transaction, waiting for the lock (blocking: the worker
        thread calls it)."""
        conn = self._conn
        assert conn is not None, "open() the store first"
        _transaction(conn, batch)

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` of the file (tests, operators): ``"ok"`` when sound."""
        with sqlite3.connect(self.path) as conn:
            row = conn.execute("PRAGMA integrity_check").fetchone()
        conn.close()
        return str(row[0])


def _transaction(conn: sqlite3.Connection, batch: Batch) -> None:
    """``batch`` in one transaction; consecutive records of one kind in one executemany."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        kind: type | None = None
        rows: list[tuple[object, ...]] = []
        for rec in batch:
            if type(rec) is not kind:
                _write(conn, kind, rows)
                kind, rows = type(rec), []
            rows.append(rec)
        _write(conn, kind, rows)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _write(conn: sqlite3.Connection, kind: type | None, recs: list[tuple[object, ...]]) -> None:
    if not recs:
        return
    if kind is RunStarted:
        started = [r for r in recs if isinstance(r, RunStarted)]
        conn.executemany(_STARTED, [
            (r.run_id, r.job_id, _opt(r.scheduled_at), _text(r.started_at), r.attempt)
            for r in started])
        conn.executemany(_DECIDED, [(r.job_id, _text(r.scheduled_at), "run")
                                    for r in started if r.scheduled_at is not None])
    elif kind is RunEnded:
        conn.executemany(_ENDED, [(r.run_id,) for r in recs if isinstance(r, RunEnded)])
    elif kind is Decided:
        conn.executemany(_DECIDED, [(r.job_id, _text(r.scheduled_at), r.outcome)
                                    for r in recs if isinstance(r, Decided)])
    elif kind is Defined:
        conn.executemany(_DEFINED, [(r.job_id, r.func_ref, trigger_key(r.trigger), _opt(r.anchor),
                                     _text(r.since)) for r in recs if isinstance(r, Defined)])
    elif kind is Forgotten:
        conn.executemany(_FORGOTTEN, [(r.job_id,) for r in recs if isinstance(r, Forgotten)])
