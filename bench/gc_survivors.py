"""What each fire leaves to the garbage collector's oldest generation (issue 17).

N interval jobs every second (phases spread: N fires/s) on the bench's kernel engine,
optionally with ``/metrics`` and the console attached (``--metrics``: the steady-scrape
set-up). After a warm-up in which every job ran twice, everything alive is frozen
(``gc.freeze()``); over the window the collector's passes are counted per generation
(``gc.callbacks``), and at its end the objects that reached generation 2 meanwhile are
counted by type: what each fire made that lived through two young collections.

    PYTHONPATH=. python -m bench.gc_survivors --n 10000 --window 5 --metrics

Diagnostic only: it changes the process's GC state (freeze) for its own measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import time
from typing import Any

from bench._engines.kernel import KernelEngine
from bench._measure import TimeBase


async def measure(n: int, window: float, metrics: bool) -> None:
    engine = KernelEngine(TimeBase())
    await engine.start()
    if metrics:
        await engine.serve_metrics()
    t0 = time.monotonic() + 1.0
    for k in range(n):
        engine.add_interval(k, 1.0, t0 + k / n, None)
    await asyncio.sleep(3.0)  # every job ran twice: its steady-state objects exist
    gc.collect()
    gc.freeze()
    passes: collections.Counter[int] = collections.Counter()
    spent: collections.Counter[int] = collections.Counter()
    began: dict[int, float] = {}

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        gen = info["generation"]
        if phase == "start":
            began[gen] = time.process_time()
        else:
            passes[gen] += 1
            spent[gen] += time.process_time() - began[gen]

    gc.callbacks.append(on_gc)
    cpu0 = time.process_time()
    try:
        await asyncio.sleep(window)
    finally:
        gc.callbacks.remove(on_gc)
    cpu = time.process_time() - cpu0
    old = gc.get_objects(generation=2)
    fires = n * window
    by_type = collections.Counter(type(o).__qualname__ for o in old)
    del old
    print(f"N={n} metrics+console={metrics}: {window:g} s window, ~{fires:,.0f} fires, "
          f"CPU {cpu:.2f} s")
    print("GC passes per generation: "
          + ", ".join(f"gen {g}: {passes[g]} ({spent[g] * 1000:.0f} ms)" for g in sorted(passes)))
    total = sum(by_type.values())
    print(f"objects that reached generation 2 in the window: {total:,} "
          f"({total / fires:.3f} per fire)")
    for name, count in by_type.most_common(10):
        print(f"  {count:9,} {count / fires:.3f}/fire  {name}")
    gc.unfreeze()
    await engine.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="jobs, each every second")
    p.add_argument("--window", type=float, default=5.0, help="seconds measured")
    p.add_argument("--metrics", action="store_true", help="attach /metrics and the console")
    args = p.parse_args()
    asyncio.run(measure(args.n, args.window, args.metrics))


if __name__ == "__main__":
    main()
