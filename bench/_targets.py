"""The issues' targets as ratios between engines in the same run, each met, missed or not
measured, read on the medians of the repetitions (``--repeat``): each figure is the median
of its runs, a ratio is the ratio of two medians, and a fire missed in any run counts.

Issue 6 (the kernel against the floor and APScheduler 3). The kernel on asyncio is compared
with the floor on asyncio, the kernel on uvloop with the floor on uvloop; both with
APScheduler 3 on asyncio. How each target is read:

- steady CPU: CPU seconds per fire at the preferred N (10k fires/s) <= 1.5x the floor's;
- steady p99: p99 lateness <= the floor's + 1 ms, at the same N;
- highest rate: the largest tested N with no missed or extra fire and p99 < 10 ms must be
  >= half the floor's and >= 5x APScheduler 3's; missed only when the kernel failed at a
  tested N at or below that need, not measured when no tested N lies in between;
- burst: time until the last of N (10k) has started <= 2x the floor's;
- add: interval jobs registered per second >= 10x APScheduler 3's, at every N;
- cron sharing: cron jobs sharing one expression are added at >= half the rate of interval
  jobs (they do not each pay for croniter);
- idle wake-ups: voluntary context switches over the idle window <= the floor's + 2;
- idle CPU: CPU seconds over the idle window <= the floor's + 1 ms per idle second;
- memory: tracemalloc bytes per registered interval job <= 1024 and < APScheduler 3's.

Issue 17 (performance: a scrape must not stop the clock, the last gaps to the floor):

- burst 100k: the last of 100,000 simultaneous fires starts within 1.5x the floor's time;
- add rate: interval jobs registered per second >= 10x APScheduler 3's, at every N run;
- add-cron-distinct: cron jobs with distinct expressions registered at least as fast as
  APScheduler 3 registers them, at every N run;
- memory: <= 1,024 tracemalloc bytes per registered interval job at 1k, 10k and 100k;
- steady + scrape: p99 lateness of the fires in scraped blocks <= that of the quiet blocks
  of the same runs + 2 ms (the median over the runs of each run's difference), at every N;
- scrape loop block: the longest loop iteration while a scrape of 10,000 jobs is in flight
  <= 10 ms of CPU besides the garbage collector's passes (median over the runs of each
  run's longest), and <= 2,048 bytes of exposition per job;
- steady 10k/s: CPU per fire <= 1.5x the floor's and p99 lateness <= the floor's + 1 ms
  (issue 6's rule, which issue 17 keeps).
"""

from __future__ import annotations

from statistics import median
from typing import Any

__all__ = ("compute_targets", "issue17_targets", "runs_by_key")

PREFERRED_N = 10_000
P99_OK_MS = 10.0

# The successful runs' metrics of each (engine, scenario, N), in run order.
Runs = dict[tuple[str, str, int], list[dict[str, Any]]]
# Counts where one bad run is enough: the worst run, not the median, is reported.
_WORST = ("fires_missed", "fires_extra")


def runs_by_key(results: list[dict[str, Any]]) -> Runs:
    """The successful runs' metrics grouped by (engine, scenario, N)."""
    runs: Runs = {}
    for r in results:
        if r["status"] == "ok":
            runs.setdefault((r["engine"], r["scenario"], r["n"]), []).append(r["metrics"])
    return runs


def _leaf(m: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(m, dict):
            return None
        m = m.get(key)
    return m


def _values(runs: Runs, engine: str, scenario: str, n: int, *path: str) -> list[float]:
    return [
        v
        for m in runs.get((engine, scenario, n), [])
        if isinstance(v := _leaf(m, path), int | float) and not isinstance(v, bool)
    ]


def _metric(runs: Runs, engine: str, scenario: str, n: int, *path: str) -> Any:
    """The median over the runs (the worst run for missed and extra fires)."""
    values = _values(runs, engine, scenario, n, *path)
    if not values:
        return None
    return max(values) if path and path[-1] in _WORST else median(values)


def _spread_of(values: list[float], fmt: str) -> str:
    if len(values) < 2:
        return ""
    return f" [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def _txt(
    runs: Runs, engine: str, scenario: str, n: int, *path: str, fmt: str = "{:.2f}",
    scale: float = 1.0,
) -> str:
    """``median [min-max]`` of a figure over the runs, scaled."""
    values = [v * scale for v in _values(runs, engine, scenario, n, *path)]
    if not values:
        return "-"
    return fmt.format(median(values)) + _spread_of(values, fmt)


def _pick_n(runs: Runs, scenario: str, engines: tuple[str, ...]) -> int | None:
    ns = sorted(
        {n for (e, s, n) in runs if s == scenario and e == engines[0]}
        & {n for (e, s, n) in runs if s == scenario and e == engines[1]}
    )
    if not ns:
        return None
    return PREFERRED_N if PREFERRED_N in ns else ns[-1]


def _row(target: str, engine: str, measured: str, need: str, ok: bool | None) -> dict[str, Any]:
    status = "not measured" if ok is None else ("met" if ok else "missed")
    return {
        "target": target,
        "engine": engine,
        "measured": measured,
        "need": need,
        "status": status,
    }


def _clean(runs: Runs, engine: str, n: int) -> bool:
    p99 = _metric(runs, engine, "steady", n, "lateness_ms", "p99")
    return (
        _metric(runs, engine, "steady", n, "fires_missed") == 0
        and _metric(runs, engine, "steady", n, "fires_extra") == 0
        and p99 is not None
        and p99 < P99_OK_MS
    )


def _best_rate(runs: Runs, engine: str) -> int:
    return max(
        (n for (e, s, n) in runs if e == engine and s == "steady" and _clean(runs, e, n)), default=0
    )


def _steady(runs: Runs, k: str, floor: str, aps: str) -> list[dict[str, Any]]:
    rows = []
    n = _pick_n(runs, "steady", (k, floor))
    if n is not None:
        kc = _metric(runs, k, "steady", n, "cpu_s_per_1k_fires")
        fc = _metric(runs, floor, "steady", n, "cpu_s_per_1k_fires")
        missed = _metric(runs, k, "steady", n, "fires_missed")
        if kc is not None and fc:
            rows.append(
                _row(
                    f"steady {n}/s: CPU per fire vs {floor}",
                    k,
                    f"{kc:.4f} vs {fc:.4f} CPU-s/1k fires = {kc / fc:.2f}x",
                    "<= 1.5x, no missed fire",
                    kc / fc <= 1.5 and missed == 0,
                )
            )
        kp = _metric(runs, k, "steady", n, "lateness_ms", "p99")
        fp = _metric(runs, floor, "steady", n, "lateness_ms", "p99")
        if kp is not None and fp is not None:
            rows.append(
                _row(
                    f"steady {n}/s: p99 lateness vs {floor}",
                    k,
                    f"{kp:.2f} vs {fp:.2f} ms ({kp - fp:+.2f} ms)",
                    "<= floor + 1 ms",
                    kp - fp <= 1.0,
                )
            )
    tested = sorted({n for (e, s, n) in runs if s == "steady" and e == k})
    if tested:
        bk, bf, ba = _best_rate(runs, k), _best_rate(runs, floor), _best_rate(runs, aps)
        have_aps = any(e == aps and s == "steady" for (e, s, _) in runs)
        need_aps = 5 * ba if have_aps else 0
        need = max(bf / 2, need_aps)
        ok: bool | None = bk >= need
        if not ok and not any(bk < n <= need for n in tested):
            # No tested N lies between what the kernel reached and what it needs: the
            # grid cannot tell (run --scenarios steady --n with rates in between).
            ok = None
        detail = f"{k} {bk:,}/s, {floor} {bf:,}/s" + (f", {aps} {ba:,}/s" if have_aps else "")
        rows.append(
            _row(
                "highest clean steady rate (no miss, p99 < 10 ms)",
                k,
                detail,
                ">= floor/2" + (" and >= 5x apscheduler3" if have_aps else ""),
                ok,
            )
        )
    return rows


def _burst(runs: Runs, k: str, floor: str) -> list[dict[str, Any]]:
    n = _pick_n(runs, "burst", (k, floor))
    if n is None:
        return []
    kl = _metric(runs, k, "burst", n, "last_start_s")
    fl = _metric(runs, floor, "burst", n, "last_start_s")
    if kl is None or not fl:
        return []
    missed = _metric(runs, k, "burst", n, "fires_missed")
    return [
        _row(
            f"burst of {n}: last start vs {floor}",
            k,
            f"{kl * 1000:.1f} vs {fl * 1000:.1f} ms = {kl / fl:.2f}x",
            "<= 2x, none missed",
            kl / fl <= 2 and missed == 0,
        )
    ]


def _add(runs: Runs, k: str, aps: str) -> list[dict[str, Any]]:
    rows = []
    for n in sorted({n for (e, s, n) in runs if e == k and s == "add-interval"}):
        kr = _metric(runs, k, "add-interval", n, "add_rate_per_s")
        ar = _metric(runs, aps, "add-interval", n, "add_rate_per_s")
        if kr is not None and ar:
            rows.append(
                _row(
                    f"add {n} interval jobs vs {aps}",
                    k,
                    f"{kr:,.0f} vs {ar:,.0f} jobs/s = {kr / ar:.1f}x",
                    ">= 10x",
                    kr / ar >= 10,
                )
            )
        cs = _metric(runs, k, "add-cron-same", n, "add_rate_per_s")
        cd = _metric(runs, k, "add-cron-distinct", n, "add_rate_per_s")
        if kr is not None and cs is not None:
            extra = f" (distinct: {cd:,.0f}/s)" if cd is not None else ""
            rows.append(
                _row(
                    f"add {n} cron jobs sharing an expression",
                    k,
                    f"{cs:,.0f} vs interval {kr:,.0f} jobs/s{extra}",
                    ">= 0.5x interval rate",
                    cs >= 0.5 * kr,
                )
            )
        bk = _metric(runs, k, "add-interval", n, "bytes_per_job")
        ba = _metric(runs, aps, "add-interval", n, "bytes_per_job")
        if bk is not None:
            need = "<= 1024 B" + (" and < apscheduler3" if ba is not None else "")
            rows.append(
                _row(
                    f"memory per registered job, N={n}",
                    k,
                    f"{bk:,.0f} B" + (f" vs {aps} {ba:,.0f} B" if ba is not None else ""),
                    need,
                    bk <= 1024 and (ba is None or bk < ba),
                )
            )
    return rows


def _idle(runs: Runs, k: str, floor: str) -> list[dict[str, Any]]:
    rows = []
    for n in sorted({n for (e, s, n) in runs if e == k and s == "idle"}):
        if not runs.get((k, "idle", n)) or not runs.get((floor, "idle", n)):
            continue
        km = {key: _metric(runs, k, "idle", n, key) for key in ("wakeups", "idle_s", "cpu_s")}
        fm = {key: _metric(runs, floor, "idle", n, key) for key in ("wakeups", "idle_s", "cpu_s")}
        rows.append(
            _row(
                f"idle N={n}: wake-ups vs {floor}",
                k,
                f"{km['wakeups']:g} vs {fm['wakeups']:g} in {km['idle_s']:.1f} s",
                "<= floor + 2",
                km["wakeups"] <= fm["wakeups"] + 2,
            )
        )
        allowed = fm["cpu_s"] + 0.001 * km["idle_s"]
        rows.append(
            _row(
                f"idle N={n}: CPU vs {floor}",
                k,
                f"{km['cpu_s'] * 1000:.1f} vs {fm['cpu_s'] * 1000:.1f} ms",
                "<= floor + 1 ms per idle second",
                km["cpu_s"] <= allowed,
            )
        )
    return rows


def compute_targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Target rows for every kernel engine that ran, from the successful runs."""
    runs = runs_by_key(results)
    rows: list[dict[str, Any]] = []
    for k, floor in (("kernel", "floor"), ("kernel-uvloop", "floor-uvloop")):
        if not any(e == k for (e, _, _) in runs):
            continue
        rows += _steady(runs, k, floor, "apscheduler3")
        rows += _burst(runs, k, floor)
        rows += _add(runs, k, "apscheduler3")
        rows += _idle(runs, k, floor)
    return rows


# -- issue 17 ------------------------------------------------------------------------------

BURST_N = 100_000
BURST_RATIO = 1.5
MEMORY_NS = (1_000, 10_000, 100_000)
MEMORY_BYTES = 1024
SCRAPE_N = 10_000
SCRAPE_P99_DELTA_MS = 2.0
SCRAPE_STALL_MS = 10.0
SCRAPE_BYTES_PER_JOB = 2048
KERNEL, FLOOR, APS3 = "kernel", "floor", "apscheduler3"


def _ns(runs: Runs, engine: str, scenario: str) -> list[int]:
    return sorted({n for (e, s, n) in runs if e == engine and s == scenario})


def _i17_burst(runs: Runs) -> list[dict[str, Any]]:
    n = BURST_N
    k = _metric(runs, KERNEL, "burst", n, "last_start_s")
    f = _metric(runs, FLOOR, "burst", n, "last_start_s")
    target = f"burst of {n:,}: last start vs {FLOOR}"
    need = f"<= {BURST_RATIO:g}x, none missed"
    if k is None or not f:
        return [_row(target, KERNEL, "not run (kernel and floor at N=100k needed)", need, None)]
    missed = _metric(runs, KERNEL, "burst", n, "fires_missed")

    def ms(e: str) -> str:
        return _txt(runs, e, "burst", n, "last_start_s", fmt="{:,.0f}", scale=1000)

    aps = ""
    if runs.get((APS3, "burst", n)):
        aps = f", {APS3} {ms(APS3)} ms"
        aps_missed = _metric(runs, APS3, "burst", n, "fires_missed")
        if aps_missed:
            aps += f" ({aps_missed:,} fires of its worst run not started within the drain)"
    return [
        _row(
            target,
            KERNEL,
            f"{ms(KERNEL)} vs {ms(FLOOR)} ms = {k / f:.2f}x{aps}",
            need,
            k / f <= BURST_RATIO and missed == 0,
        )
    ]


def _i17_adds(runs: Runs) -> list[dict[str, Any]]:
    rows = []
    for scenario, need, factor in (
        ("add-interval", ">= 10x", 10.0),
        ("add-cron-distinct", ">= 1x", 1.0),
    ):
        ns = [n for n in _ns(runs, KERNEL, scenario) if runs.get((APS3, scenario, n))]
        if not ns:
            rows.append(
                _row(f"{scenario} vs {APS3}", KERNEL, "not run (kernel and apscheduler3)",
                     need, None)
            )
        for n in ns:
            k = _metric(runs, KERNEL, scenario, n, "add_rate_per_s")
            a = _metric(runs, APS3, scenario, n, "add_rate_per_s")
            if k is None or not a:
                continue

            def rate(e: str, n: int = n, scenario: str = scenario) -> str:
                return _txt(runs, e, scenario, n, "add_rate_per_s", fmt="{:,.0f}")

            floor = (
                f", {FLOOR} {rate(FLOOR)}" if runs.get((FLOOR, scenario, n)) else ""
            )
            rows.append(
                _row(
                    f"{scenario} N={n:,}: jobs/s vs {APS3}",
                    KERNEL,
                    f"{rate(KERNEL)} vs {rate(APS3)} = {k / a:.1f}x{floor}",
                    need,
                    k / a >= factor,
                )
            )
    return rows


def _i17_memory(runs: Runs) -> list[dict[str, Any]]:
    rows = []
    for n in MEMORY_NS:
        b = _metric(runs, KERNEL, "add-interval", n, "bytes_per_job")
        target = f"memory per registered job, N={n:,}"
        if b is None:
            rows.append(_row(target, KERNEL, "not run", f"<= {MEMORY_BYTES:,} B", None))
            continue
        others = "".join(
            f", {e} {_txt(runs, e, 'add-interval', n, 'bytes_per_job', fmt='{:,.0f}')} B"
            for e in (FLOOR, APS3)
            if runs.get((e, "add-interval", n))
        )
        rows.append(
            _row(
                target,
                KERNEL,
                f"{_txt(runs, KERNEL, 'add-interval', n, 'bytes_per_job', fmt='{:,.0f}')} B"
                + others,
                f"<= {MEMORY_BYTES:,} B",
                b <= MEMORY_BYTES,
            )
        )
    return rows


def _deltas(runs: Runs, n: int, kind: str = "") -> list[float]:
    """Per run: p99 of the scraped blocks minus p99 of the quiet blocks (``kind``
    ``"_without_full_gc"``: of the blocks without a full collection)."""
    out = []
    for m in runs.get((KERNEL, "steady-scrape", n), []):
        scraped = _leaf(m, (f"lateness_scraped{kind}_ms", "p99"))
        quiet = _leaf(m, (f"lateness_quiet{kind}_ms", "p99"))
        if isinstance(scraped, int | float) and isinstance(quiet, int | float):
            out.append(scraped - quiet)
    return out


def _i17_scrape(runs: Runs) -> list[dict[str, Any]]:
    rows = []
    ns = _ns(runs, KERNEL, "steady-scrape")
    need = f"<= quiet + {SCRAPE_P99_DELTA_MS:g} ms"
    if not ns:
        rows.append(_row("steady + scrape: p99 scraped vs quiet", KERNEL, "not run", need, None))
    for n in ns:
        deltas = _deltas(runs, n)
        if not deltas:
            continue
        d = median(deltas)
        quiet = _txt(runs, KERNEL, "steady-scrape", n, "lateness_quiet_ms", "p99")
        scraped = _txt(runs, KERNEL, "steady-scrape", n, "lateness_scraped_ms", "p99")
        clean = _deltas(runs, n, "_without_full_gc")
        besides = (
            f" (blocks without a full GC pass: {median(clean):+.2f}"
            f"{_spread_of(clean, '{:+.2f}')} ms)"
            if clean
            else ""
        )
        rows.append(
            _row(
                f"steady + scrape N={n:,}: p99 scraped vs quiet",
                KERNEL,
                f"{scraped} vs {quiet} ms: {d:+.2f}{_spread_of(deltas, '{:+.2f}')} ms{besides}",
                need,
                d <= SCRAPE_P99_DELTA_MS,
            )
        )
    n = SCRAPE_N
    stall = _metric(runs, KERNEL, "steady-scrape", n, "loop_stall_cpu_without_gc_per_scrape_ms",
                    "max")
    target = f"scrape of {n:,} jobs: longest loop block"
    need = f"<= {SCRAPE_STALL_MS:g} ms CPU besides GC"
    if stall is None:
        rows.append(_row(target, KERNEL, "not run", need, None))
    else:
        wall = _txt(runs, KERNEL, "steady-scrape", n, "loop_stall_per_scrape_ms", "max")
        own = _txt(runs, KERNEL, "steady-scrape", n, "loop_stall_cpu_without_gc_per_scrape_ms",
                   "max")
        rows.append(
            _row(target, KERNEL, f"{own} ms CPU ({wall} ms wall)", need,
                 stall <= SCRAPE_STALL_MS)
        )
    for n in ns:
        per_job = _metric(runs, KERNEL, "steady-scrape", n, "exposition_bytes_per_job")
        if per_job is None:
            continue
        size = _txt(runs, KERNEL, "steady-scrape", n, "exposition_bytes_per_job", fmt="{:,.0f}")
        rows.append(
            _row(
                f"exposition per job, N={n:,}",
                KERNEL,
                f"{size} B",
                f"<= {SCRAPE_BYTES_PER_JOB:,} B",
                per_job <= SCRAPE_BYTES_PER_JOB,
            )
        )
    return rows


def _i17_steady(runs: Runs) -> list[dict[str, Any]]:
    n = PREFERRED_N
    kc = _metric(runs, KERNEL, "steady", n, "cpu_s_per_1k_fires")
    fc = _metric(runs, FLOOR, "steady", n, "cpu_s_per_1k_fires")
    rows = []
    if kc is None or not fc:
        return [_row(f"steady {n:,}/s vs {FLOOR}", KERNEL, "not run", "<= 1.5x CPU, "
                     "p99 <= floor + 1 ms", None)]

    def cpu(e: str) -> str:
        return _txt(runs, e, "steady", n, "cpu_s_per_1k_fires", fmt="{:.4f}")

    def p99(e: str) -> str:
        return _txt(runs, e, "steady", n, "lateness_ms", "p99")

    has_aps = bool(runs.get((APS3, "steady", n)))
    missed = _metric(runs, KERNEL, "steady", n, "fires_missed")
    rows.append(
        _row(
            f"steady {n:,}/s: CPU per fire vs {FLOOR}",
            KERNEL,
            f"{cpu(KERNEL)} vs {cpu(FLOOR)} CPU-s/1k fires = {kc / fc:.2f}x"
            + (f", {APS3} {cpu(APS3)}" if has_aps else ""),
            "<= 1.5x, no missed fire",
            kc / fc <= 1.5 and missed == 0,
        )
    )
    kp = _metric(runs, KERNEL, "steady", n, "lateness_ms", "p99")
    fp = _metric(runs, FLOOR, "steady", n, "lateness_ms", "p99")
    if kp is not None and fp is not None:
        rows.append(
            _row(
                f"steady {n:,}/s: p99 lateness vs {FLOOR}",
                KERNEL,
                f"{p99(KERNEL)} vs {p99(FLOOR)} ms ({kp - fp:+.2f} ms)"
                + (f", {APS3} {p99(APS3)} ms" if has_aps else ""),
                "<= floor + 1 ms",
                kp - fp <= 1.0,
            )
        )
    return rows


def issue17_targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 17's targets, each met, missed or not measured (its scenario or N not run)."""
    runs = runs_by_key(results)
    if not any(e == KERNEL for (e, _, _) in runs):
        return []
    return [
        *_i17_burst(runs),
        *_i17_adds(runs),
        *_i17_memory(runs),
        *_i17_scrape(runs),
        *_i17_steady(runs),
    ]
