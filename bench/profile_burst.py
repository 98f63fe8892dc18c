"""Profile the ``burst`` scenario: where the time between the instant and the last start goes.

``PYTHONPATH=. python -m bench.profile_burst [--n 100000] [--engine kernel] [--top 25]``

N one-shot jobs due at one instant are added to a fresh engine (as ``burst`` does), then
cProfile runs from just before that instant until every body has started; the top of the
profile (by own time, then by cumulative time) is printed with the time until the last
start. ``--engine kernel-baseline`` (with ``BENCH_BASELINE_TREE``) profiles another checkout,
``--engine floor`` the event loop's own floor. The profiler slows everything down (about
2x), so read the shares, not the absolute times; ``python -m bench --scenarios burst`` is
the measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import time

from bench._body import recorder
from bench._context import CALIBRATION_KEY
from bench._engines import ENGINES
from bench._measure import TimeBase, settle, sleep_until

__all__ = ("main",)


async def _burst(engine_name: str, n: int, profiler: cProfile.Profile | None) -> float:
    tb = TimeBase()
    engine = ENGINES[engine_name].build(tb)
    await engine.start()
    try:
        for i in range(200):  # warm every path once, as the bench's calibration does
            engine.add_date(CALIBRATION_KEY + i, time.monotonic() + 7200)
        for i in range(200):
            engine.remove(CALIBRATION_KEY + i)
        t0 = time.perf_counter()
        at = time.monotonic() + 3600  # placeholder, replaced below once adds are timed
        for key in range(min(n, 1000)):
            engine.add_date(key, at)
        per_job = (time.perf_counter() - t0) / min(n, 1000)
        at = time.monotonic() + 0.5 + 3 * per_job * n
        for key in range(min(n, 1000)):
            engine.remove(key)
        await settle()
        for key in range(n):
            engine.add_date(key, at)
        await settle()
        done = recorder.expect(len(recorder.times) + n)
        await sleep_until(at - 0.02)
        if profiler is not None:
            profiler.enable()
        await asyncio.wait_for(done, 120)
        if profiler is not None:
            profiler.disable()
        return max(recorder.times) - at
    finally:
        await engine.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_burst", description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="jobs due at once (100000)")
    parser.add_argument("--engine", default="kernel", choices=sorted(ENGINES))
    parser.add_argument("--top", type=int, default=25, help="rows of each table (25)")
    parser.add_argument("--no-profile", action="store_true",
                        help="only time the burst (no profiler overhead)")
    args = parser.parse_args(argv)
    reason = ENGINES[args.engine].probe()
    if reason is not None:
        parser.error(f"engine {args.engine} unavailable: {reason}")
    profiler = None if args.no_profile else cProfile.Profile()
    last = asyncio.run(_burst(args.engine, args.n, profiler))
    load = os.getloadavg()[0]
    print(f"{args.engine}: last of {args.n:,} starts {last * 1000:.0f} ms after the instant"
          f"{' (profiled)' if profiler else ''}; load average {load:.2f}")
    if profiler is not None:
        for key in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(key).print_stats(args.top)
            print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
