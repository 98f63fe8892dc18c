"""Reading cron expressions as Vixie/Debian cron does, whatever croniter version is installed.

Issue 10's table, row by row, through every door a user has: ``CronTrigger``,
``Kernel.add_cron_job`` (on the virtual clock) and ``cron explain`` (function and command).
Then the canonical form (equal spellings share it, so it can key shared state), the day rule,
reversed ranges, and which hour fields count as "every hour" in a repeated hour.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from actors.cli import main
from kernel.cron_explain import explain
from kernel.errors import InvalidJobError
from kernel.schedule._cron import croniter_form, parse_cron
from kernel.schedule._cron_parse import CronSpec, parse_expression
from kernel.triggers import CronTrigger
from tests.kernel_helpers import starts, virtual_kernel

# 2024-05-15 is a Wednesday.
AFTER = datetime(2024, 5, 15, 10, 30, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


SUNDAYS = [utc(2024, 5, 19), utc(2024, 5, 26), utc(2024, 6, 2)]

# (expression, its next three fires after AFTER in UTC, its description)
TABLE = [
    pytest.param(
        "0 9-9 * * *",
        [utc(2024, 5, 16, 9), utc(2024, 5, 17, 9), utc(2024, 5, 18, 9)],
        "at 09:00 every day",
        id="hour-9-9-is-0900-daily",
    ),
    pytest.param(
        "5-5 * * * *",
        [utc(2024, 5, 15, 11, 5), utc(2024, 5, 15, 12, 5), utc(2024, 5, 15, 13, 5)],
        "every hour at minute 5",
        id="minute-5-5",
    ),
    pytest.param(
        "0 0 15-15 * *",
        [utc(2024, 6, 15), utc(2024, 7, 15), utc(2024, 8, 15)],
        "at 00:00 on day 15 of the month",
        id="day-15-15",
    ),
    pytest.param(
        "0 0 1 6-6 *",
        [utc(2024, 6, 1), utc(2025, 6, 1), utc(2026, 6, 1)],
        "at 00:00 on day 1 of the month in June",
        id="month-6-6",
    ),
    pytest.param("0 0 * * 7-7", SUNDAYS, "at 00:00 on Sunday", id="weekday-7-7-is-sunday"),
    pytest.param("0 0 * * 0-0", SUNDAYS, "at 00:00 on Sunday", id="weekday-0-0-is-sunday"),
    pytest.param("0 0 * * sun-sun", SUNDAYS, "at 00:00 on Sunday", id="weekday-sun-sun"),
    pytest.param(
        "0-0 12 * * *",
        [utc(2024, 5, 15, 12), utc(2024, 5, 16, 12), utc(2024, 5, 17, 12)],
        "at 12:00 every day",
        id="minute-0-0",
    ),
    pytest.param(
        "1-1/2 * * * *",
        [utc(2024, 5, 15, 11, 1), utc(2024, 5, 15, 12, 1), utc(2024, 5, 15, 13, 1)],
        "every hour at minute 1",
        id="minute-1-1-step-2",
    ),
    pytest.param(
        "0 1-1/2 * * *",
        [utc(2024, 5, 16, 1), utc(2024, 5, 17, 1), utc(2024, 5, 18, 1)],
        "at 01:00 every day",
        id="hour-1-1-step-2",
    ),
    pytest.param(
        "0 0 1-1/2 * *",
        [utc(2024, 6, 1), utc(2024, 7, 1), utc(2024, 8, 1)],
        "at 00:00 on day 1 of the month",
        id="day-1-1-step-2",
    ),
    pytest.param(
        "0 0 1 1-1/2 *",
        [utc(2025, 1, 1), utc(2026, 1, 1), utc(2027, 1, 1)],
        "at 00:00 on day 1 of the month in January",
        id="month-1-1-step-2",
    ),
    pytest.param(
        "0 0 * * 1-1/2",
        [utc(2024, 5, 20), utc(2024, 5, 27), utc(2024, 6, 3)],
        "at 00:00 on Monday",
        id="weekday-1-1-step-2",
    ),
    pytest.param("0 0 * * 7/2", SUNDAYS, "at 00:00 on Sunday", id="weekday-7-step-2-is-sunday"),
    # Day rule: a leading `*` in either day field means both must match (AND).
    pytest.param(
        "* * 4 * */5",
        [utc(2024, 8, 4, 0, 0), utc(2024, 8, 4, 0, 1), utc(2024, 8, 4, 0, 2)],
        "every minute on day 4 of the month when it falls on Sunday or Friday",
        id="day-4-and-starred-weekday-step",
    ),
]


@pytest.mark.parametrize(("expression", "fires", "description"), TABLE)
def test_cron_trigger(expression: str, fires: list[datetime], description: str) -> None:
    trigger = CronTrigger(expression, "UTC")
    assert trigger.next_fire_times(AFTER, 3) == fires
    assert trigger.describe() == f"{description} (UTC)"


@pytest.mark.parametrize(("expression", "fires", "description"), TABLE)
def test_cron_explain(expression: str, fires: list[datetime], description: str) -> None:
    result = explain(expression, "UTC", 3, after=AFTER)
    assert result.description == description
    assert list(result.next_fires) == fires


@pytest.mark.parametrize(("expression", "fires", "description"), TABLE)
def test_cron_explain_command(
    expression: str, fires: list[datetime], description: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    start = (AFTER + timedelta(seconds=1)).isoformat()
    assert main(["cron", "explain", expression, "--tz", "UTC", "-n", "3", "--from", start]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{expression!r} in UTC: {description}"
    assert lines[2:5] == [f"  {fire.isoformat()}  ({fire:%a} UTC)" for fire in fires]


@pytest.mark.parametrize(("expression", "fires", "description"), TABLE)
async def test_add_cron_job(expression: str, fires: list[datetime], description: str) -> None:
    # From a minute before the first fire (no fire lies between AFTER and it): the virtual
    # clock need not run through months.
    start = fires[0] - timedelta(minutes=1)
    async with virtual_kernel(start, timezone="UTC") as (kernel, clock, recorder):
        job = kernel.add_cron_job(lambda: None, expression, job_id="job")
        assert job.next_run_time == fires[0]
        await clock.advance(timedelta(minutes=1, seconds=1))
        assert starts(recorder.take(), UTC) == [f"{fires[0]:%Y-%m-%d %H:%M:%S%z}"]
        assert kernel.get_job("job").next_run_time == fires[1]


REFUSED = [
    pytest.param(
        "0 0 * * 1,*",
        "cron expression '0 0 * * 1,*': day_of_week '1,*' lists '*' with other values, but "
        "'*' alone already matches every value; write '*' or list only the values you mean",
        id="star-in-weekday-list",
    ),
    pytest.param(
        "*,0 * * * *",
        "cron expression '*,0 * * * *': minute '*,0' lists '*' with other values",
        id="star-in-minute-list",
    ),
    pytest.param("0 0 *,* * *", "day '*,*' lists '*' with other values", id="star-twice"),
    pytest.param(
        "0 0 * * 5-1",
        "cron expression '0 0 * * 5-1': day_of_week '5-1' is a reversed range, which classic "
        "cron refuses; write '5-6,0-1' instead",
        id="reversed-weekdays",
    ),
    pytest.param(
        "0 0 * * FRI-MON",
        "day_of_week 'FRI-MON' is a reversed range, which classic cron refuses; "
        "write '5-6,0-1' instead",
        id="reversed-weekday-names",
    ),
    pytest.param("0 0 * * 6-0", "write '6,0' instead", id="reversed-saturday-sunday"),
    pytest.param("0 0 * * 7-1", "write '0-1' instead", id="reversed-from-7"),
    pytest.param(
        "50-10 * * * *", "minute '50-10' is a reversed range", id="reversed-minutes"
    ),
    pytest.param("0 22-2 * * *", "hour '22-2' is a reversed range, which classic cron "
                 "refuses; write '22-23,0-2' instead", id="reversed-hours"),
    pytest.param("0 22-2/2 * * *", "write '22-23/2,0-2/2' instead", id="reversed-with-step"),
    pytest.param("0 0 28-3 * *", "write '28-31,1-3' instead", id="reversed-days"),
    pytest.param("0 0 1 NOV-FEB *", "write '11-12,1-2' instead", id="reversed-months"),
    pytest.param(
        "0 0 31 2 */2",
        "day 31 never occurs in month 2, so it would never fire",
        id="starred-weekday-makes-feb-31-count",
    ),
]


@pytest.mark.parametrize(("expression", "message"), REFUSED)
def test_refused_by_cron_trigger(expression: str, message: str) -> None:
    with pytest.raises(InvalidJobError) as info:
        CronTrigger(expression, "UTC")
    assert message in str(info.value)


@pytest.mark.parametrize(("expression", "message"), REFUSED)
async def test_refused_by_add_cron_job(expression: str, message: str) -> None:
    async with virtual_kernel(AFTER, timezone="UTC") as (kernel, _clock, _recorder):
        with pytest.raises(InvalidJobError) as info:
            kernel.add_cron_job(lambda: None, expression, job_id="job")
        assert message in str(info.value)
        assert kernel.get_jobs() == []


@pytest.mark.parametrize(("expression", "message"), REFUSED)
def test_refused_by_cron_explain(
    expression: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InvalidJobError) as info:
        explain(expression, "UTC", 3, after=AFTER)
    assert message in str(info.value)
    assert main(["cron", "explain", expression]) == 2
    assert message in capsys.readouterr().err


# -- the canonical form ----------------------------------------------------------------------

SAME = [
    pytest.param(["0 9-9 * * *", "0 9 * * *", "0 09 * * *"], id="equal-ends"),
    pytest.param(
        ["0 0 * * 7/2", "0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * 0-0", "@weekly"],
        id="sunday",
    ),
    pytest.param(["0 0 * * 5-7", "0 0 * * 0,5,6", "0 0 * * FRI-SAT,sun"], id="7-in-a-range"),
    pytest.param(["0 0 * * MON/2", "0 0 * * 1,3,5,7"], id="name-with-step"),
    pytest.param(["1-1/2 * * * *", "1 * * * *"], id="single-value-range-with-step"),
    pytest.param(["5/20 * * * *", "5,25,45 * * * *", "5-59/20 * * * *"], id="start-with-step"),
    pytest.param(
        ["0 * * * *", "0 0-23 * * *", "0 */1 * * *", "@hourly"], id="every-hour-spellings"
    ),
    pytest.param(
        ["0 0 * * *", "0 0 * * 0-7", "0 0 * * */1", "0 0 1-31 * *", "0 0 1-31 * MON", "@daily"],
        id="every-day-spellings",
    ),
    # Both day fields restricted, no leading `*`: either may match, and 31 never
    # occurs in February, so only the weekday counts.
    pytest.param(["0 0 31 2 MON", "0 0 * 2 MON"], id="feb-31-or-monday"),
    pytest.param(["0 0 30,31 2,4 *", "0 0 30 2,4 *"], id="days-no-month-has-dropped"),
    # A leading `*` with every value is no restriction: only the other field counts.
    pytest.param(["0 0 */1 * MON", "0 0 * * MON"], id="starred-all-days"),
]


@pytest.mark.parametrize("spellings", SAME)
def test_equal_spellings_share_one_canonical_form(spellings: list[str]) -> None:
    specs = {parse_expression(text) for text in spellings}  # hashable, so a cache key
    assert len(specs) == 1
    assert len({id(parse_cron(text)) for text in spellings}) == 1  # one shared croniter
    assert len({CronTrigger(text, "UTC") for text in spellings}) == 1


DIFFERENT = [
    # A leading `*` makes both day fields count; without it, either will do.
    pytest.param("* * 4 * */5", "* * 4 * 0,5", id="and-versus-or"),
    pytest.param("0 0 1-31 * MON", "0 0 * * MON", id="all-days-or-monday-is-every-day"),
    pytest.param("0 0 1-31/1 * MON", "0 0 */1 * MON", id="leading-star-decides"),
]


@pytest.mark.parametrize(("one", "other"), DIFFERENT)
def test_different_meanings_have_different_forms(one: str, other: str) -> None:
    assert parse_expression(one) != parse_expression(other)
    assert CronTrigger(one, "UTC") != CronTrigger(other, "UTC")


@pytest.mark.parametrize(
    ("expression", "spec"),
    [
        pytest.param("0 9 * * 1-5", CronSpec((0,), (9,), None, None, (1, 2, 3, 4, 5)),
                     id="weekdays"),
        pytest.param("*/20 * 1,15 * MON", CronSpec((0, 20, 40), None, (1, 15), None, (1,),
                                                    day_or=True), id="either-day"),
        pytest.param("0 0 */10 * 5-7", CronSpec((0,), (0,), (1, 11, 21, 31), None, (0, 5, 6)),
                     id="both-days"),
        pytest.param("0 0 * * */4", CronSpec((0,), (0,), None, None, (0, 4)), id="star-4"),
        pytest.param("0 0 * * 6/1", CronSpec((0,), (0,), None, None, (0, 6)), id="6-to-7"),
        pytest.param("@yearly", CronSpec((0,), (0,), (1,), (1,), None), id="yearly"),
    ],
)
def test_canonical_form(expression: str, spec: CronSpec) -> None:
    assert parse_expression(expression) == spec


@pytest.mark.parametrize(
    ("expression", "form"),
    [
        pytest.param("0 9-9 * * 7-7", ("0 9 * * 0", False), id="equal-ends-and-7"),
        pytest.param("*/20 * 1,15 * MON", ("0,20,40 * 1,15 * 1", True), id="either-day"),
        pytest.param("* * 4 * */5", ("* * 4 * 0,5", False), id="both-days"),
        pytest.param("0 0 * 2 SAT-7", ("0 0 * 2 0,6", False), id="weekday-range-to-7"),
    ],
)
def test_croniter_gets_plain_lists_only(expression: str, form: tuple[str, bool]) -> None:
    # Ranges, steps and 7 changed meaning between croniter versions; lists and `*` did not.
    assert croniter_form(parse_expression(expression)) == form


# -- "every hour" in a repeated hour ---------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "every_hour"),
    [
        pytest.param("*", True, id="star"),
        pytest.param("*/1", True, id="star-step-1"),
        pytest.param("0-23", True, id="full-range"),
        pytest.param("0-23/1", True, id="full-range-step-1"),
        pytest.param(",".join(map(str, range(24))), True, id="all-24-listed"),
        pytest.param("0-11,12-23", True, id="two-halves"),
        pytest.param("*/2", False, id="star-step-2"),
        pytest.param("*/3", False, id="star-step-3"),
        pytest.param("0-22", False, id="23-hours"),
        pytest.param("1-23", False, id="not-midnight"),
        pytest.param("1", False, id="one-hour"),
    ],
)
def test_every_hour_means_all_24_hours_however_written(hours: str, every_hour: bool) -> None:
    expression = f"0 {hours} * * *"
    assert parse_expression(expression).every_hour is every_hour
    assert CronTrigger(expression).hour_is_wildcard is every_hour
