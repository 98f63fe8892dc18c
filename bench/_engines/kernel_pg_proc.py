"""``kernel-pg3p``: 3 ``PersistentKernel`` replicas, each in a process of its own.

As ``kernel-pg3`` (one fresh schema ``bench_<random>``, dropped by ``stop()``; every
replica declares the same jobs; each job's owner claims its times), but each replica is
a ``bench._pg_replica`` subprocess with its own interpreter and event loop, as replicas
of a deployment run. ``start()`` spawns them (they import and wait); ``launch()`` sends
them the declared jobs and waits until each has started. Their body starts come back
over a pipe into this process's recorder (the monotonic clock is the machine's, so
lateness is measured as in-process), with each replica's CPU seconds, so the scenario
reports replica CPU (the 3 processes, not this one) per fire.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from bench._body import recorder
from bench._engines.kernel_pg import DSN, _proc_cpu, probe
from bench._measure import TimeBase

__all__ = ("PgKernel3ProcEngine", "probe")

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class PgKernel3ProcEngine:
    """Three replica processes sharing one fresh schema; see the module doc."""

    replicas = 3
    setup_fixed = 3.0  # seconds: every replica opens its pool, LISTEN and heartbeat

    def __init__(self, tb: TimeBase) -> None:
        self.tb = tb
        self.schema = f"bench_{os.urandom(5).hex()}"
        self.jobs: dict[int, tuple[int, float, float, float | None]] = {}
        self.procs: list[asyncio.subprocess.Process] = []
        self.cpu: dict[int, float] = {}
        self._readers: list[asyncio.Task[None]] = []
        self._ready: list[asyncio.Future[None]] = []
        self._conn: Any = None

    async def start(self) -> None:
        """Spawn the replica processes; they wait for the jobs on stdin."""
        import asyncpg

        self._conn = await asyncpg.connect(DSN, timeout=10,
                                           server_settings={"application_name": "bench"})
        env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        loop = asyncio.get_running_loop()
        for i in range(self.replicas):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from bench._pg_replica import main; main()",
                DSN, self.schema, f"bench-{i}",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
            )
            self.procs.append(proc)
            ready = loop.create_future()
            self._ready.append(ready)
            self._readers.append(loop.create_task(self._read(proc, ready)))

    async def _read(self, proc: asyncio.subprocess.Process, ready: asyncio.Future[None]) -> None:
        from bench._pg_replica import CPU, READY, RECORD

        assert proc.stdout is not None
        size = RECORD.size
        keys, times = recorder.keys, recorder.times
        buf = b""
        while True:
            chunk = await proc.stdout.read(1 << 16)
            if not chunk:
                break
            buf += chunk
            whole = len(buf) - len(buf) % size
            for key, t in RECORD.iter_unpack(buf[:whole]):
                if key >= 0:
                    keys.append(key)
                    times.append(t)
                elif key == READY:
                    ready.set_result(None)
                elif key == CPU:
                    self.cpu[proc.pid] = t
            buf = buf[whole:]
            if len(times) >= recorder.target >= 0:
                recorder._reached()
        if not ready.done():
            code = await proc.wait()
            ready.set_exception(RuntimeError(
                f"replica process {proc.pid} ended before it started (exit {code})"))

    async def launch(self) -> None:
        """Send every replica the declared jobs; wait until all have started."""
        spec = json.dumps([[k, p, self.tb.wall(f), None if last is None else self.tb.wall(last)]
                           for k, p, f, last in self.jobs.values()]).encode() + b"\n"
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(spec)
            await proc.stdin.drain()
        await asyncio.gather(*self._ready)

    async def replica_cpu(self) -> float | None:
        """CPU seconds so far of the replica processes (read from ``/proc``)."""
        cpu = _proc_cpu([p.pid for p in self.procs if p.returncode is None])
        return None if cpu is None else sum(cpu.values())

    async def claims_per_replica(self) -> dict[str, int]:
        rows = await self._conn.fetch(
            f'SELECT replica, count(*) AS n FROM "{self.schema}".claims '
            "GROUP BY replica ORDER BY replica")
        return {r["replica"]: r["n"] for r in rows}

    async def server_cpu(self) -> dict[int, float] | None:
        """As ``kernel-pg3``: CPU seconds of the backends serving the replicas."""
        rows = await self._conn.fetch(
            "SELECT pid FROM pg_stat_activity "
            "WHERE application_name = $1 OR starts_with(application_name, $2)",
            f"lark_scheduler:{self.schema}", f"lark_scheduler_listen:{self.schema}:",
        )
        return _proc_cpu([row["pid"] for row in rows])

    async def stop(self) -> None:
        try:
            for proc in self.procs:
                if proc.stdin is not None:
                    proc.stdin.close()
            for proc in self.procs:
                try:
                    await asyncio.wait_for(proc.wait(), 20)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            await asyncio.gather(*self._readers, return_exceptions=True)
        finally:
            if self._conn is not None:
                await self._conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
                await self._conn.close()

    def add_interval(self, key: int, period: float, first: float, last: float | None) -> None:
        self.jobs[key] = (key, period, first, None if last is None else last + period / 2)

    def add_cron(self, key: int, expr: str) -> None:
        raise NotImplementedError("kernel-pg3p runs interval jobs only (pg-store)")

    def add_date(self, key: int, at: float) -> None:
        raise NotImplementedError("kernel-pg3p runs interval jobs only (pg-store)")

    def remove(self, key: int) -> None:
        self.jobs.pop(key, None)

    def reschedule_interval(self, key: int, period: float, first: float) -> None:
        raise NotImplementedError("kernel-pg3p runs interval jobs only (pg-store)")
