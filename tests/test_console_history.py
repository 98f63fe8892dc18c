"""The console's run history (a bounded ring per job, fed by the kernel's events) and the
way the console writes times and durations."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kernel import Kernel
from kernel.admin.console._format import duration, relative, seconds, when
from kernel.console.history import RunHistory, percentile
from kernel.events import (
    JobRemoved,
    RunFailed,
    RunMissed,
    RunSkipped,
    RunStarted,
    RunSucceeded,
)
from kernel.testing import VirtualClock

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def started(run: str, job: str = "j", lateness: float = 0.5, manual: bool = False) -> RunStarted:
    return RunStarted(job_id=job, scheduled_at=None if manual else T0, run_id=run,
                      started_at=T0, lateness=lateness, manual=manual)


def succeeded(run: str, job: str = "j", duration: float = 2.0) -> RunSucceeded:
    return RunSucceeded(job_id=job, scheduled_at=T0, run_id=run, started_at=T0,
                        duration=duration)


def failed(run: str, job: str = "j", timed_out: bool = False) -> RunFailed:
    return RunFailed(job_id=job, scheduled_at=T0, run_id=run, started_at=T0, duration=3.0,
                     exc_type="ValueError", message="m", traceback="t", timed_out=timed_out)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([started("r1"), succeeded("r1")],
                     [("r1", "succeeded", 0.5, 2.0, "")], id="succeeded"),
        pytest.param([started("r1"), failed("r1")],
                     [("r1", "failed", 0.5, 3.0, "ValueError")], id="failed"),
        pytest.param([started("r1"), failed("r1", timed_out=True)],
                     [("r1", "timed out", 0.5, 3.0, "ValueError")], id="timed-out"),
        pytest.param([started("r1")], [("r1", "running", 0.5, None, "")], id="running"),
        pytest.param([started("r1", manual=True), succeeded("r1")],
                     [("r1", "succeeded", None, 2.0, "")], id="manual-has-no-lateness"),
        pytest.param([succeeded("r0")], [("r0", "succeeded", None, 2.0, "")],
                     id="started-before-attaching"),
        pytest.param([RunMissed(job_id="j", scheduled_at=T0, lateness=75.0)],
                     [(None, "missed", 75.0, None, "")], id="missed"),
        pytest.param([RunSkipped(job_id="j", scheduled_at=T0, reason="max_instances")],
                     [(None, "skipped", None, None, "max instances")], id="skipped"),
        pytest.param([started("r1"), started("r2"), succeeded("r2"), failed("r1")],
                     [("r1", "failed", 0.5, 3.0, "ValueError"),
                      ("r2", "succeeded", 0.5, 2.0, "")], id="overlapping"),
    ],
)
def test_each_event_becomes_an_entry(
    events: list[object], expected: list[tuple[object, ...]]
) -> None:
    history = RunHistory()
    for event in events:
        history(event)  # type: ignore[arg-type]
    assert [
        (e.run_id, e.outcome, e.lateness, e.duration, e.detail) for e in history.runs("j")
    ] == expected


def test_the_ring_keeps_the_newest_runs_and_a_job_without_runs_costs_nothing() -> None:
    history = RunHistory(size=3)
    for n in range(10):
        history(started(f"r{n}", lateness=float(n)))
        history(succeeded(f"r{n}"))
    assert [e.run_id for e in history.runs("j")] == ["r7", "r8", "r9"]
    assert history.lateness("j") == [7.0, 8.0, 9.0]
    assert history.runs("never") == ()
    assert list(history.jobs()) == ["j"]
    assert history._open == {}


def test_a_run_pushed_out_while_running_is_not_added_again_when_it_ends() -> None:
    history = RunHistory(size=2)
    history(started("long"))
    for n in range(3):
        history(started(f"r{n}"))
        history(succeeded(f"r{n}"))
    history(succeeded("long"))
    assert [e.run_id for e in history.runs("j")] == ["r1", "r2"]
    assert history._open == {}


def test_a_removed_jobs_runs_are_dropped_and_its_last_run_ending_adds_nothing() -> None:
    history = RunHistory()
    history(started("r1"))
    history(JobRemoved(job_id="j", scheduled_at=None))
    assert history.runs("j") == ()
    history(succeeded("r1"))
    assert history.runs("j") == ()
    assert list(history.jobs()) == []


def test_last_is_the_newest_ended_run() -> None:
    history = RunHistory()
    assert history.last("j") is None
    history(started("r1"))
    history(failed("r1"))
    history(started("r2"))
    history(RunSkipped(job_id="j", scheduled_at=T0, reason="coalesced"))
    last = history.last("j")
    assert last is not None
    assert (last.run_id, last.outcome) == ("r1", "failed")


def test_memory_per_job_is_bounded_by_the_size() -> None:
    history = RunHistory(size=50)
    for n in range(500):
        history(started(f"{n:08x}-{n}"))
        history(succeeded(f"{n:08x}-{n}"))
    (ring,) = history._runs.values()
    entry = ring[0]
    per_entry = sys.getsizeof(entry) + sys.getsizeof(entry.run_id)
    assert len(ring) == 50
    # Slots, shared datetimes and interned outcome words: well under a kilobyte a run.
    assert per_entry < 300
    assert not hasattr(entry, "__dict__")


@pytest.mark.parametrize("size", [0, -1, 10_001, 2.5, True, "50"])
def test_a_bad_size_names_the_range(size: object) -> None:
    with pytest.raises(ValueError, match="must be a whole number of runs per job from 1"):
        RunHistory(size)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        pytest.param([], 99, None, id="empty"),
        pytest.param([5.0], 99, 5.0, id="one"),
        pytest.param([float(n) for n in range(1, 101)], 99, 99.0, id="hundred"),
        pytest.param([float(n) for n in range(1, 101)], 50, 50.0, id="median"),
        pytest.param([3.0, 1.0, 2.0], 99, 3.0, id="few: the largest"),
        pytest.param([3.0, 1.0, 2.0], 0, 1.0, id="zeroth: the smallest"),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


async def test_attached_to_a_kernel_it_records_its_runs_and_detaches() -> None:
    clock = VirtualClock(T0)
    kernel = Kernel(clock=clock)

    async def job() -> None:
        pass

    kernel.add_interval_job(job, minutes=1, job_id="every-minute")
    history = RunHistory()
    history.attach(kernel)
    with pytest.raises(RuntimeError, match="already attached"):
        history.attach(kernel)
    async with kernel:
        await clock.advance(timedelta(minutes=3))
        history.detach()
        await clock.advance(timedelta(minutes=3))
    runs = history.runs("every-minute")
    assert [(e.outcome, e.lateness) for e in runs] == [("succeeded", 0.0)] * 3
    assert [e.scheduled_at for e in runs] == [T0 + timedelta(minutes=n) for n in (1, 2, 3)]


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (0.4, "now"),
        (-0.4, "now"),
        (45, "in 45 s"),
        (-89, "89 s ago"),
        (300, "in 5 min"),
        (-5399, "90 min ago"),
        (3 * 3600 + 100, "in 3 h"),
        (47 * 3600, "in 47 h"),
        (3 * 86400, "in 3 d"),
        (-400 * 86400, "400 d ago"),
    ],
)
def test_relative_times(delta: float, text: str) -> None:
    assert relative(delta) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (0.0, "< 1 ms"),
        (0.0004, "< 1 ms"),
        (0.0123, "12 ms"),
        (1.234, "1.23 s"),
        (12.34, "12.3 s"),
        (125, "2 min 5 s"),
        (3725, "1 h 2 min"),
        (60, "1 min"),
        (7200, "2 h"),
    ],
)
def test_durations(value: float | None, text: str) -> None:
    assert duration(value) == text


def test_lateness_keeps_its_sign() -> None:
    assert (seconds(-0.5), seconds(2.0), seconds(None)) == ("-500 ms", "2.00 s", "—")


def test_a_time_is_local_relative_and_utc_on_hover() -> None:
    shown = when(T0 + timedelta(hours=3), T0, ZoneInfo("America/New_York"))
    assert shown == (
        '<time datetime="2026-12-01T04:00:00Z" title="2026-12-01 04:00:00 UTC">'
        '<span class="abs">2026-11-30 23:00:00 EST</span> <span class="rel">(in 3 h)</span>'
        "</time>"
    )
    assert when(None, T0, UTC) == "—"
