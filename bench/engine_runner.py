"""Runs one scenario on one engine in this (fresh) process and writes the result as JSON.

``python -m bench.engine_runner '<json spec>' <result path>``; the parent (``bench._cli``)
starts one such process per scenario x engine x N so no run inherits another's heap,
caches or loop state.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench._context import Ctx
from bench._engines import ENGINES
from bench._measure import TimeBase, peak_rss
from bench._scenarios import SCENARIOS

__all__ = ("main", "run")


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec`` (engine, scenario, n, durations) on the running loop; return metrics."""
    engine_spec = ENGINES[spec["engine"]]
    scenario = SCENARIOS[spec["scenario"]]
    assert scenario.run is not None
    tb = TimeBase()
    engine = engine_spec.build(tb)
    await engine.start()
    ctx = Ctx(
        engine=engine,
        make_engine=lambda: engine_spec.build(tb),
        tb=tb,
        n=spec["n"],
        duration=spec["duration"],
        idle_duration=spec["idle_duration"],
        drain=spec["drain"],
        lead=spec["lead"],
    )
    try:
        metrics = await scenario.run(ctx)
    finally:
        await asyncio.wait_for(engine.stop(), 30)
    metrics["notes"] = ctx.notes
    return metrics


def _loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the subprocess: exit status 0 with a result file, 1 on error."""
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(args[0])
    out_path = args[1]
    started = time.monotonic()
    load_start = _loadavg()
    try:
        with asyncio.Runner(loop_factory=_loop_factory(ENGINES[spec["engine"]].loop)) as runner:
            metrics = runner.run(run(spec))
        result: dict[str, Any] = {"status": "ok", "metrics": metrics}
    except Exception as exc:
        result = {
            "status": "error",
            "reason": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    result.setdefault("metrics", {})
    result["metrics"]["peak_rss_bytes"] = peak_rss()
    result["metrics"]["run_wall_s"] = time.monotonic() - started
    # Other work on the machine shows up as lateness: keep the evidence with the numbers.
    result["metrics"]["loadavg_1m"] = [load_start, _loadavg()]
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
