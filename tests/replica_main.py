"""One scheduler replica for the multi-replica test (run as a subprocess).

``python -m tests.replica_main DSN SCHEMA NAME``: a PersistentKernel on SCHEMA (lease 2 s)
with two jobs every second: ``slow`` (runs 0.6 s; coalesce, grace 30 s) and ``strict``
(instant; no coalescing, grace 1.5 s), both max_instances 1. Each run writes a ``start``
row into ``ran`` as it begins and an ``end`` row when it is done, with its job, scheduled
time and this replica's name. SIGTERM shuts the replica down gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import asyncpg

from kernel.coordination import current_run
from kernel.distributed.persistent import PersistentKernel

NAME = ""
POOL: asyncpg.Pool | None = None


async def tick(seconds: float) -> None:
    run = current_run.get()
    assert run is not None
    assert POOL is not None
    sql = "INSERT INTO ran (job_id, scheduled_at, replica, phase) VALUES ($1, $2, $3, $4)"
    await POOL.execute(sql, run.job_id, run.scheduled_at, NAME, "start")
    await asyncio.sleep(seconds)
    await POOL.execute(sql, run.job_id, run.scheduled_at, NAME, "end")


async def main(dsn: str, schema: str, name: str) -> None:
    global NAME, POOL
    NAME = name
    POOL = await asyncpg.create_pool(dsn, min_size=1, max_size=2,
                                     server_settings={"search_path": schema})
    kernel = PersistentKernel(dsn, schema=schema, replica_id=name, lease=2.0)
    kernel.add_interval_job(tick, seconds=1, job_id="slow", args=[0.6], coalesce=True,
                            max_instances=1, misfire_grace_time=30)
    kernel.add_interval_job(tick, seconds=1, job_id="strict", args=[0.0], coalesce=False,
                            max_instances=1, misfire_grace_time=1.5)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with kernel:
        print("started", flush=True)
        await stop.wait()
    await POOL.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
