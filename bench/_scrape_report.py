"""The ``steady-scrape`` table: each figure as the median of the repetitions, with the spread.

Issue 17's targets, read per engine and N from those medians: p99 lateness of the fires in
scraped blocks at most 2 ms above that of the quiet blocks of the same runs; the longest
loop stall while a scrape is in flight at most 10 ms of CPU, not counting the cyclic
garbage collector's passes in it (a pass runs wherever an allocation crosses its threshold
and costs what the whole heap costs; the same stall in quiet seconds is shown for
comparison, and so are the figures with GC and in wall time, which on this shared machine
also holds the time other processes had the core); at most 2,048 bytes of exposition per
job.
"""

from __future__ import annotations

from statistics import median
from typing import Any

__all__ = ("TARGETS", "scrape_lines")

P99_DELTA_MS = 2.0
STALL_MS = 10.0
BYTES_PER_JOB = 2048
TARGETS = (
    f"p99 with scrapes <= p99 without + {P99_DELTA_MS:g} ms, loop stall per scrape "
    f"<= {STALL_MS:g} ms of CPU besides GC, <= {BYTES_PER_JOB:,} bytes per job"
)


def _get(m: dict[str, Any], *path: str) -> float | None:
    value: Any = m
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, int | float) else None


def _spread(values: list[float | None], fmt: str = "{:.2f}") -> tuple[str, float | None]:
    """``median [min-max]`` of the values present, and the median."""
    present = [v for v in values if v is not None]
    if not present:
        return "-", None
    mid = median(present)
    if len(present) == 1:
        return fmt.format(mid), mid
    return f"{fmt.format(mid)} [{fmt.format(min(present))}-{fmt.format(max(present))}]", mid


def _delta(m: dict[str, Any], kind: str = "") -> float | None:
    scraped = _get(m, f"lateness_scraped{kind}_ms", "p99")
    quiet = _get(m, f"lateness_quiet{kind}_ms", "p99")
    return None if scraped is None or quiet is None else scraped - quiet


def _fires(ms: list[dict[str, Any]]) -> str:
    run = sum(m.get("fires_executed", 0) for m in ms)
    planned = sum(m.get("fires_expected", 0) for m in ms)
    text = f"{run:,}/{planned:,}"
    if run < planned:
        text += f" **MISSED {planned - run:,}**"
    return text


def _verdict(delta: float | None, stall: float | None, per_job: float | None) -> str:
    if delta is None or stall is None or per_job is None:
        return "not measured"
    missed = [
        name
        for name, ok in (
            ("p99", delta <= P99_DELTA_MS),
            ("stall", stall <= STALL_MS),
            ("bytes", per_job <= BYTES_PER_JOB),
        )
        if not ok
    ]
    return "**met**" if not missed else f"**missed** ({', '.join(missed)})"


def _full_gc(ms: list[dict[str, Any]]) -> str:
    """Full collections over the runs, in quiet and in scraped blocks, with the longest."""
    if not all("gc_full_passes_ms" in m for m in ms):
        return "-"
    quiet = [x for m in ms for x in m["gc_full_passes_ms"]["quiet"]]
    scraped = [x for m in ms for x in m["gc_full_passes_ms"]["scraped"]]
    longest = max(quiet + scraped, default=0.0)
    return f"{len(quiet)} / {len(scraped)}" + (f" ({longest:.0f})" if longest else "")


def scrape_lines(runs: list[dict[str, Any]]) -> list[str]:
    """The markdown table of the ``steady-scrape`` runs (grouped by engine and N)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    failed: list[str] = []
    for r in runs:
        if r["status"] == "ok":
            groups.setdefault((r["engine"], r["n"]), []).append(r["metrics"])
        else:
            status = r["status"].upper()
            failed.append(f"- {r['engine']} N={r['n']:,}: **{status}** {r.get('reason', '')}")
    headers = [
        "engine", "N", "runs", "fires run/planned", "p99 quiet ms", "p99 scraped ms",
        "p99 scraped - quiet ms", "the same in blocks without a full GC pass",
        "max loop stall per scrape ms: CPU besides GC", "CPU",
        "wall", "the same in a quiet second: CPU besides GC", "CPU", "wall",
        "scrape wall ms", "bytes/job", "CPU s/1k fires",
        "full GC passes quiet / scraped (max ms)", "load 1m", "target",
    ]
    rows = []
    for (engine, n), ms in groups.items():
        delta, d = _spread([_delta(m) for m in ms])
        stall, s = _spread([_get(m, "loop_stall_cpu_without_gc_per_scrape_ms", "max") for m in ms])
        per_job, b = _spread([_get(m, "exposition_bytes_per_job") for m in ms], "{:,.0f}")
        loads = [x for m in ms for x in m.get("loadavg_1m") or [] if x is not None]

        def worst(key: str, ms: list[dict[str, Any]] = ms) -> str:
            return _spread([_get(m, key, "max") for m in ms])[0]

        rows.append([
            engine,
            f"{n:,}",
            str(len(ms)),
            _fires(ms),
            _spread([_get(m, "lateness_quiet_ms", "p99") for m in ms])[0],
            _spread([_get(m, "lateness_scraped_ms", "p99") for m in ms])[0],
            delta,
            _spread([_delta(m, "_without_full_gc") for m in ms])[0],
            stall,
            worst("loop_stall_cpu_per_scrape_ms"),
            worst("loop_stall_per_scrape_ms"),
            worst("loop_stall_cpu_without_gc_quiet_second_ms"),
            worst("loop_stall_cpu_quiet_second_ms"),
            worst("loop_stall_quiet_second_ms"),
            _spread([_get(m, "scrape_wall_ms", "median") for m in ms], "{:.0f}")[0],
            per_job,
            _spread([_get(m, "cpu_s_per_1k_fires") for m in ms], "{:.4f}")[0],
            _full_gc(ms),
            f"{min(loads):.2f}-{max(loads):.2f}" if loads else "-",
            _verdict(d, s, b),
        ])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += [
        "",
        "Each cell: median over the runs [min-max]. Per run: p99 lateness of the fires "
        "planned in quiet blocks and in scraped blocks, and their difference, also counting "
        "only the blocks in which (or up to 0.2 s before which) the garbage collector ran no "
        "full pass (a run with no such block of one kind has no figure); the longest loop "
        "iteration while a scrape was in flight, max over the run's scrapes: CPU of the "
        "loop's thread without and with the garbage collector's passes in it, and wall time, "
        "which adds what other processes took; the same for the quiet seconds; the median "
        "scrape's wall time and its bytes per job; the cyclic garbage collector's full passes"
        " (generation 2) of all the runs, in quiet and in scraped blocks, and the longest "
        "one's CPU. Target: " + TARGETS + ".",
    ]
    if failed:
        lines += ["", *failed]
    return lines
