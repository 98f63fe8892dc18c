"""One scheduler replica for the cluster fault tests (run as a subprocess).

``python -m tests.cluster_replica_main DSN SCHEMA NAME LEASE``: a PersistentKernel on
SCHEMA with two jobs every second:

* ``work`` runs 0.8 s (max_instances 3, so a retry is not refused by the next run; no
  coalescing, grace 30 s) and is retried once after 0.5 s
  (``RetryPolicy(max_attempts=2, backoff=0.5)``);
* ``tick`` is instant (max_instances 1, no coalescing, grace 30 s), never retried.

Each run writes a ``start`` row into ``ran`` as it begins and an ``end`` row when it is
done (job, scheduled time, replica, run id, attempt, fencing token, and the database's
``now()``). Both writes are *fenced*: they are made only while the run's claim still
holds its token and is running, which is how a job makes a side effect in the same
database exactly once. SIGTERM shuts the replica down gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import asyncpg

from kernel.coordination import current_run
from kernel.distributed.persistent import PersistentKernel
from kernel.retry import RetryPolicy

NAME = ""
POOL: asyncpg.Pool | None = None

FENCED_WRITE = (
    "INSERT INTO ran (job_id, scheduled_at, replica, run_id, attempt, token, phase, db_at) "
    "SELECT $1, $2, $3, $4, $5, $6, $7, now() WHERE EXISTS (SELECT 1 FROM claims "
    "WHERE job_id = $1 AND scheduled_at = $2 AND token = $6 AND state = 'running')"
)


async def body(seconds: float) -> None:
    run = current_run.get()
    assert run is not None
    assert POOL is not None
    args = (run.job_id, run.scheduled_at, NAME, run.run_id, run.attempt, run.token)
    await POOL.execute(FENCED_WRITE, *args, "start")
    await asyncio.sleep(seconds)
    await POOL.execute(FENCED_WRITE, *args, "end")


async def main(dsn: str, schema: str, name: str, lease: float) -> None:
    global NAME, POOL
    NAME = name
    POOL = await asyncpg.create_pool(dsn, min_size=1, max_size=3,
                                     server_settings={"search_path": schema})
    kernel = PersistentKernel(dsn, schema=schema, replica_id=name, lease=lease)
    kernel.add_interval_job(body, seconds=1, job_id="work", args=[0.8], coalesce=False,
                            max_instances=3, misfire_grace_time=30,
                            retry=RetryPolicy(max_attempts=2, backoff=0.5, jitter=0.0))
    kernel.add_interval_job(body, seconds=1, job_id="tick", args=[0.0], coalesce=False,
                            max_instances=1, misfire_grace_time=30)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with kernel:
        print("started", flush=True)
        await stop.wait()
    await POOL.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
