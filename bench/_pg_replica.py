"""One ``PersistentKernel`` replica in a process of its own, for the ``kernel-pg3p`` engine.

``python -m bench._pg_replica DSN SCHEMA REPLICA_ID`` imports and waits for one JSON line
on stdin: the jobs to declare (``[[key, period, first, last], ...]``, POSIX timestamps).
It declares them, starts the replica (which stores or compares them on the shared
schema) and writes a ready record. From then on every body start is written to stdout
as a 16-byte record (``<qd``: the job's key, ``time.monotonic()`` at the start; the
monotonic clock is the machine's, shared by every process). Key ``-1`` is the ready
record, key ``-2`` carries this process's CPU seconds (user + system) and is written
every 0.5 s and at the end. Stdin closing stops the replica.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import struct
import sys
from datetime import UTC, datetime
from time import monotonic
from typing import Any

__all__ = ("RECORD", "main")

RECORD = struct.Struct("<qd")
READY = -1
CPU = -2

_pending = bytearray()


async def body(key: int) -> None:
    """The benchmark's job body, as ``bench._body.job``: note when this fire started."""
    _pending.extend(RECORD.pack(key, monotonic()))


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _run(dsn: str, schema: str, replica: str) -> None:
    from kernel import JobDefaults
    from kernel.distributed._pg import Database
    from kernel.distributed.persistent import PersistentKernel

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 28)  # the jobs line: ~50 bytes per job
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer
    kernel = PersistentKernel(
        db=Database(dsn, schema=schema), replica_id=replica, timezone="UTC",
        job_defaults=JobDefaults(coalesce=False, max_instances=1000, misfire_grace_time=3600),
    )
    calls = _count_calls(kernel._coordinator) if os.environ.get("BENCH_PG_CALLS") else None
    spec = json.loads(await reader.readline())
    for key, period, first, last in spec:
        kernel.add_interval_job(
            body, seconds=period, start_date=datetime.fromtimestamp(first, UTC),
            end_date=None if last is None else datetime.fromtimestamp(last, UTC),
            args=(key,), job_id=f"j{key}",
        )
    await kernel.start()
    out.write(RECORD.pack(READY, monotonic()))
    out.flush()

    async def flush_forever() -> None:
        beat = 0
        while True:
            await asyncio.sleep(0.02)
            beat += 1
            if beat % 25 == 0:
                _pending.extend(RECORD.pack(CPU, _cpu()))
            if _pending:
                out.write(_pending)
                _pending.clear()
                out.flush()

    flusher = loop.create_task(flush_forever())
    await reader.read()  # until stdin closes
    flusher.cancel()
    await kernel.shutdown(wait=False)
    if calls is not None:
        # Statements sent per kind, and the requests they carried (BENCH_PG_CALLS=dir).
        path = os.path.join(os.environ["BENCH_PG_CALLS"], f"{replica}.json")
        with open(path, "w") as f:  # noqa: ASYNC230 - at exit, nothing else runs
            json.dump(calls, f)
    _pending.extend(RECORD.pack(CPU, _cpu()))
    out.write(_pending)
    out.flush()


def _count_calls(coordinator: Any) -> dict[str, list[int]]:
    """Wrap the coordinator's statements: per method, [statements, requests carried]."""
    calls: dict[str, list[int]] = {}
    for name in ("claim", "claim_many", "claim_retry", "finish", "finish_many",
                 "settle_many", "mark"):
        method = getattr(coordinator, name)
        counts = calls[name] = [0, 0]

        async def counted(*args: Any, _method: Any = method, _counts: list[int] = counts,
                          **kwargs: Any) -> Any:
            _counts[0] += 1
            _counts[1] += sum(len(a) for a in args if isinstance(a, list)) or 1
            return await _method(*args, **kwargs)

        setattr(coordinator, name, counted)
    return calls


def main() -> None:
    dsn, schema, replica = sys.argv[1:4]
    asyncio.run(_run(dsn, schema, replica))


if __name__ == "__main__":
    main()
