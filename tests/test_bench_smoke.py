"""Smoke test of the benchmark (issue 6): tiny N, short windows, real subprocesses.

It checks that the harness works end to end and that every planned fire ran; it measures
nothing. The benchmark itself never runs inside the test suite.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

import bench
from bench._engines import ENGINES

from .conftest import POSTGRES_DSN

SCENARIOS = ("steady", "burst", "idle", "add-interval")
FIRE_SCENARIOS = ("steady", "burst")
N = 20


def _unavailable(engine: str) -> str | None:
    if engine == "apscheduler3" and importlib.util.find_spec("apscheduler") is None:
        return "apscheduler 3 is a bench-only dependency, not installed here"
    if engine in ("kernel", "kernel-sqlite"):
        # The kernel lands on main separately; until this branch has it, say so.
        return ENGINES["kernel"].probe()
    return None


def quick_report(tmp_path: Path, engines: str, scenarios: str) -> dict[str, Any]:
    """``python -m bench --quick`` at N for these engines and scenarios: its results.json."""
    status = bench.main(
        [
            "--quick",
            "--engines",
            engines,
            "--scenarios",
            scenarios,
            "--n",
            str(N),
            "--out",
            str(tmp_path),
        ]
    )
    assert status == 0
    report: dict[str, Any] = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    return report


@pytest.mark.slow
@pytest.mark.timeout(30)
@pytest.mark.parametrize("engine", ["floor", "kernel", "kernel-sqlite", "apscheduler3"])
def test_quick_run_writes_every_figure_and_runs_every_fire(engine: str, tmp_path: Path) -> None:
    reason = _unavailable(engine)
    if reason is not None:
        pytest.skip(reason)

    report = quick_report(tmp_path, engine, ",".join(SCENARIOS))
    assert set(report) >= {"machine", "settings", "unavailable", "runs", "targets", "plots"}
    assert (tmp_path / "results.md").read_text(encoding="utf-8").startswith("# Scheduler benchmark")
    runs = {r["scenario"]: r for r in report["runs"]}
    assert sorted(runs) == sorted(SCENARIOS)
    for scenario, run in runs.items():
        assert (run["engine"], run["n"], run["status"]) == (engine, N, "ok"), run.get("reason")
        assert run["metrics"]["peak_rss_bytes"] > 0
        if scenario in FIRE_SCENARIOS:
            m = run["metrics"]
            planned = N * 2 if scenario == "steady" else N  # --quick steady: 2 s, 1 fire/s
            assert (m["fires_expected"], m["fires_executed"], m["fires_extra"]) == (
                planned,
                planned,
                0,
            )
            assert set(m["lateness_ms"]) == {"min", "p50", "p99", "p99.9", "max", "mean"}
            assert m["cpu_s_per_1k_fires"] > 0
    assert runs["idle"]["metrics"]["wakeups"] >= 0
    assert set(runs["idle"]["metrics"]) >= {"cpu_s", "wakeups", "wakeups_per_s", "idle_s"}
    add = runs["add-interval"]["metrics"]
    assert add["add_rate_per_s"] > 0
    assert add["bytes_per_job"] > 0
    if importlib.util.find_spec("matplotlib") is not None:  # a bench-only dependency
        assert sorted(report["plots"]) == [
            "bytes_per_job.png",
            "cpu_per_fire.png",
            "lateness_cdf.png",
        ]


def test_unknown_engine_is_refused_with_the_known_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["--engines", "cronjob"])

    assert exc.value.code == 2
    assert "--engines: unknown engine 'cronjob'; known: floor, floor-uvloop, kernel" in (
        capsys.readouterr().err
    )


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(40)
def test_pg_store_quick_run_runs_every_scheduled_time_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_POSTGRES_DSN", POSTGRES_DSN)

    report = quick_report(tmp_path, "kernel-pg1,kernel-pg3", "pg-store")
    runs = {r["engine"]: r for r in report["runs"]}
    assert sorted(runs) == ["kernel-pg1", "kernel-pg3"]
    for engine, replicas in (("kernel-pg1", 1), ("kernel-pg3", 3)):
        run = runs[engine]
        assert (run["scenario"], run["n"], run["status"]) == ("pg-store", N, "ok"), run.get(
            "reason"
        )
        m = run["metrics"]
        planned = N * 2  # --quick: 2 s, one fire per job per second
        assert (m["replicas"], m["fires_expected"], m["fires_executed"], m["fires_extra"]) == (
            replicas,
            planned,
            planned,
            0,
        )
        assert sum(m["claims_per_replica"].values()) == planned
        assert m["fires_per_s_achieved"] > 0
        assert m["cpu_s_per_1k_fires"] > 0
        if "@127.0.0.1:" in POSTGRES_DSN:  # the server's backends are readable in /proc
            assert m["server_cpu_s_per_1k_fires"] > 0
    assert "| kernel-pg3 | 20 | 40/40 |" in (tmp_path / "results.md").read_text(encoding="utf-8")


def test_pg_store_runs_at_its_own_default_counts_unless_n_is_given() -> None:
    from bench._cli import parse_args

    assert parse_args(["--scenarios", "pg-store"]).ns_for("pg-store") == (200, 1000)
    assert parse_args(["--scenarios", "pg-store,steady"]).ns_for("steady") == (1000, 10000, 100000)
    assert parse_args(["--scenarios", "pg-store", "--n", "50"]).ns_for("pg-store") == (50,)


def test_pg_store_engines_are_unavailable_with_the_reason_when_the_server_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench._cli import parse_args, plan

    monkeypatch.setattr("bench._engines.kernel_pg.DSN", "postgresql://bench:pw@127.0.0.1:1/x")

    runs, unavailable = plan(
        parse_args(["--engines", "kernel-pg1,kernel-pg3", "--scenarios", "pg-store"])
    )

    assert runs == []
    assert sorted(unavailable) == ["kernel-pg1", "kernel-pg3"]
    reason = unavailable["kernel-pg3"]
    assert reason.startswith("PostgreSQL at 127.0.0.1:1/x is unreachable (")
    assert "pw" not in reason


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_steady_scrape_quick_run_measures_both_blocks_and_the_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This very tree as the "baseline": the engine must import kernel from it.
    monkeypatch.setenv("BENCH_BASELINE_TREE", str(Path(__file__).resolve().parent.parent))

    report = quick_report(tmp_path, "kernel,kernel-baseline", "steady-scrape")
    assert [(r["engine"], r["status"]) for r in report["runs"]] == [
        ("kernel", "ok"),
        ("kernel-baseline", "ok"),
    ], [r.get("reason") for r in report["runs"]]
    for run in report["runs"]:
        m = run["metrics"]
        planned = N * 2  # --quick: a quiet and a scraped block of 1 s, one fire per second
        assert (m["fires_expected"], m["fires_executed"], m["fires_extra"]) == (planned, planned, 0)
        assert m["lateness_quiet_ms"]["p99"] is not None
        assert m["lateness_scraped_ms"]["p99"] is not None
        (scrape,) = m["scrapes"]
        assert scrape["status"] == 200
        assert scrape["bytes"] > N * 500  # every job's series
        assert m["loop_stall_cpu_per_scrape_ms"]["max"] >= 0
    table = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "| kernel-baseline | 20 | 1 | 40/40 |" in table


def test_repeat_runs_each_scenario_n_times_with_the_engines_taking_turns() -> None:
    from bench._cli import parse_args, plan

    runs, _ = plan(parse_args(["--engines", "floor,kernel", "--scenarios", "steady",
                               "--n", "10", "--repeat", "2"]))

    assert runs == [("steady", "floor", 10), ("steady", "kernel", 10)] * 2
