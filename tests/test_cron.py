"""Cron expressions: next fire times (no daylight saving here), descriptions, bad input."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kernel.errors import InvalidJobError
from kernel.schedule import _cron
from kernel.schedule._cron_zone import _MEMO_LIMIT
from kernel.triggers import CronTrigger

SH = ZoneInfo("Asia/Shanghai")
# 2024-05-15 is a Wednesday.
WED_1030 = datetime(2024, 5, 15, 10, 30, tzinfo=SH)


def sh(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=SH)


NEXT_FIRE_CASES = [
    # The seed's examples, in the seed's zone.
    pytest.param("0 0 * * *", WED_1030, sh(2024, 5, 16, 0, 0), id="seed-midnight"),
    pytest.param("0 9 * * 1-5", WED_1030, sh(2024, 5, 16, 9, 0), id="seed-weekdays-9-thu"),
    pytest.param(
        "0 9 * * 1-5",
        sh(2024, 5, 17, 10, 0),
        sh(2024, 5, 20, 9, 0),
        id="seed-weekdays-9-skips-weekend",
    ),
    pytest.param(
        "0 9 * * 1-5",
        sh(2024, 5, 20, 8, 59, 59),
        sh(2024, 5, 20, 9, 0),
        id="seed-weekdays-9-same-morning",
    ),
    pytest.param("*/15 * * * *", WED_1030, sh(2024, 5, 15, 10, 45), id="seed-every-15"),
    pytest.param(
        "*/15 * * * *",
        sh(2024, 5, 15, 23, 50),
        sh(2024, 5, 16, 0, 0),
        id="seed-every-15-over-midnight",
    ),
    pytest.param("0 0,12 * * *", WED_1030, sh(2024, 5, 15, 12, 0), id="seed-noon"),
    pytest.param(
        "0 0,12 * * *", sh(2024, 5, 15, 12, 0), sh(2024, 5, 16, 0, 0), id="seed-noon-then-midnight"
    ),
    pytest.param("0 0 1 * *", WED_1030, sh(2024, 6, 1, 0, 0), id="seed-first-of-month"),
    pytest.param("0 0 1 * *", sh(2024, 12, 5), sh(2025, 1, 1, 0, 0), id="seed-first-new-year"),
    pytest.param("0 9,18 * * *", WED_1030, sh(2024, 5, 15, 18, 0), id="seed-token-expiry"),
    pytest.param(
        "0 9,18 * * *",
        sh(2024, 5, 15, 18, 0),
        sh(2024, 5, 16, 9, 0),
        id="seed-token-expiry-next-morning",
    ),
    pytest.param("0 3 * * *", WED_1030, sh(2024, 5, 16, 3, 0), id="seed-cleanup"),
    pytest.param(
        "0 3 * * *",
        sh(2024, 5, 16, 2, 59),
        sh(2024, 5, 16, 3, 0),
        id="seed-cleanup-a-minute-before",
    ),
    pytest.param("0 8 * * *", WED_1030, sh(2024, 5, 16, 8, 0), id="seed-custom-8am"),
    # Strictly after: a fire instant is not its own successor, not even a second later.
    pytest.param("0 9 * * *", sh(2024, 5, 15, 9, 0), sh(2024, 5, 16, 9, 0), id="strictly-after"),
    pytest.param(
        "0 9 * * *",
        sh(2024, 5, 15, 9, 0, 0, 1),
        sh(2024, 5, 16, 9, 0),
        id="strictly-after-by-a-microsecond",
    ),
    pytest.param(
        "* * * * *",
        sh(2024, 5, 15, 10, 30, 59),
        sh(2024, 5, 15, 10, 31),
        id="every-minute-from-a-second-before",
    ),
    # `after` in another zone is the same instant.
    pytest.param(
        "0 9 * * *",
        datetime(2024, 5, 15, 0, 59, tzinfo=UTC),
        sh(2024, 5, 15, 9, 0),
        id="after-given-in-utc",
    ),
    # Names, any case; 0 and 7 are both Sunday.
    pytest.param(
        "0 9 * * MON-FRI", sh(2024, 5, 17, 10, 0), sh(2024, 5, 20, 9, 0), id="names-weekdays"
    ),
    pytest.param("0 9 * * mon,wed", WED_1030, sh(2024, 5, 20, 9, 0), id="names-lowercase"),
    pytest.param("0 9 * * Sun", WED_1030, sh(2024, 5, 19, 9, 0), id="names-mixed-case"),
    pytest.param("0 9 * * 0", WED_1030, sh(2024, 5, 19, 9, 0), id="sunday-0"),
    pytest.param("0 9 * * 7", WED_1030, sh(2024, 5, 19, 9, 0), id="sunday-7"),
    pytest.param("0 9 * * 5-7", sh(2024, 5, 13), sh(2024, 5, 17, 9, 0), id="fri-through-7"),
    pytest.param("0 9 * * 5-7", sh(2024, 5, 18, 10), sh(2024, 5, 19, 9, 0), id="fri-7-sunday"),
    pytest.param("0 0 1 JAN,jul *", WED_1030, sh(2024, 7, 1), id="names-months"),
    pytest.param("0 0 1 Oct-Dec *", WED_1030, sh(2024, 10, 1), id="names-month-range"),
    # Ranges, steps and lists.
    pytest.param("5/20 * * * *", WED_1030, sh(2024, 5, 15, 10, 45), id="start-with-step"),
    pytest.param("10-20/5 * * * *", WED_1030, sh(2024, 5, 15, 11, 10), id="range-with-step"),
    pytest.param(
        "0 22-23,0-2 * * *",
        sh(2024, 5, 15, 23, 30),
        sh(2024, 5, 16, 0, 0),
        id="hours-over-midnight",
    ),
    pytest.param("0 */6 * * *", WED_1030, sh(2024, 5, 15, 12, 0), id="every-6-hours-cron"),
    pytest.param("0 0 */10 * *", WED_1030, sh(2024, 5, 21), id="every-10th-day"),
    # Macros.
    pytest.param("@hourly", WED_1030, sh(2024, 5, 15, 11, 0), id="macro-hourly"),
    pytest.param("@daily", WED_1030, sh(2024, 5, 16), id="macro-daily"),
    pytest.param("@midnight", WED_1030, sh(2024, 5, 16), id="macro-midnight"),
    pytest.param("@weekly", WED_1030, sh(2024, 5, 19), id="macro-weekly-sunday"),
    pytest.param("@monthly", WED_1030, sh(2024, 6, 1), id="macro-monthly"),
    pytest.param("@yearly", WED_1030, sh(2025, 1, 1), id="macro-yearly"),
    pytest.param("@annually", WED_1030, sh(2025, 1, 1), id="macro-annually"),
    pytest.param("@DAILY", WED_1030, sh(2024, 5, 16), id="macro-uppercase"),
    pytest.param("  0 9 * * *  ", WED_1030, sh(2024, 5, 16, 9), id="surrounding-spaces"),
    pytest.param("0\t9  *\t*  *", WED_1030, sh(2024, 5, 16, 9), id="tabs-and-double-spaces"),
    # Both day fields restricted: a day matches if EITHER matches (classic cron).
    # 2024-06-01 is a Saturday; the next Monday is 06-03; AND would wait for 2024-07-01.
    pytest.param("0 0 1 * MON", sh(2024, 5, 28), sh(2024, 6, 1), id="dom-or-dow-dom-first"),
    pytest.param("0 0 1 * MON", sh(2024, 6, 1), sh(2024, 6, 3), id="dom-or-dow-dow-next"),
    pytest.param("0 0 13 * FRI", WED_1030, sh(2024, 5, 17), id="dom-or-dow-friday-first"),
    pytest.param("0 0 13 * FRI", sh(2024, 6, 8), sh(2024, 6, 13), id="dom-or-dow-13th-first"),
    # Only one day field restricted: just that one counts.
    pytest.param("0 0 13 * *", WED_1030, sh(2024, 6, 13), id="dom-only"),
    pytest.param("0 0 * * FRI", sh(2024, 5, 11), sh(2024, 5, 17), id="dow-only"),
    # Month ends and leap days.
    pytest.param("0 0 31 * *", sh(2024, 4, 15), sh(2024, 5, 31), id="31st-skips-april"),
    pytest.param("0 0 31 * *", sh(2024, 5, 31), sh(2024, 7, 31), id="31st-skips-june"),
    pytest.param("0 0 31 * *", sh(2024, 7, 31), sh(2024, 8, 31), id="31st-july-to-august"),
    pytest.param("0 0 30 * *", sh(2024, 2, 1), sh(2024, 3, 30), id="30th-skips-february"),
    pytest.param("0 0 29 * *", sh(2023, 2, 1), sh(2023, 3, 29), id="29th-skips-feb-2023"),
    pytest.param("0 0 29 * *", sh(2024, 2, 1), sh(2024, 2, 29), id="29th-in-feb-2024"),
    pytest.param("0 0 29 2 *", sh(2023, 6, 1), sh(2024, 2, 29), id="leap-day-next-year"),
    pytest.param("0 0 29 2 *", sh(2024, 3, 1), sh(2028, 2, 29), id="leap-day-four-years"),
    pytest.param("0 12 29 2 *", sh(2096, 3, 1), sh(2104, 2, 29, 12), id="leap-day-skips-2100"),
    pytest.param(
        "59 23 31 12 *",
        sh(2024, 12, 31, 23, 59),
        sh(2025, 12, 31, 23, 59),
        id="last-minute-of-year",
    ),
    pytest.param("0 0 1 1 *", sh(2024, 12, 31, 23, 59, 59), sh(2025, 1, 1), id="new-year"),
]


@pytest.mark.parametrize(("expression", "after", "expected"), NEXT_FIRE_CASES)
def test_next_fire_time(expression: str, after: datetime, expected: datetime) -> None:
    result = CronTrigger(expression, "Asia/Shanghai").next_fire_time(after)
    assert result == expected
    assert result is not None
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(sh(2024, 5, 15, 9, 0), sh(2024, 5, 15, 9, 0), id="at-a-fire-time"),
        pytest.param(sh(2024, 5, 15, 9, 0, 0, 1), sh(2024, 5, 15, 18, 0), id="just-after"),
        pytest.param(sh(2024, 5, 15, 8, 59, 59, 999999), sh(2024, 5, 15, 9, 0), id="just-before"),
    ],
)
def test_first_fire_time_is_at_or_after_now(now: datetime, expected: datetime) -> None:
    assert CronTrigger("0 9,18 * * *", "Asia/Shanghai").first_fire_time(now) == expected


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        pytest.param("Asia/Shanghai", datetime(2024, 5, 15, 1, 0, tzinfo=UTC), id="shanghai"),
        pytest.param("UTC", datetime(2024, 5, 15, 9, 0, tzinfo=UTC), id="utc"),
        pytest.param("Asia/Kolkata", datetime(2024, 5, 15, 3, 30, tzinfo=UTC), id="half-hour"),
        pytest.param("Asia/Kathmandu", datetime(2024, 5, 15, 3, 15, tzinfo=UTC), id="quarter-hour"),
        pytest.param("America/New_York", datetime(2024, 5, 15, 13, 0, tzinfo=UTC), id="new-york"),
    ],
)
def test_the_zone_decides_the_instant(zone: str, expected: datetime) -> None:
    trigger = CronTrigger("0 9 * * *", zone)
    assert trigger.next_fire_time(datetime(2024, 5, 15, 0, 0, tzinfo=UTC)) == expected


def test_the_next_ten_fires_of_weekdays_at_nine() -> None:
    trigger = CronTrigger("0 9 * * 1-5", "Asia/Shanghai")
    assert trigger.next_fire_times(WED_1030, 10) == [
        sh(2024, 5, day, 9) for day in (16, 17, 20, 21, 22, 23, 24, 27, 28, 29)
    ]


@pytest.mark.parametrize(
    ("expression", "wildcard"),
    [
        pytest.param("* * * * *", True, id="star"),
        pytest.param("0 * * * *", True, id="minute-fixed"),
        pytest.param("@hourly", True, id="hourly"),
        pytest.param("0 0-23 * * *", True, id="full-range"),
        pytest.param("0 */1 * * *", True, id="step-1"),
        pytest.param("0 */2 * * *", False, id="step-2"),
        pytest.param("0 1 * * *", False, id="fixed"),
        pytest.param("0 0-22 * * *", False, id="23-hours"),
        pytest.param("@daily", False, id="daily"),
    ],
)
def test_hour_is_wildcard(expression: str, wildcard: bool) -> None:
    assert CronTrigger(expression).hour_is_wildcard is wildcard


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        pytest.param("0 0 * * *", "at 00:00 every day", id="midnight"),
        pytest.param("0 9 * * 1-5", "at 09:00 on Monday through Friday", id="weekdays"),
        pytest.param("*/15 * * * *", "every 15 minutes", id="every-15"),
        pytest.param("0 0,12 * * *", "at 00:00 and 12:00 every day", id="twice"),
        pytest.param("0 0 1 * *", "at 00:00 on day 1 of the month", id="monthly"),
        pytest.param("0 9,18 * * *", "at 09:00 and 18:00 every day", id="token-expiry"),
        pytest.param("0 3 * * *", "at 03:00 every day", id="cleanup"),
        pytest.param("* * * * *", "every minute", id="every-minute"),
        pytest.param("@hourly", "every hour, on the hour", id="hourly"),
        pytest.param("30 * * * *", "every hour at minute 30", id="half-past"),
        pytest.param("@weekly", "at 00:00 on Sunday", id="weekly"),
        pytest.param("0 9 * * 0,7", "at 09:00 on Sunday", id="sunday-twice"),
        pytest.param("@yearly", "at 00:00 on day 1 of the month in January", id="yearly"),
        pytest.param("0 0 1 * MON", "at 00:00 on day 1 of the month or on Monday", id="or"),
        pytest.param("0 0 1,15 * *", "at 00:00 on days 1 and 15 of the month", id="two-days"),
        pytest.param("0 */2 * * *", "at minute 0 every 2 hours", id="every-2-hours"),
        pytest.param(
            "*/5 9-17 * * mon-fri",
            "every 5 minutes during hours 9-17 on Monday through Friday",
            id="office",
        ),
        pytest.param("* 9 * * *", "every minute during hour 9", id="one-hour"),
        pytest.param(
            "0 12 * JUN-AUG SAT,SUN",
            "at 12:00 on Sunday and Saturday in June through August",
            id="summer-weekends",
        ),
    ],
)
def test_describe(expression: str, text: str) -> None:
    assert CronTrigger(expression).describe() == text


BAD_EXPRESSIONS = [
    pytest.param(
        "",
        "cron expression '': expected 5 fields (minute hour day month day_of_week) "
        "or a macro (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly), "
        "got an empty string",
        id="empty",
    ),
    pytest.param("   ", "got an empty string", id="blank"),
    pytest.param(
        "0 9 * *",
        "cron expression '0 9 * *': expected 5 fields (minute hour day month day_of_week), got 4",
        id="four-fields",
    ),
    pytest.param(
        "0", "expected 5 fields (minute hour day month day_of_week), got 1", id="one-field"
    ),
    pytest.param(
        "0 0 9 * * *",
        "cron expression '0 0 9 * * *': expected 5 fields (minute hour "
        "day month day_of_week), got 6; a sixth field (seconds) is not supported",
        id="six-fields-seconds",
    ),
    pytest.param(
        "0 0 9 * * * 2024", "got 7; seconds and year fields are not supported", id="seven-fields"
    ),
    pytest.param(
        "0 25 * * *", "cron expression '0 25 * * *': hour 25 is out of range 0-23", id="hour-25"
    ),
    pytest.param("60 * * * *", "minute 60 is out of range 0-59", id="minute-60"),
    pytest.param("0 0 0 * *", "day 0 is out of range 1-31", id="day-0"),
    pytest.param("0 0 32 * *", "day 32 is out of range 1-31", id="day-32"),
    pytest.param("0 0 * 13 *", "month 13 is out of range 1-12 or JAN-DEC", id="month-13"),
    pytest.param("0 0 * 0 *", "month 0 is out of range 1-12 or JAN-DEC", id="month-0"),
    pytest.param(
        "0 0 * * 8",
        "day_of_week 8 is out of range 0-7 (0 and 7 are Sunday) or SUN, "
        "MON, TUE, WED, THU, FRI, SAT",
        id="dow-8",
    ),
    pytest.param("0 20-25 * * *", "hour 25 is out of range 0-23", id="range-end-out"),
    pytest.param(
        "0 0 * FOO *", "month 'FOO' is not a known name; use 1-12 or JAN-DEC", id="unknown-month"
    ),
    pytest.param(
        "0 0 * * MONDAY",
        "day_of_week 'MONDAY' is not a known name; use 0-7 (0 and 7 "
        "are Sunday) or SUN, MON, TUE, WED, THU, FRI, SAT",
        id="full-day-name",
    ),
    pytest.param("0 0 * MON *", "month 'MON' is not a known name", id="weekday-in-month"),
    pytest.param("0 0 * * JAN", "day_of_week 'JAN' is not a known name", id="month-in-weekday"),
    pytest.param("0 noon * * *", "hour 'noon' is not a number; use 0-23", id="word-in-hour"),
    pytest.param("abc * * * *", "minute 'abc' is not a number; use 0-59", id="garbage-minute"),
    pytest.param("0 0 1-x * *", "day 'x' is not a number; use 1-31", id="garbage-range"),
    pytest.param(
        "1-2-3 * * * *",
        "minute '1-2-3' is not valid; use 0-59 with '*', ',', '-' and "
        "'/' (e.g. '*/15', '1-5', '0,30')",
        id="double-range",
    ),
    pytest.param(
        "0 0 * * */x",
        "day_of_week '*/x': step 'x' is not a number; write e.g. '*/15'",
        id="garbage-step",
    ),
    pytest.param(
        "1,,2 * * * *",
        "minute '1,,2' has an empty list item; separate values with single commas, e.g. '0,30'",
        id="empty-list-item",
    ),
    pytest.param("-5 * * * *", "minute '-5' is not valid", id="negative"),
    pytest.param("０ 9 * * *", "minute '０' is not valid", id="fullwidth-digit"),
    pytest.param(
        "*/0 * * * *",
        "cron expression '*/0 * * * *': minute '*/0': step 0 is not allowed; use 1 or more",
        id="step-0",
    ),
    pytest.param(
        "*/60 * * * *",
        "minute '*/60': step 60 is larger than the field's range 0-59 "
        "and would match only once; for a longer period use an interval trigger",
        id="step-too-big",
    ),
    pytest.param(
        "0 0 L * *",
        "cron expression '0 0 L * *': day 'L': the special characters L, "
        "W, # and ? are not supported; use numbers, names, '*', ',', '-' and '/'",
        id="L",
    ),
    pytest.param(
        "0 0 15W * *", "day '15W': the special characters L, W, # and ? are not supported", id="W"
    ),
    pytest.param("0 0 LW * *", "day 'LW': the special characters", id="LW"),
    pytest.param(
        "0 0 * * MON#2",
        "day_of_week 'MON#2': the special characters L, W, # and ? are not supported",
        id="hash",
    ),
    pytest.param("0 0 * * 5L", "day_of_week '5L': the special characters", id="last-friday"),
    pytest.param(
        "0 0 ? * MON",
        "day '?': the special characters L, W, # and ? are not supported",
        id="question-mark",
    ),
    pytest.param("H * * * *", "minute 'H' is not a number; use 0-59", id="jenkins-hash"),
    pytest.param(
        "@reboot",
        "cron expression '@reboot': '@reboot' is not a supported macro; use "
        "one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
        id="reboot",
    ),
    pytest.param("@every_5m", "'@every_5m' is not a supported macro", id="unknown-macro"),
    pytest.param(
        "0 0 31 2 *",
        "cron expression '0 0 31 2 *': day 31 never occurs in month 2, "
        "so it would never fire; check the day and month fields",
        id="feb-31",
    ),
    pytest.param(
        "0 0 30,31 FEB *",
        "day 30,31 never occurs in month FEB, so it would never fire",
        id="feb-30-31",
    ),
    pytest.param("0 0 31 4,6,9,11 *", "day 31 never occurs in month 4,6,9,11", id="short-months"),
]


@pytest.mark.parametrize(("expression", "message"), BAD_EXPRESSIONS)
def test_bad_expression(expression: str, message: str) -> None:
    with pytest.raises(InvalidJobError) as info:
        CronTrigger(expression)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param(5, id="int"),
        pytest.param(b"0 9 * * *", id="bytes"),
    ],
)
def test_expression_must_be_a_string(value: Any) -> None:
    with pytest.raises(InvalidJobError) as info:
        CronTrigger(value)
    assert str(info.value).startswith("cron_expression must be a string like '0 9 * * *', not ")


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("0 0 31 2 MON", id="or-rescues-feb-31"),
        pytest.param("0 0 29 2 *", id="leap-day"),
        pytest.param("0 0 30,31 1,2 *", id="some-month-has-it"),
    ],
)
def test_expressions_that_can_fire_are_accepted(expression: str) -> None:
    assert CronTrigger(expression, "UTC").next_fire_time(datetime(2024, 1, 1, tzinfo=UTC))


def test_feb_31_or_monday_fires_on_mondays_in_february() -> None:
    trigger = CronTrigger("0 0 31 2 MON", "UTC")
    assert trigger.next_fire_times(datetime(2024, 1, 1, tzinfo=UTC), 3) == [
        datetime(2024, 2, day, tzinfo=UTC) for day in (5, 12, 19)
    ]


def test_same_expression_and_zone_share_one_schedule_and_its_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[datetime] = []
    real = _cron.ParsedCron.naive_next

    def counting(self: _cron.ParsedCron, start: datetime) -> datetime | None:
        calls.append(start)
        return real(self, start)

    monkeypatch.setattr(_cron.ParsedCron, "naive_next", counting)
    after = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)  # a moment no other test asks about
    jobs = [CronTrigger("7 9,18 * * 1-5", "Asia/Shanghai") for _ in range(1000)]
    jobs += [CronTrigger("7 9,18 * * MON-FRI", "Asia/Shanghai") for _ in range(1000)]
    answers = {job.next_fire_time(after) for job in jobs}
    assert answers == {sh(2031, 3, 4, 18, 7)}
    assert len(calls) == 1
    # Any moment up to the answer has the same answer, so it is not computed again either.
    assert jobs[5].next_fire_time(sh(2031, 3, 4, 18, 6, 59)) == sh(2031, 3, 4, 18, 7)
    assert jobs[6].first_fire_time(sh(2031, 3, 4, 13, 30)) == sh(2031, 3, 4, 18, 7)
    assert len(calls) == 1
    # The answer itself is not in its interval: the next fire is computed afresh.
    assert jobs[7].next_fire_time(sh(2031, 3, 4, 18, 7)) == sh(2031, 3, 5, 9, 7)
    assert len(calls) == 2
    # Another zone is another schedule.
    assert CronTrigger("7 9,18 * * 1-5", "UTC").next_fire_time(after) == datetime(
        2031, 3, 4, 9, 7, tzinfo=UTC
    )
    assert len(calls) == 3


def test_the_memo_stays_bounded_and_correct() -> None:
    trigger = CronTrigger("*/5 * * * *", "Europe/Paris")
    start = datetime(2030, 1, 1, tzinfo=UTC)
    current = start
    for _ in range(2000):
        following = trigger.next_fire_time(current)
        assert following is not None
        current = following
    assert current == datetime(2030, 1, 7, 22, 40, tzinfo=UTC)
    assert 0 < len(trigger._schedule._memo) <= _MEMO_LIMIT  # type: ignore[union-attr]
    assert trigger.next_fire_time(start) == datetime(2030, 1, 1, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "after"),
    [
        pytest.param("UTC", datetime(9999, 6, 1, tzinfo=UTC), id="utc"),
        pytest.param("Asia/Shanghai", datetime(9999, 12, 31, 23, 59, tzinfo=UTC), id="shanghai"),
        pytest.param("America/New_York", datetime(9999, 12, 31, tzinfo=UTC), id="new-york"),
    ],
)
def test_no_fire_past_the_end_of_time(zone: str, after: datetime) -> None:
    assert CronTrigger("0 0 1 1 *", zone).next_fire_time(after) is None


def test_threads_sharing_a_schedule_get_the_same_answers_as_one_thread() -> None:
    expression = "*/7 1-5 * * 1-5"  # only this test uses it, so its schedule starts empty
    starts = [datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=37 * i) for i in range(400)]
    private_zone = ZoneInfo.no_cache("America/New_York")  # another zone object: own schedule
    expected = [CronTrigger(expression, private_zone).next_fire_time(s) for s in starts]
    shared = CronTrigger(expression, "America/New_York")
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to expose races
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            rounds = list(pool.map(lambda _: [shared.next_fire_time(s) for s in starts], range(8)))
    finally:
        sys.setswitchinterval(interval)
    assert rounds == [expected] * 8
