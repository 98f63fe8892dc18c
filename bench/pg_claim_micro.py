"""PostgreSQL CPU per fire of the claims path alone (issue 13, latest/pg-cluster.md).

``PYTHONPATH=. python bench/pg_claim_micro.py [N] [SECONDS] [BATCH]``: on a fresh schema with N
stored jobs (default 2,000), one :class:`~kernel.distributed.postgres.PostgresCoordinator`
claims every job's time for SECONDS consecutive seconds (default 20; the times lie in the
past, so the database's clock grants them at once) in batches of BATCH requests (default N / 10;
a replica's timer tick brings the jobs due in it), and stores each batch's outcomes with
``finish_many``, as a replica does per turn of its loop. It prints the PostgreSQL backend
CPU (``/proc``) and the client's CPU per fire, and checks that every time was won once.
No scheduler runs: this isolates the statements' own cost from the replicas' loops.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
from datetime import UTC, datetime, timedelta

from kernel.coordination import ClaimRequest, FinishRequest
from kernel.distributed._pg import Database
from kernel.distributed.postgres import PostgresCoordinator

DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main(n: int = 2000, seconds: int = 20, batch: int = 0) -> None:
    db = Database(DSN, schema=f"bench_{os.urandom(5).hex()}", pool_size=1)
    await db.open()
    try:
        await db.execute(
            "INSERT INTO jobs (id, name, func_ref, args, kwargs, trigger, options) "
            "SELECT 'job-' || i, 'job-' || i, 'bench.pg_claim_micro:tick', '[1]', '{}', "
            "'{\"kind\": \"interval\", \"seconds\": 1.0}', "
            "'{\"coalesce\": false, \"max_instances\": 1000, \"misfire_grace_time\": 3600}' "
            "FROM generate_series(0, $1 - 1) AS i", n)
        coord = PostgresCoordinator(db, replica_id="micro")
        pid = await db.fetchval("SELECT pg_backend_pid()")
        base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        batch = batch or max(1, n // 10)
        server0, client0 = _proc_cpu(pid), _cpu()
        wall0 = time.perf_counter()
        won = 0
        for s in range(seconds):
            at = base + timedelta(seconds=s)
            for lo in range(0, n, batch):
                reqs = [ClaimRequest(f"job-{i}", at, f"r{s}-{i}", 1000)
                        for i in range(lo, min(n, lo + batch))]
                claims = await coord.claim_many(reqs)
                fin = [FinishRequest(r.job_id, r.scheduled_at, r.run_id, "succeeded", c.token)
                       for r, c in zip(reqs, claims, strict=True) if c.verdict == "won"]
                won += len(fin)
                done = await coord.finish_many(fin)
                assert all(done)
        wall = time.perf_counter() - wall0
        server, client = _proc_cpu(pid) - server0, _cpu() - client0
        fires = n * seconds
        assert won == fires, (won, fires)
        rows = await db.fetchval("SELECT count(*) FROM claims WHERE state = 'succeeded'")
        assert rows == fires, (rows, fires)
        print(f"{fires} fires in {wall:.1f} s ({fires / wall:,.0f}/s): PostgreSQL "
              f"{server / fires * 1e6:.1f} us/fire, client {client / fires * 1e6:.1f} us/fire, "
              f"load {os.getloadavg()[0]:.2f}")
    finally:
        await db.close()
        await db.drop()


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    asyncio.run(main(*args))
