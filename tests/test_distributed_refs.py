"""Pure parts of the replicated kernel: import references, JSON arguments, the anchored
interval grid, and the scheduled times missed while every replica was down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kernel.distributed._refs import (
    anchored,
    check_json,
    import_ref,
    missed_times,
    storable_ref,
    unanchored,
)
from kernel.errors import InvalidJobError
from kernel.triggers import CronTrigger, DateTrigger, IntervalTrigger

T0 = datetime(2024, 3, 10, 6, 0, tzinfo=UTC)  # 01:00 in New York, the night clocks spring on


def module_level() -> None:
    """Stored by reference."""


class Holder:
    @staticmethod
    def static() -> None:
        """Found through its class."""


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        ("tests.test_distributed_refs:module_level", None),
        ("tests.test_distributed_refs:Holder.static", None),
        ("tests.no_such_module:f", ModuleNotFoundError),
        ("tests.test_distributed_refs:gone", AttributeError),
        ("tests.test_distributed_refs:T0", ImportError),
        ("no-colon", ImportError),
    ],
    ids=["function", "static-method", "missing-module", "missing-name", "not-callable",
         "malformed"],
)
def test_import_references(ref: str, error: type[Exception] | None) -> None:
    if error is None:
        assert callable(import_ref(ref))
    else:
        with pytest.raises(error):
            import_ref(ref)


def test_only_functions_that_import_back_can_be_stored() -> None:
    assert storable_ref(module_level) == "tests.test_distributed_refs:module_level"

    def local() -> None: ...

    with pytest.raises(InvalidJobError, match=r"cannot be stored: .*define it at module level"):
        storable_ref(local)


@pytest.mark.parametrize(
    "value", [[1, "a", None, True, 2.5], {"nested": {"list": [1, 2]}}], ids=["list", "dict"])
def test_json_arguments_pass(value: object) -> None:
    check_json("args", value)


def test_non_json_arguments_are_refused_naming_the_field() -> None:
    with pytest.raises(InvalidJobError, match=r"kwargs=\{'x': 1j\} cannot be stored as JSON"):
        check_json("kwargs", {"x": 1j})


def test_an_interval_without_start_is_anchored_at_its_first_fire() -> None:
    trigger = anchored(IntervalTrigger(minutes=5), T0)
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.start_date == T0 + timedelta(minutes=5)
    assert unanchored(trigger.to_spec()) == IntervalTrigger(minutes=5).to_spec()
    kept = IntervalTrigger(minutes=5, start_date=T0)
    assert anchored(kept, T0 + timedelta(days=1)) is kept
    cron = CronTrigger("0 9 * * *", "UTC")
    assert anchored(cron, T0) is cron


def offsets(times: list[datetime]) -> list[float]:
    return [(t - T0).total_seconds() for t in times]


@pytest.mark.parametrize(
    ("trigger", "after", "now", "before", "expected", "dropped"),
    [
        (IntervalTrigger(seconds=10, start_date=T0), 0, 35, 40, [10, 20, 30], 0),
        (IntervalTrigger(seconds=10, start_date=T0), -100, 25, 30, [0, 10, 20], 0),
        (IntervalTrigger(seconds=10, start_date=T0), 5, 35, 30, [10, 20], 0),
        (IntervalTrigger(seconds=10, start_date=T0, end_date=T0 + timedelta(seconds=15)),
         0, 100, None, [10], 0),
        (IntervalTrigger(seconds=1, start_date=T0), 0, 10_005, 10_006,
         [float(s) for s in range(6, 10_006)], 5),
        (CronTrigger("*/30 * * * *", "America/New_York"), 0, 3 * 3600, 3 * 3600 + 1,
         [1800, 3600, 5400, 7200, 9000, 10800], 0),
        (DateTrigger(T0 + timedelta(seconds=5)), 0, 10, None, [], 0),
    ],
    ids=["interval", "interval-from-start", "before-first-kernel-fire", "interval-end-date",
         "capped-at-10000", "cron-across-dst", "date-left-to-the-kernel"],
)
def test_times_missed_while_down(
    trigger: IntervalTrigger | CronTrigger | DateTrigger, after: float, now: float,
    before: float | None, expected: list[float], dropped: int,
) -> None:
    times, left_out = missed_times(
        trigger, T0 + timedelta(seconds=after), T0 + timedelta(seconds=now),
        None if before is None else T0 + timedelta(seconds=before))
    assert (offsets(times), left_out) == (expected, dropped)
