"""``python -m bench``: plan the runs, start one subprocess per run, write the report."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._engines import ENGINES
from bench._machine import machine_info
from bench._scenarios import SCENARIOS

__all__ = ("Settings", "main", "parse_args")

DEFAULT_SCENARIOS = (
    "steady",
    "burst",
    "idle",
    "add-interval",
    "add-cron-same",
    "add-cron-distinct",
    "churn",
    "cron-heavy",
    "pg-store",
    "steady-scrape",
)
DEFAULT_ENGINES = (
    "floor",
    "floor-uvloop",
    "kernel",
    "kernel-uvloop",
    "apscheduler3",
    "apscheduler4",
    "aiocron",
    "kernel-pg1",
    "kernel-pg3",
    "kernel-pg3p",
)
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Preset:
    """A named plan: per scenario, the engines and job counts to run it with, and its
    window (seconds of steady load) where not --duration's default."""

    summary: str
    legs: dict[str, tuple[tuple[str, ...], tuple[int, ...]]]
    durations: dict[str, float]


PRESETS = {
    # Every figure issue 17 judges, each with the floor and APScheduler 3 of the same run
    # where they can run the scenario; with --repeat 3, 57 runs, about 15 minutes on the
    # 2-core bench machine (13.3 min at load 2-6 on 2026-12-01; bench/README.md).
    "issue17": Preset(
        summary="issue 17's targets: burst 100k, add rates, memory per job, steady 10k/s, "
        "steady + scrape",
        legs={
            "burst": (("floor", "kernel", "apscheduler3"), (100_000,)),
            "add-interval": (("floor", "kernel", "apscheduler3"), (1_000, 10_000, 100_000)),
            "add-cron-distinct": (("kernel", "apscheduler3"), (10_000,)),
            "steady": (("floor", "kernel", "apscheduler3"), (10_000,)),
            "steady-scrape": (("kernel",), (1_000, 10_000)),
        },
        durations={"steady": 10.0, "steady-scrape": 20.0},
    ),
}
# A run that missed more than this share of its fires is not repeated at a larger N.
MISS_CUT = 0.10


@dataclass(frozen=True)
class Settings:
    engines: tuple[str, ...]
    scenarios: tuple[str, ...]
    ns: tuple[int, ...]
    duration: float
    idle_duration: float
    drain: float
    lead: float
    out: Path
    quick: bool
    ns_given: bool = True  # --n given: it overrides every scenario's own default counts
    repeat: int = 1  # runs of each scenario x engine x N, engines interleaved
    preset: str | None = None  # --preset: its legs choose engines and N per scenario
    duration_given: bool = False  # --duration given: it overrides the preset's windows
    readme: Path | None = None  # --readme: a markdown file whose bench block is rewritten
    from_json: Path | None = None  # --from-json: report again from an earlier run

    def ns_for(self, scenario: str) -> tuple[int, ...]:
        """The job counts to run ``scenario`` at: the preset's, --n, else the scenario's
        own, else ns."""
        if self.preset is not None and not self.quick:
            return PRESETS[self.preset].legs[scenario][1]
        own = SCENARIOS[scenario].ns
        return own if own is not None and not self.ns_given and not self.quick else self.ns

    def engines_for(self, scenario: str) -> tuple[str, ...]:
        """The engines to run ``scenario`` with: the preset's, else --engines."""
        if self.preset is not None:
            return PRESETS[self.preset].legs[scenario][0]
        return self.engines

    def duration_for(self, scenario: str) -> float:
        """Seconds of steady load for ``scenario``: --duration, else the preset's."""
        if self.preset is not None and not self.duration_given and not self.quick:
            return PRESETS[self.preset].durations.get(scenario, self.duration)
        return self.duration


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _ns(value: str) -> tuple[int, ...]:
    try:
        ns = tuple(int(v.replace("_", "").lower().replace("k", "000")) for v in _csv(value))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--n {value!r}: give comma-separated job counts, e.g. 1000,10000 or 1k,10k"
        ) from None
    if not ns or min(ns) < 1:
        raise argparse.ArgumentTypeError(f"--n {value!r}: every job count must be at least 1")
    return ns


def parse_args(argv: list[str] | None) -> Settings:
    """Command-line flags to settings; unknown engine or scenario names are refused."""
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Scheduling latency and cost: the kernel side by side with the "
        "alternatives and the event loop's own floor.",
    )
    p.add_argument(
        "--engines",
        type=_csv,
        default=None,
        help=f"comma-separated, default all: {','.join(DEFAULT_ENGINES)}",
    )
    p.add_argument(
        "--scenarios",
        type=_csv,
        default=None,
        help=f"comma-separated, default: {','.join(DEFAULT_SCENARIOS)}",
    )
    p.add_argument(
        "--n",
        type=_ns,
        default=None,
        help="job counts, default 1000,10000,100000 (pg-store: 200,1000)",
    )
    p.add_argument(
        "--duration", type=float, default=None, help="seconds of steady/churn load (default 10)"
    )
    p.add_argument(
        "--idle-duration", type=float, default=None, help="seconds measured while idle (default 10)"
    )
    p.add_argument(
        "--drain",
        type=float,
        default=None,
        help="seconds after the last planned fire a late fire still counts (default 5)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny N and short windows: checks that it works, measures nothing",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each scenario x engine x N this many times, the engines taking turns "
        "(default 1); every table shows each figure's median and spread",
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="a named plan of scenarios, engines and N (not with --engines, --scenarios, "
        "--n): "
        + "; ".join(f"{name}: {preset.summary}" for name, preset in PRESETS.items()),
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    p.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="also write issue 17's target table into this markdown file, between its "
        "'<!-- bench:begin ...' and '<!-- bench:end -->' lines (e.g. README.md)",
    )
    p.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="run nothing: write the report (and --readme) again from this results.json",
    )
    a = p.parse_args(argv)
    if a.preset is not None:
        given = [f for f, v in (("--engines", a.engines), ("--scenarios", a.scenarios),
                                ("--n", a.n)) if v is not None]
        if given:
            p.error(f"--preset {a.preset} chooses the engines, scenarios and N itself: "
                    f"drop {', '.join(given)}")
        legs = PRESETS[a.preset].legs
        a.scenarios = tuple(legs)
        a.engines = tuple(dict.fromkeys(e for engines, _ in legs.values() for e in engines))
    engines = a.engines or DEFAULT_ENGINES
    scenarios = a.scenarios or DEFAULT_SCENARIOS
    for name in engines:
        if name not in ENGINES:
            p.error(f"--engines: unknown engine {name!r}; known: {', '.join(ENGINES)}")
    for name in scenarios:
        if name not in SCENARIOS:
            p.error(f"--scenarios: unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if a.repeat < 1:
        p.error(f"--repeat {a.repeat}: give at least 1")
    q = a.quick

    def pick(value: float | None, normal: float, quick: float) -> float:
        return value if value is not None else (quick if q else normal)

    return Settings(
        engines=tuple(engines),
        scenarios=tuple(scenarios),
        ns=a.n or ((50,) if q else (1000, 10000, 100000)),
        duration=pick(a.duration, 10.0, 2.0),
        idle_duration=pick(a.idle_duration, 10.0, 0.5),
        drain=pick(a.drain, 5.0, 2.0),
        lead=0.3 if q else 1.0,
        out=a.out,
        quick=q,
        ns_given=a.n is not None,
        repeat=a.repeat,
        preset=a.preset,
        duration_given=a.duration is not None,
        readme=a.readme,
        from_json=a.from_json,
    )


class _Progress:
    """One line on stderr, rewritten in place on a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()

    def show(self, i: int, text: str, *, final: bool = False) -> None:
        elapsed = time.monotonic() - self.started
        line = f"[{i}/{self.total} {elapsed:5.0f}s] {text}"
        if self.tty:
            sys.stderr.write("\r\x1b[K" + line + ("\n" if final else ""))
        elif final:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _run_one(s: Settings, engine: str, scenario: str, n: int) -> dict[str, Any]:
    spec = {
        "engine": engine,
        "scenario": scenario,
        "n": n,
        "duration": s.duration_for(scenario),
        "idle_duration": s.idle_duration,
        "drain": s.drain,
        "lead": s.lead,
    }
    timeout = 180 + s.duration_for(scenario) + s.idle_duration + s.drain + n * 2e-3
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "result.json"
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "bench.engine_runner", json.dumps(spec), str(out)],
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"status": "cut", "reason": f"did not finish within {timeout:.0f} s"}
        if out.exists():
            result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
            return result
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        return {"status": "error", "reason": f"exit status {proc.returncode}: " + " | ".join(tail)}


def _cut_reason(runs: list[dict[str, Any]], engine: str, scenario: str, n: int) -> str | None:
    """Why this larger N of this engine and scenario is not worth running, if it is not."""
    for r in runs:
        if r["engine"] != engine or r["scenario"] != scenario or r["n"] >= n:
            continue
        if r["status"] == "cut":
            return f"cut: N={r['n']} already {r['reason']}"
        m = r.get("metrics") or {}
        expected = m.get("fires_expected") or 0
        if expected and m.get("fires_missed", 0) > MISS_CUT * expected:
            return f"cut: at N={r['n']} it already missed {m['fires_missed']} of {expected} fires"
    return None


def plan(s: Settings) -> tuple[list[tuple[str, str, int]], dict[str, str]]:
    """The runs to make, in order, and why each unavailable engine is left out.

    With ``repeat`` > 1 each scenario x N is run that many times in turn, every engine once
    per turn, so a change in the machine's load falls on every engine alike."""
    unavailable = {}
    for name in s.engines:
        reason = ENGINES[name].probe()
        if reason is not None:
            unavailable[name] = reason
    runs = [
        (scenario, engine, n)
        for scenario in s.scenarios
        for n in sorted(s.ns_for(scenario))
        for _ in range(s.repeat)
        for engine in s.engines_for(scenario)
        if engine not in unavailable
        and scenario in ENGINES[engine].scenarios
        and SCENARIOS[scenario].run is not None
    ]
    return runs, unavailable


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every run completed (missed targets are reported, not
    failures), 1 when a run errored."""
    s = parse_args(argv)
    if s.from_json is not None:
        return _report_again(s)
    load_start = _loadavg()
    runs_planned, unavailable = plan(s)
    progress = _Progress(len(runs_planned))
    for name, reason in unavailable.items():
        sys.stderr.write(f"engine {name}: unavailable ({reason})\n")
    for name in s.scenarios:
        if SCENARIOS[name].run is None:
            sys.stderr.write(f"scenario {name}: not implemented yet ({SCENARIOS[name].summary})\n")
    results: list[dict[str, Any]] = []
    for i, (scenario, engine, n) in enumerate(runs_planned, 1):
        record: dict[str, Any] = {"engine": engine, "scenario": scenario, "n": n}
        cut = _cut_reason(results, engine, scenario, n)
        if cut is not None:
            record.update(status="cut", reason=cut)
        else:
            progress.show(i, f"{scenario} N={n} {engine} ...")
            record.update(_run_one(s, engine, scenario, n))
        progress.show(i, f"{scenario} N={n} {engine}: {_brief(record)}", final=True)
        results.append(record)
    from bench._report import write_report

    report = {
        "machine": {**machine_info(), "load_start": load_start, "load_end": _loadavg()},
        "settings": {
            "engines": list(s.engines),
            "scenarios": list(s.scenarios),
            "n": list(s.ns),
            "duration_s": s.duration,
            "idle_duration_s": s.idle_duration,
            "drain_s": s.drain,
            "quick": s.quick,
            "repeat": s.repeat,
            "preset": s.preset,
            "durations_s": {k: s.duration_for(k) for k in s.scenarios},
        },
        "unavailable": unavailable,
        "not_implemented": {
            k: SCENARIOS[k].summary for k in s.scenarios if SCENARIOS[k].run is None
        },
        "runs": results,
    }
    markdown = write_report(report, s.out)
    if s.readme is not None:
        from bench._report import update_readme

        update_readme(s.readme, report)
    sys.stdout.write(markdown)
    return 1 if any(r["status"] == "error" for r in results) else 0


def _report_again(s: Settings) -> int:
    """--from-json: the report of an earlier run, written again (with this code's tables)."""
    from bench._report import update_readme, write_report

    assert s.from_json is not None
    report: dict[str, Any] = json.loads(s.from_json.read_text(encoding="utf-8"))
    markdown = write_report(report, s.out)
    if s.readme is not None:
        update_readme(s.readme, report)
    sys.stdout.write(markdown)
    return 0


def _loadavg() -> list[float] | None:
    """The 1, 5 and 15-minute load averages, when the system has them."""
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def _brief(r: dict[str, Any]) -> str:
    if r["status"] != "ok":
        return f"{r['status']}: {r.get('reason', '')}"
    m = r["metrics"]
    parts = []
    if m.get("fires_expected") is not None:
        parts.append(f"fires {m['fires_executed']}/{m['fires_expected']}")
    if m.get("lateness_ms"):
        parts.append(f"p99 {m['lateness_ms']['p99']:.2f} ms")
    if m.get("cpu_s_per_1k_fires") is not None:
        parts.append(f"{m['cpu_s_per_1k_fires'] * 1000:.1f} ms CPU/1k fires")
    if m.get("wakeups") is not None:
        parts.append(f"{m['wakeups']} wake-ups")
    if m.get("lateness_scraped_ms") and m.get("lateness_quiet_ms"):
        parts.append(
            f"p99 quiet {m['lateness_quiet_ms']['p99']:.2f} / scraped "
            f"{m['lateness_scraped_ms']['p99']:.2f} ms"
        )
    if m.get("loop_stall_per_scrape_ms") and m.get("loop_stall_cpu_per_scrape_ms"):
        parts.append(
            "max stall per scrape "
            f"{m['loop_stall_cpu_without_gc_per_scrape_ms']['max']:.1f} ms CPU besides GC, "
            f"{m['loop_stall_cpu_per_scrape_ms']['max']:.1f} ms CPU, "
            f"{m['loop_stall_per_scrape_ms']['max']:.1f} ms wall"
        )
    if m.get("exposition_bytes_per_job") is not None:
        parts.append(f"{m['exposition_bytes_per_job']:,.0f} B/job exposed")
    if m.get("bytes_per_job") is not None:
        parts.append(f"{m['add_rate_per_s']:,.0f} adds/s, {m['bytes_per_job']:.0f} B/job")
    return ", ".join(parts) or "ok"
