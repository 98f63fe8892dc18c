"""Time for a replica to start firing with 5,000 stored jobs (issue 13, latest/pg-cluster.md).

``PYTHONPATH=. python bench/pg_start_5k.py``: a first replica stores 5,000 interval jobs
(every 10 s) and stops; their last decided time is moved 13 s back, so each has a time to
catch up; a second replica declaring the same jobs starts, and the script prints when
``start()`` returned and when the first and the 5,000th run began. Uses a fresh schema on
``$BENCH_POSTGRES_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``), dropped.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

from kernel.distributed._pg import Database
from kernel.distributed.persistent import PersistentKernel

DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
N = 5000
FIRED: list[float] = []
ALL_FIRED = asyncio.Event()


async def tick(i: int) -> None:
    FIRED.append(time.monotonic())
    if len(FIRED) >= N:
        ALL_FIRED.set()


def replica(schema: str, name: str, anchor: datetime) -> PersistentKernel:
    kernel = PersistentKernel(DSN, schema=schema, replica_id=name, lease=5)
    for i in range(N):
        kernel.add_interval_job(tick, seconds=10, args=[i], job_id=f"job-{i}",
                                start_date=anchor)
    return kernel


async def main() -> None:
    schema = "bench_start_" + os.urandom(4).hex()
    anchor = datetime.now(UTC) - timedelta(seconds=100.5)
    first = replica(schema, "seed", anchor)
    t = time.monotonic()
    await first.start()
    print(f"seed replica (declares and stores {N:,}): started in {time.monotonic() - t:.2f} s")
    await first.shutdown(wait=False)
    db = Database(DSN, schema=schema)
    await db.open()
    try:
        await db.execute("UPDATE jobs SET last_fire = now() - interval '13 seconds'")
        FIRED.clear()
        second = replica(schema, "r2", anchor)
        t = time.monotonic()
        await second.start()
        started = time.monotonic() - t
        try:
            await asyncio.wait_for(ALL_FIRED.wait(), 30)
        except TimeoutError:
            pass
        await second.shutdown(wait=False)
        if FIRED:
            print(f"second replica: start() returned in {started:.2f} s; first run "
                  f"{FIRED[0] - t:.2f} s after start, the {len(FIRED):,}th "
                  f"{FIRED[-1] - t:.2f} s after start")
        else:
            print(f"second replica: start() returned in {started:.2f} s; no run in 30 s")
    finally:
        await db.drop()
        await db.close()


if __name__ == "__main__":
    asyncio.run(main())
