"""Measurement helpers shared by every scenario: time base, lateness statistics, CPU,
memory and wake-up counters. Pure functions where possible; nothing engine-specific."""

from __future__ import annotations

import asyncio
import math
import os
import resource
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = (
    "CDF_QUANTILES",
    "Match",
    "TimeBase",
    "Usage",
    "current_rss",
    "match_fires",
    "peak_rss",
    "settle",
    "sleep_until",
    "summarize",
)

# Quantiles kept for the lateness CDF plot: dense in the body, denser in the tail.
CDF_QUANTILES: tuple[float, ...] = tuple(
    sorted(
        {i / 100 for i in range(101)}
        | {0.99 + i / 1000 for i in range(10)}
        | {0.999 + i / 10000 for i in range(10)}
    )
)


class TimeBase:
    """Maps monotonic seconds to wall-clock instants, from one tight (monotonic, wall) pair.

    Scenarios plan fire times on the monotonic clock; engines whose triggers take datetimes
    get the wall instant that corresponds. Over a run of minutes the two clocks drift apart
    by microseconds, far below what is measured.
    """

    def __init__(self) -> None:
        best: tuple[float, float, float] | None = None
        for _ in range(50):
            a = time.monotonic()
            w = time.time()
            b = time.monotonic()
            if best is None or b - a < best[0]:
                best = (b - a, (a + b) / 2, w)
        assert best is not None
        self.mono0 = best[1]
        self.wall0 = best[2]

    def wall(self, mono: float) -> float:
        """POSIX timestamp of monotonic instant ``mono``."""
        return self.wall0 + (mono - self.mono0)

    def mono(self, wall: float) -> float:
        """Monotonic instant of POSIX timestamp ``wall``."""
        return self.mono0 + (wall - self.wall0)

    def dt(self, mono: float) -> datetime:
        """Aware UTC datetime of monotonic instant ``mono``."""
        return datetime.fromtimestamp(self.wall(mono), UTC)


async def sleep_until(mono: float) -> None:
    """Sleep until monotonic instant ``mono`` (returns at once if it has passed)."""
    delay = mono - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def settle(rounds: int = 3) -> None:
    """Let callbacks the engine scheduled with ``call_soon`` (and the steps they trigger) run."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def current_rss() -> int | None:
    """Resident set size now, in bytes (Linux /proc); None elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


def peak_rss() -> int:
    """Peak resident set size of this process, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass(frozen=True)
class Usage:
    """CPU seconds (user + system, all threads), wall seconds and voluntary context switches.

    A voluntary context switch is the process blocking (in epoll_wait, mostly) and being
    woken again: counted by the kernel the same way for asyncio and uvloop, so it is the
    benchmark's wake-up count.
    """

    cpu: float
    wall: float
    nvcsw: int

    @classmethod
    def now(cls) -> Usage:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return cls(ru.ru_utime + ru.ru_stime, time.monotonic(), ru.ru_nvcsw)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.cpu - other.cpu, self.wall - other.wall, self.nvcsw - other.nvcsw)


@dataclass
class Match:
    """Recorded fires matched against the fires a scenario expected."""

    expected: int
    lateness: list[float]  # seconds, one per executed expected fire
    extra: int  # fires of an expected job beyond its expected count (double fires)
    other: int  # fires not checked: churn's temporary jobs, or started after the cutoff

    @property
    def executed(self) -> int:
        return len(self.lateness)

    @property
    def missed(self) -> int:
        return self.expected - self.executed


def match_fires(
    keys: Sequence[int],
    times: Sequence[float],
    first: array[float] | Sequence[float],
    period: float,
    count: int,
    cutoff: float = math.inf,
) -> Match:
    """Match fires to the plan: job ``key`` is due at ``first[key] + k * period`` for k < count.

    A job's j-th recorded start is taken as its j-th planned fire, so a skipped fire shows
    up as lateness of the ones after it and, at the end, as a missed fire. A fire that
    started after ``cutoff`` (the end of the drain) does not count: it was missed.
    """
    n = len(first)
    seen = [0] * n
    lateness: list[float] = []
    append = lateness.append
    extra = other = 0
    for key, t in zip(keys, times, strict=True):
        if not 0 <= key < n or t > cutoff:
            other += 1
            continue
        k = seen[key]
        seen[key] = k + 1
        if k < count:
            append(t - (first[key] + k * period))
        else:
            extra += 1
    return Match(n * count, lateness, extra, other)


def _rank(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    idx = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[idx]


def summarize(m: Match) -> dict[str, Any]:
    """Lateness figures in milliseconds (nearest-rank percentiles) and the CDF sketch."""
    lat = sorted(m.lateness)
    ms = 1000.0
    out: dict[str, Any] = {
        "fires_expected": m.expected,
        "fires_executed": m.executed,
        "fires_missed": m.missed,
        "fires_extra": m.extra,
    }
    if lat:
        out["lateness_ms"] = {
            "min": lat[0] * ms,
            "p50": _rank(lat, 0.50) * ms,
            "p99": _rank(lat, 0.99) * ms,
            "p99.9": _rank(lat, 0.999) * ms,
            "max": lat[-1] * ms,
            "mean": sum(lat) / len(lat) * ms,
        }
        out["lateness_cdf_ms"] = [[q, _rank(lat, q) * ms] for q in CDF_QUANTILES]
    else:
        out["lateness_ms"] = None
        out["lateness_cdf_ms"] = []
    return out
