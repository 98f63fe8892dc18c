"""``kernel.distributed.persistent.PersistentKernel`` replicas on one PostgreSQL schema.

``kernel-pg1`` and ``kernel-pg3`` run 1 or 3 replicas in this one process, on one event
loop, each with its own connection pool, LISTEN connection and claims; they share a fresh
schema (``bench_<random>``) that ``stop()`` drops. Every replica declares the same jobs
before it starts, as replicas of one deployment do; each job's owner among the live
replicas (rendezvous hashing; every replica until the first heartbeat round) claims its
scheduled times and runs the body. Settings as for ``kernel``: ``coalesce=False``,
``max_instances=1000``, ``misfire_grace_time=3600``, timezone UTC. The server is
``$BENCH_POSTGRES_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from bench._body import job
from bench._engines._base import job_id
from bench._measure import TimeBase

__all__ = ("DSN", "PgKernel1Engine", "PgKernel3Engine", "PgKernelEngine", "probe")

DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def probe() -> str | None:
    """None when asyncpg imports and the server answers within 5 s, else why not."""
    try:
        import asyncpg
    except ImportError as exc:
        return f"asyncpg is not installed ({exc})"

    async def ping() -> None:
        conn = await asyncpg.connect(DSN, timeout=5)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    try:
        asyncio.run(ping())
    except Exception as exc:
        # The DSN may carry a password: name the host, not the DSN.
        host = DSN.rsplit("@", 1)[-1]
        return f"PostgreSQL at {host} is unreachable ({type(exc).__name__}: {exc})"
    return None


class PgKernelEngine:
    """``replicas`` PersistentKernels sharing one fresh schema; see the module doc."""

    replicas = 1

    def __init__(self, tb: TimeBase) -> None:
        from kernel import JobDefaults
        from kernel.distributed._pg import Database
        from kernel.distributed.persistent import PersistentKernel

        self.tb = tb
        self.schema = f"bench_{os.urandom(5).hex()}"
        self.kernels: list[Any] = [
            PersistentKernel(
                db=Database(DSN, schema=self.schema),
                replica_id=f"bench-{i}",
                timezone="UTC",
                job_defaults=JobDefaults(
                    coalesce=False, max_instances=1000, misfire_grace_time=3600
                ),
            )
            for i in range(self.replicas)
        ]
        self.launched = False

    async def start(self) -> None:
        """Nothing yet: jobs are declared first, then :meth:`launch` starts the replicas."""

    async def launch(self) -> None:
        """Start every replica together (each stores or checks the declared jobs)."""
        await asyncio.gather(*(k.start() for k in self.kernels))
        self.launched = True

    async def claims_per_replica(self) -> dict[str, int]:
        """Claims won by each replica so far (the ``claims`` table's rows)."""
        rows = await self.kernels[0].db.fetch(
            "SELECT replica, count(*) AS n FROM claims GROUP BY replica ORDER BY replica"
        )
        return {r["replica"]: r["n"] for r in rows}

    async def server_cpu(self) -> dict[int, float] | None:
        """CPU seconds so far of each PostgreSQL backend serving these replicas (their pools
        and LISTEN connections), read from ``/proc``; None when the server is not local."""
        rows = await self.kernels[0].db.fetch(
            "SELECT pid FROM pg_stat_activity "
            "WHERE application_name = $1 OR starts_with(application_name, $2)",
            f"lark_scheduler:{self.schema}",
            f"lark_scheduler_listen:{self.schema}:",
        )
        return _proc_cpu([row["pid"] for row in rows])

    async def stop(self) -> None:
        try:
            for k in self.kernels:
                await k.shutdown(wait=False)
        finally:
            await self.kernels[0].db.drop()

    def add_interval(self, key: int, period: float, first: float, last: float | None) -> None:
        end = None if last is None else self.tb.dt(last + period / 2)
        for k in self.kernels:
            k.add_interval_job(
                job,
                seconds=period,
                start_date=self.tb.dt(first),
                end_date=end,
                args=(key,),
                job_id=job_id(key),
            )

    def add_cron(self, key: int, expr: str) -> None:
        for k in self.kernels:
            k.add_cron_job(job, cron_expression=expr, args=(key,), job_id=job_id(key))

    def add_date(self, key: int, at: float) -> None:
        for k in self.kernels:
            k.add_date_job(job, run_date=self.tb.dt(at), args=(key,), job_id=job_id(key))

    def remove(self, key: int) -> None:
        for k in self.kernels:
            k.remove_job(job_id(key))

    def reschedule_interval(self, key: int, period: float, first: float) -> None:
        from kernel.triggers import IntervalTrigger

        for k in self.kernels:
            k.reschedule_job(
                job_id(key), IntervalTrigger(seconds=period, start_date=self.tb.dt(first))
            )


def _proc_cpu(pids: list[int]) -> dict[int, float] | None:
    """User + system CPU seconds of each process, from ``/proc/<pid>/stat``; None if one
    cannot be read (a server on another machine)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        out[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out or None


class PgKernel1Engine(PgKernelEngine):
    """One replica."""

    replicas = 1


class PgKernel3Engine(PgKernelEngine):
    """Three replicas."""

    replicas = 3
