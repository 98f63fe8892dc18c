"""The ``pg-store`` scenario (issue 7): steady interval jobs with the PostgreSQL job store.

N interval jobs every second (phases spread over the second, about N fires/s), each firing
``duration`` times, on 1 or 3 :class:`PersistentKernel` replicas sharing one fresh schema
(``bench._engines.kernel_pg``). Every replica declares all N jobs; each job's owner among
the live replicas claims its times (the claims of one timer tick in one statement) and
runs the body. Fires are matched to the plan as in ``steady``:
a scheduled time that ran on two replicas is an **extra** fire (a failure), one that no
replica ran within the drain is **missed**. Lateness here includes the claim: the body
starts only after the claim's round trip (``claim_fenced``).
"""

from __future__ import annotations

import time
from array import array
from typing import Any

from bench._body import recorder
from bench._context import Ctx, overran, wait_window
from bench._engines import Unsupported
from bench._measure import match_fires, summarize

__all__ = ("pg_store",)

PERIOD = 1.0
# Set-up allowance per job and replica (declare, store or compare at start), measured on the
# 2-core bench machine at about 1 ms; twice that, plus a fixed second for pools and LISTEN.
SETUP_PER_JOB_REPLICA = 2e-3
SETUP_FIXED = 1.0


async def pg_store(ctx: Ctx) -> dict[str, Any]:
    """Steady load on PostgreSQL-backed replicas; adds fires/s achieved, claims per replica
    and, when the server runs on this machine, its backends' CPU."""
    e: Any = ctx.engine
    if not hasattr(e, "launch"):
        raise Unsupported(
            "pg-store needs a PostgreSQL-backed engine (kernel-pg1, kernel-pg3, kernel-pg3p)")
    n, replicas = ctx.n, e.replicas
    setup_fixed = getattr(e, "setup_fixed", SETUP_FIXED)
    count = max(1, round(ctx.duration / PERIOD))
    t0 = time.monotonic() + ctx.lead + setup_fixed + SETUP_PER_JOB_REPLICA * n * replicas
    first = array("d", (t0 + i * PERIOD / n for i in range(n)))
    last_offset = (count - 1) * PERIOD
    s0 = time.perf_counter()
    for k in range(n):
        e.add_interval(k, PERIOD, first[k], first[k] + last_offset)
    await e.launch()
    setup_s = time.perf_counter() - s0
    metrics: dict[str, Any] = {
        "replicas": replicas,
        "rate_per_s": n / PERIOD,
        "setup_s": setup_s,
    }
    overran(ctx, t0, metrics)
    end = t0 + count * PERIOD
    cutoff = end + ctx.drain
    replica_cpu = getattr(e, "replica_cpu", None)
    server0 = await e.server_cpu()
    procs0 = None if replica_cpu is None else await replica_cpu()
    used, m, fires = await wait_window(t0, n * count, cutoff)
    procs1 = None if replica_cpu is None else await replica_cpu()
    server1 = await e.server_cpu()
    keys, times = recorder.keys[:m], recorder.times[:m]
    match = match_fires(keys, times, first, PERIOD, count, cutoff)
    metrics.update(summarize(match))
    metrics["cpu_s"] = used.cpu
    if procs0 is not None and procs1 is not None:
        # Replicas in processes of their own: their CPU, not this collecting process's.
        metrics["harness_cpu_s"] = used.cpu
        metrics["cpu_s"] = procs1 - procs0
    metrics["wall_s"] = used.wall
    metrics["cpu_s_per_1k_fires"] = metrics["cpu_s"] / fires * 1000 if fires else None
    # Achieved rate: executed fires over the span they took (never shorter than planned).
    last_start = max(times) if len(times) else t0
    span = max(count * PERIOD, last_start - t0)
    metrics["fires_per_s_achieved"] = match.executed / span
    metrics["claims_per_replica"] = await e.claims_per_replica()
    if server0 is not None and server1 is not None:
        # A backend opened during the window counts from zero: all its CPU is the window's.
        server = sum(cpu - server0.get(pid, 0.0) for pid, cpu in server1.items())
        metrics["server_cpu_s"] = server
        metrics["server_cpu_s_per_1k_fires"] = server / fires * 1000 if fires else None
    return metrics
