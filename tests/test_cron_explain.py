"""``explain``: description, next fires as local times, and DST warnings."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from actors.cli import main
from kernel.cron_explain import Explanation, daylight_saving_rule, explain
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
        daylight_saving=None,  # Shanghai has not changed its offset since 1991
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
        "01:00; it runs once, the first time (01:30 EDT), because its hour field does not match "
        "every hour",
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
        "daylight saving: a local time the clocks skip runs once, at the end of the gap; a "
        "local time that happens twice runs once, the first time, because the hour field does "
        "not match every hour\n"
        "warning: 2024-10-27 01:30 happens twice in Europe/London: clocks go back from 02:00 "
        "to 01:00; it runs once, the first time (01:30 BST), because its hour field does not "
        "match every hour"
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


EVERY_HOUR_RULE = (
    "a local time the clocks skip runs once, at the end of the gap; a local time that happens "
    "twice runs both times, because the hour field matches every hour"
)
FIXED_HOUR_RULE = (
    "a local time the clocks skip runs once, at the end of the gap; a local time that happens "
    "twice runs once, the first time, because the hour field does not match every hour"
)


@pytest.mark.parametrize(
    ("expression", "zone", "rule"),
    [
        pytest.param("*/30 * * * *", "America/New_York", EVERY_HOUR_RULE, id="every-hour"),
        pytest.param("0 0-23 * * *", "Europe/London", EVERY_HOUR_RULE, id="full-range"),
        pytest.param("0 */1 * * *", "Asia/Beirut", EVERY_HOUR_RULE, id="step-1"),
        pytest.param("30 1 * * *", "America/New_York", FIXED_HOUR_RULE, id="fixed"),
        pytest.param("*/15 1 * * *", "Europe/London", FIXED_HOUR_RULE, id="starred-minute"),
        pytest.param("0 */3 * * *", "America/Havana", FIXED_HOUR_RULE, id="every-3-hours"),
        pytest.param("0 9 * * *", "Asia/Shanghai", None, id="no-dst"),
        pytest.param("0 9 * * *", "UTC", None, id="utc"),
    ],
)
def test_the_daylight_saving_rule_is_stated(expression: str, zone: str, rule: str | None) -> None:
    result = explain(expression, zone, 1, after=datetime(2024, 1, 1, tzinfo=UTC))
    assert result.daylight_saving == rule
    assert (f"daylight saving: {rule}" in result.format()) is (rule is not None)


def test_the_rule_text_is_the_one_function() -> None:
    assert daylight_saving_rule(every_hour=True) == EVERY_HOUR_RULE
    assert daylight_saving_rule(every_hour=False) == FIXED_HOUR_RULE


def test_the_rule_is_stated_when_a_listed_fire_is_past_the_year() -> None:
    # Kathmandu changed once, on 1986-01-01; a yearly job's first fire crosses it.
    result = explain("0 0 1 1 *", "Asia/Kathmandu", 1, after=datetime(1985, 1, 2, tzinfo=UTC))
    assert result.daylight_saving == FIXED_HOUR_RULE
    assert [w.kind for w in result.warnings] == ["gap"]


README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_readme_example_is_reproduced_on_any_day(capsys: pytest.CaptureFixture[str]) -> None:
    (example,) = re.findall(r"^\$ (lark-scheduler cron explain .*--from .*)\n((?:[^`].*\n)+)",
                            README, re.M)
    command, output = example
    argv = [part.strip('"') for part in re.findall(r'"[^"]*"|\S+', command)][1:]
    assert main(argv) == 0
    assert capsys.readouterr().out == output


@pytest.mark.parametrize(
    ("start", "first"),
    [
        pytest.param("2024-11-03", "2024-11-03T01:30:00-04:00", id="date-is-local-midnight"),
        pytest.param("2024-11-03T01:30", "2024-11-03T01:30:00-04:00", id="at-a-fire-lists-it"),
        pytest.param("2024-11-03T01:31", "2024-11-04T01:30:00-05:00", id="just-after"),
        pytest.param("2024-11-03T05:30Z", "2024-11-03T01:30:00-04:00", id="utc-instant"),
        pytest.param("2024-11-03T05:31+00:00", "2024-11-04T01:30:00-05:00", id="with-offset"),
    ],
)
def test_from(start: str, first: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["cron", "explain", "30 1 * * *", "--tz", "America/New_York", "-n", "1"]
    assert main([*argv, "--from", start, "--json"]) == 0
    answer = msgspec.json.decode(capsys.readouterr().out)
    assert answer["next_fires"] == [first]
    assert answer["daylight_saving"] == FIXED_HOUR_RULE


@pytest.mark.parametrize(
    ("start", "message"),
    [
        pytest.param("tomorrow", "--from 'tomorrow' is not a date or time; write an ISO 8601 "
                     "date or time, e.g. 2027-03-13, 2027-03-13T02:00 (a local time in --tz) "
                     "or 2027-03-13T07:00Z", id="word"),
        pytest.param("2024-13-01", "--from '2024-13-01' is not a date or time", id="month-13"),
        pytest.param("0001-01-01", "--from '0001-01-01' is too near the ends of the calendar "
                     "(years 1-9999)", id="start-of-time"),
    ],
)
def test_from_refuses_what_is_not_a_time(
    start: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cron", "explain", "0 9 * * *", "--tz", "America/New_York", "--from", start]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"lark-scheduler: error: {message}")
    assert err.count("\n") == 1
