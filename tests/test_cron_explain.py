"""``explain``: description, next fires as local times, and DST warnings."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from kernel.cron_explain import Explanation, explain
from kernel.errors import InvalidJobError

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
SH = ZoneInfo("Asia/Shanghai")


def test_plain_schedule_has_no_warnings() -> None:
    result = explain("0 9,18 * * *", "Asia/Shanghai", 3, after=datetime(2024, 5, 15, tzinfo=UTC))
    assert result == Explanation(
        expression="0 9,18 * * *",
        timezone="Asia/Shanghai",
        description="at 09:00 and 18:00 every day",
        next_fires=(
            datetime(2024, 5, 15, 9, tzinfo=SH),
            datetime(2024, 5, 15, 18, tzinfo=SH),
            datetime(2024, 5, 16, 9, tzinfo=SH),
        ),
        warnings=(),
    )
    assert [fire.isoformat() for fire in result.next_fires] == [
        "2024-05-15T09:00:00+08:00",
        "2024-05-15T18:00:00+08:00",
        "2024-05-16T09:00:00+08:00",
    ]


def test_fall_back_any_hour_job_warns_it_runs_twice() -> None:
    result = explain("*/30 * * * *", NY, 4, after=datetime(2024, 11, 3, 4, 40, tzinfo=UTC))
    assert [fire.isoformat() for fire in result.next_fires] == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:00:00-05:00",
        "2024-11-03T01:30:00-05:00",
    ]
    assert [w.message for w in result.warnings] == [
        "2024-11-03 01:00 happens twice in America/New_York: clocks go back from 02:00 to "
        "01:00; it runs both times, at 01:00 EDT and at 01:00 EST",
        "2024-11-03 01:30 happens twice in America/New_York: clocks go back from 02:00 to "
        "01:00; it runs both times, at 01:30 EDT and at 01:30 EST",
    ]
    first = result.warnings[0]
    assert first.kind == "overlap"
    assert first.local_time == datetime(2024, 11, 3, 1, 0)
    # Aware datetimes in a repeated hour never compare equal across zones (PEP 495):
    # compare the instants.
    assert [run.astimezone(UTC) for run in first.runs_at] == [
        datetime(2024, 11, 3, 5, tzinfo=UTC),
        datetime(2024, 11, 3, 6, tzinfo=UTC),
    ]
    assert [run.isoformat() for run in first.runs_at] == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:00:00-05:00",
    ]


def test_fall_back_fixed_hour_job_warns_it_runs_once() -> None:
    result = explain("30 1 * * *", NY, 3, after=datetime(2024, 11, 1, tzinfo=UTC))
    assert [fire.isoformat() for fire in result.next_fires] == [
        "2024-11-01T01:30:00-04:00",
        "2024-11-02T01:30:00-04:00",
        "2024-11-03T01:30:00-04:00",
    ]
    assert [w.message for w in result.warnings] == [
        "2024-11-03 01:30 happens twice in America/New_York: clocks go back from 02:00 to "
        "01:00; it runs once, the first time (01:30 EDT), because its hour is fixed",
    ]
    assert [run.astimezone(UTC) for run in result.warnings[0].runs_at] == [
        datetime(2024, 11, 3, 5, 30, tzinfo=UTC),
    ]


def test_spring_forward_warns_for_each_skipped_time() -> None:
    result = explain(
        "*/20 * * * *", "Europe/London", 3, after=datetime(2024, 3, 31, 0, 30, tzinfo=UTC)
    )
    assert [fire.isoformat() for fire in result.next_fires] == [
        "2024-03-31T00:40:00+00:00",
        "2024-03-31T02:00:00+01:00",
        "2024-03-31T02:20:00+01:00",
    ]
    assert [w.message for w in result.warnings] == [
        f"2024-03-31 01:{m} does not exist in Europe/London: clocks jump from 01:00 to 02:00; "
        "skipped times run once, at 02:00 BST"
        for m in ("00", "20", "40")
    ]
    assert {w.kind for w in result.warnings} == {"gap"}
    assert {w.runs_at for w in result.warnings} == {(datetime(2024, 3, 31, 1, tzinfo=UTC),)}


def test_warnings_only_cover_the_listed_window() -> None:
    before = explain("30 2 * * *", NY, 2, after=datetime(2024, 3, 1, tzinfo=UTC))
    assert before.warnings == ()
    across = explain("30 2 * * *", NY, 2, after=datetime(2024, 3, 9, tzinfo=UTC))
    assert [w.message for w in across.warnings] == [
        "2024-03-10 02:30 does not exist in America/New_York: clocks jump from 02:00 to 03:00; "
        "skipped times run once, at 03:00 EDT",
    ]


def test_explanation_encodes_to_json() -> None:
    result = explain("30 1 * * *", LONDON, 1, after=datetime(2024, 10, 26, 12, tzinfo=UTC))
    encoded = msgspec.json.encode(result)
    decoded = msgspec.json.decode(encoded, type=Explanation)
    assert msgspec.json.encode(decoded) == encoded
    assert msgspec.json.decode(encoded)["warnings"][0]["runs_at"] == ["2024-10-27T01:30:00+01:00"]
    assert result.format() == (
        "'30 1 * * *' in Europe/London: at 01:30 every day\n"
        "next fires:\n"
        "  2024-10-27T01:30:00+01:00  (Sun BST)\n"
        "warning: 2024-10-27 01:30 happens twice in Europe/London: clocks go back from 02:00 "
        "to 01:00; it runs once, the first time (01:30 BST), because its hour is fixed"
    )


@pytest.mark.parametrize(
    ("expression", "zone", "n", "error", "message"),
    [
        pytest.param(
            "0 25 * * *",
            "UTC",
            3,
            InvalidJobError,
            "hour 25 is out of range 0-23",
            id="bad-expression",
        ),
        pytest.param(
            "0 9 * * *",
            "Asia/Shangai",
            3,
            InvalidJobError,
            "use a name like 'Asia/Shanghai'",
            id="bad-zone",
        ),
        pytest.param(
            "0 9 * * *",
            "UTC",
            -1,
            ValueError,
            "n must be a whole number >= 0, got -1",
            id="negative-n",
        ),
    ],
)
def test_bad_input(
    expression: str, zone: str, n: int, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        explain(expression, zone, n, after=datetime(2024, 1, 1, tzinfo=UTC))
    assert message in str(info.value)


def test_zero_fires() -> None:
    result = explain("0 9 * * *", "UTC", 0, after=datetime(2024, 1, 1, tzinfo=UTC))
    assert result.next_fires == ()
    assert result.warnings == ()
