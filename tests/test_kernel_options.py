"""Job options and intervals that cannot work are refused when the job is added, with an
:class:`InvalidJobError` naming the field (found by attacking the service: nan, inf,
negative and absurd values used to be accepted, or to escape as OverflowError)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest

from kernel import JobDefaults, Kernel
from kernel.errors import InvalidJobError
from kernel.triggers import IntervalTrigger


async def noop() -> None:
    return None


BAD_OPTIONS = [
    ("timeout", math.nan, "timeout=nan must be a finite number of seconds > 0"),
    ("timeout", math.inf, "timeout=inf must be a finite number of seconds > 0"),
    ("timeout", -1.0, "timeout=-1.0 must be a finite number of seconds > 0"),
    ("timeout", "30", "timeout='30' must be a finite number of seconds > 0"),
    ("misfire_grace_time", math.nan, "misfire_grace_time=nan must be a finite number of seconds"),
    ("misfire_grace_time", math.inf, "misfire_grace_time=inf must be a finite number of seconds"),
    ("misfire_grace_time", -math.inf, "misfire_grace_time=-inf must be a finite number"),
    ("misfire_grace_time", -0.5, "misfire_grace_time=-0.5 must be a finite number of seconds"),
    ("name", 42, "name=42 must be a string of at most 200 characters"),
    ("name", b"job", "name=b'job' must be a string"),
    ("name", "n" * 201, "must be a string of at most 200 characters"),
]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [pytest.param(f, v, m, id=f"{f}={v!r}"[:40]) for f, v, m in BAD_OPTIONS],
)
def test_add_job_refuses_options_that_cannot_work(field: str, value: Any, message: str) -> None:
    kernel = Kernel(timezone="UTC")
    with pytest.raises(InvalidJobError, match=re.escape(message)) as info:
        kernel.add_interval_job(noop, hours=1, job_id="j", **{field: value})
    assert field in str(info.value)
    assert kernel.get_jobs() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("timeout", math.nan, id="timeout-nan"),
        pytest.param("misfire_grace_time", math.inf, id="grace-inf"),
    ],
)
def test_job_defaults_refuse_them_too(field: str, value: float) -> None:
    with pytest.raises(InvalidJobError, match=field):
        JobDefaults(**{field: value})


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        pytest.param(
            lambda: IntervalTrigger(weeks=1e300), "longer than 36525 days", id="1e300-weeks"
        ),
        pytest.param(
            lambda: IntervalTrigger(days=1e6), "longer than 36525 days", id="million-days"
        ),
        pytest.param(lambda: IntervalTrigger(seconds=1e-9), "interval is zero", id="nanosecond"),
    ],
)
def test_intervals_out_of_range_are_invalid_not_overflow(
    make: Callable[[], IntervalTrigger], fragment: str
) -> None:
    with pytest.raises(InvalidJobError, match=fragment):
        make()


def test_the_longest_interval_still_schedules() -> None:
    kernel = Kernel(timezone="UTC")
    job = kernel.add_interval_job(noop, days=36525, job_id="century")
    assert job.trigger.interval_seconds == 36525 * 86400  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "accepted"),
    [pytest.param(0, True, id="zero-grace"), pytest.param(None, True, id="unbounded-grace")],
)
def test_limits_that_work_are_kept(value: float | None, accepted: bool) -> None:
    kernel = Kernel(timezone="UTC")
    job = kernel.add_interval_job(noop, hours=1, misfire_grace_time=value, name="ok")
    assert (job.misfire_grace_time, job.name) == (value, "ok")
