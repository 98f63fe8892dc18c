"""Interval and date triggers, timezones, specs, and the CronTrigger object's contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import kernel.triggers as triggers_module
from kernel.errors import InvalidJobError
from kernel.triggers import (
    CronTrigger,
    DateTrigger,
    IntervalTrigger,
    Trigger,
    resolve_timezone,
    trigger_from_spec,
)

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")


def test_all_names_exist() -> None:
    assert sorted(triggers_module.__all__) == [
        "CronTrigger",
        "DateTrigger",
        "IntervalTrigger",
        "Trigger",
        "resolve_timezone",
        "trigger_from_spec",
    ]
    for name in triggers_module.__all__:
        assert getattr(triggers_module, name) is not None


# -- interval ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "interval", "text"),
    [
        pytest.param({"hours": 6}, timedelta(hours=6), "every 6 hours", id="seed-sync-6h"),
        pytest.param({"minutes": 5}, timedelta(minutes=5), "every 5 minutes", id="seed-health-5m"),
        pytest.param(
            {"days": 1, "hours": 2}, timedelta(hours=26), "every 1 day, 2 hours", id="day-and-hours"
        ),
        pytest.param({"weeks": 2}, timedelta(days=14), "every 2 weeks", id="weeks"),
        pytest.param({"days": 8}, timedelta(days=8), "every 1 week, 1 day", id="days-over-week"),
        pytest.param({"hours": 1}, timedelta(hours=1), "every 1 hour", id="singular"),
        pytest.param(
            {"seconds": 1.5}, timedelta(seconds=1.5), "every 1.5 seconds", id="fractional-seconds"
        ),
        pytest.param({"seconds": 1}, timedelta(seconds=1), "every 1 second", id="one-second"),
        pytest.param(
            {"minutes": 1, "seconds": 30},
            timedelta(seconds=90),
            "every 1 minute, 30 seconds",
            id="minute-and-seconds",
        ),
        pytest.param(
            {"hours": 1.5}, timedelta(minutes=90), "every 1 hour, 30 minutes", id="fractional-hours"
        ),
        pytest.param(
            {"seconds": 0.000001},
            timedelta(microseconds=1),
            "every 0.000001 seconds",
            id="one-microsecond",
        ),
    ],
)
def test_interval_length_and_description(
    kwargs: dict[str, float], interval: timedelta, text: str
) -> None:
    trigger = IntervalTrigger(**kwargs)  # type: ignore[arg-type]
    assert trigger.interval == interval
    assert trigger.interval_seconds == interval.total_seconds()
    assert trigger.describe() == text
    assert trigger.start_date is None
    assert trigger.end_date is None
    assert trigger.jitter is None


def test_interval_description_mentions_window_and_jitter() -> None:
    trigger = IntervalTrigger(
        hours=6,
        start_date=datetime(2024, 1, 1, 8, tzinfo=SH),
        end_date=datetime(2024, 2, 1, tzinfo=UTC),
        jitter=30,
    )
    assert trigger.describe() == (
        "every 6 hours (from 2024-01-01T00:00:00+00:00, until 2024-02-01T00:00:00+00:00, "
        "jitter up to 30s)"
    )


def test_interval_dates_are_kept_in_utc() -> None:
    trigger = IntervalTrigger(hours=6, start_date=datetime(2024, 1, 1, 8, tzinfo=SH))
    assert trigger.start_date == datetime(2024, 1, 1, 0, tzinfo=UTC)
    assert trigger.start_date is not None
    assert trigger.start_date.tzinfo is UTC


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        pytest.param(0, datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC), id="k0-is-anchor"),
        pytest.param(1, datetime(2024, 1, 1, 0, 0, 0, 100_000, tzinfo=UTC), id="k1"),
        pytest.param(10, datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC), id="k10"),
        # Accumulating a float 0.1 ten million times drifts; multiplying does not.
        pytest.param(10_000_000, datetime(2024, 1, 12, 13, 46, 40, tzinfo=UTC), id="k10M"),
    ],
)
def test_interval_fire_time_multiplies_and_never_drifts(k: int, expected: datetime) -> None:
    trigger = IntervalTrigger(seconds=0.1)
    assert trigger.fire_time(datetime(2024, 1, 1, tzinfo=UTC), k) == expected


def test_interval_fire_time_of_six_hours_a_year_later() -> None:
    trigger = IntervalTrigger(hours=6)
    anchor = datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert trigger.fire_time(anchor, 4 * 366) == datetime(2025, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {}, "interval is zero; give it a positive length, use e.g. hours=6", id="nothing"
        ),
        pytest.param(
            {"hours": 0}, "interval is zero; give it a positive length, use e.g. hours=6", id="zero"
        ),
        pytest.param({"seconds": 1e-7}, "interval is zero", id="below-a-microsecond"),
        pytest.param(
            {"hours": -1}, "interval hours=-1 is negative; use e.g. hours=6", id="negative"
        ),
        pytest.param(
            {"hours": 6, "minutes": -5}, "interval minutes=-5 is negative", id="one-negative-part"
        ),
        pytest.param(
            {"hours": float("nan")}, "interval hours=nan is not a finite number", id="nan"
        ),
        pytest.param({"days": float("inf")}, "interval days=inf is not a finite number", id="inf"),
        pytest.param({"hours": "6"}, "interval hours must be a number, not str", id="string"),
        pytest.param({"hours": True}, "interval hours must be a number, not bool", id="bool"),
        pytest.param(
            {"hours": 6, "start_date": datetime(2024, 1, 1)},
            "start_date 2024-01-01T00:00:00 is naive; attach a timezone, "
            "e.g. datetime(2024, 1, 1, 9, 0, tzinfo=ZoneInfo('Asia/Shanghai'))",
            id="naive-start",
        ),
        pytest.param(
            {"hours": 6, "end_date": datetime(2024, 1, 1)},
            "end_date 2024-01-01T00:00:00 is naive; attach a timezone",
            id="naive-end",
        ),
        pytest.param(
            {"hours": 6, "start_date": "2024-01-01"},
            "start_date must be an aware datetime, not str",
            id="string-start",
        ),
        pytest.param(
            {
                "hours": 6,
                "start_date": datetime(2024, 2, 1, tzinfo=UTC),
                "end_date": datetime(2024, 1, 1, tzinfo=UTC),
            },
            "end_date 2024-01-01T00:00:00+00:00 is before start_date 2024-02-01T00:00:00+00:00",
            id="end-before-start",
        ),
        pytest.param(
            {"hours": 6, "jitter": -1},
            "jitter=-1 is negative; use None or a number",
            id="negative-jitter",
        ),
    ],
)
def test_interval_bad_input(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidJobError) as info:
        IntervalTrigger(**kwargs)
    assert message in str(info.value)


def test_interval_end_equal_to_start_is_allowed() -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    assert IntervalTrigger(hours=1, start_date=moment, end_date=moment).end_date == moment


def test_interval_equality_and_hash() -> None:
    assert IntervalTrigger(hours=6) == IntervalTrigger(minutes=360)
    assert hash(IntervalTrigger(hours=6)) == hash(IntervalTrigger(minutes=360))
    assert IntervalTrigger(hours=6) != IntervalTrigger(hours=6, jitter=1)
    assert IntervalTrigger(hours=6) != IntervalTrigger(hours=7)
    assert IntervalTrigger(hours=6) != DateTrigger(datetime(2024, 1, 1, tzinfo=UTC))


def test_interval_repr() -> None:
    assert repr(IntervalTrigger(hours=6)) == "IntervalTrigger(seconds=21600.0)"
    assert repr(IntervalTrigger(minutes=1, jitter=2)) == "IntervalTrigger(seconds=60.0, jitter=2.0)"


# -- date --------------------------------------------------------------------------------


def test_date_trigger_keeps_utc() -> None:
    trigger = DateTrigger(datetime(2024, 5, 1, 9, tzinfo=SH))
    assert trigger.run_date == datetime(2024, 5, 1, 1, tzinfo=UTC)
    assert trigger.run_date.tzinfo is UTC
    assert trigger.describe() == "once at 2024-05-01T01:00:00+00:00"
    assert trigger == DateTrigger(datetime(2024, 5, 1, 1, tzinfo=UTC))
    assert hash(trigger) == hash(DateTrigger(datetime(2024, 5, 1, 1, tzinfo=UTC)))
    assert repr(trigger) == (
        "DateTrigger(datetime.datetime(2024, 5, 1, 1, 0, tzinfo=datetime.timezone.utc))"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            datetime(2024, 5, 1, 9),
            "run_date 2024-05-01T09:00:00 is naive; attach a "
            "timezone, e.g. datetime(2024, 1, 1, 9, 0, tzinfo=ZoneInfo('Asia/Shanghai'))",
            id="naive",
        ),
        pytest.param(
            "2024-05-01",
            "run_date must be an aware datetime, not str; attach a "
            "timezone, e.g. datetime(2024, 1, 1, 9, 0, tzinfo=ZoneInfo('Asia/Shanghai'))",
            id="string",
        ),
        pytest.param(
            None,
            "run_date must be an aware datetime, not NoneType; attach a "
            "timezone, e.g. datetime(2024, 1, 1, 9, 0, tzinfo=ZoneInfo('Asia/Shanghai'))",
            id="none",
        ),
    ],
)
def test_date_bad_input(value: Any, message: str) -> None:
    with pytest.raises(InvalidJobError) as info:
        DateTrigger(value)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "trigger",
    [
        pytest.param(IntervalTrigger(hours=6), id="interval"),
        pytest.param(CronTrigger("0 9 * * *"), id="cron"),
        pytest.param(DateTrigger(datetime(2024, 5, 1, tzinfo=UTC)), id="date"),
    ],
)
@pytest.mark.parametrize("attribute", ["jitter", "run_date", "expression", "other"])
def test_triggers_are_immutable(trigger: Trigger, attribute: str) -> None:
    with pytest.raises(AttributeError, match="is immutable; build a new one instead"):
        setattr(trigger, attribute, 5)
    with pytest.raises(AttributeError, match="is immutable"):
        delattr(trigger, attribute)
    assert not hasattr(trigger, "__dict__")


# -- timezones ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "key"),
    [
        pytest.param("Asia/Shanghai", "Asia/Shanghai", id="name"),
        pytest.param(ZoneInfo("Europe/London"), "Europe/London", id="zoneinfo"),
        pytest.param("UTC", "UTC", id="utc-name"),
        pytest.param(UTC, "UTC", id="datetime-utc"),
        pytest.param(timezone(timedelta(hours=8)), "Etc/GMT-8", id="fixed-plus-8"),
        pytest.param(timezone(timedelta(hours=-5)), "Etc/GMT+5", id="fixed-minus-5"),
    ],
)
def test_resolve_timezone(given: Any, key: str) -> None:
    assert resolve_timezone(given).key == key


def test_fixed_offset_zone_keeps_the_offset() -> None:
    zone = resolve_timezone(timezone(timedelta(hours=8)))
    assert datetime(2024, 7, 1, tzinfo=zone).utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    ("given", "field", "message"),
    [
        pytest.param(
            "Asia/Shangai",
            "timezone",
            "timezone 'Asia/Shangai' is not a known IANA zone; use a name like "
            "'Asia/Shanghai' or 'UTC'",
            id="typo",
        ),
        pytest.param(
            "asia/shanghai",
            "timezone",
            "timezone 'asia/shanghai' is not a known IANA zone; use a name like "
            "'Asia/Shanghai' or 'UTC'",
            id="wrong-case",
        ),
        pytest.param(
            "Europe/Lodnon",
            "tz",
            "tz 'Europe/Lodnon' is not a known IANA zone; use a name like 'Europe/London' or 'UTC'",
            id="field-name-is-used",
        ),
        pytest.param(
            "Mars/Olympus_Mons",
            "timezone",
            "timezone 'Mars/Olympus_Mons' is not a known IANA zone; use a name like "
            "'Asia/Shanghai' or 'UTC'",
            id="nothing-close",
        ),
        pytest.param(
            "",
            "timezone",
            "timezone '' is not a known IANA zone; use a name like 'Asia/Shanghai' or 'UTC'",
            id="empty",
        ),
        pytest.param(
            "../../etc/passwd",
            "timezone",
            "timezone '../../etc/passwd' is not a known IANA zone",
            id="path",
        ),
        pytest.param(
            timezone(timedelta(hours=5, minutes=30)),
            "timezone",
            "timezone datetime.timezone(datetime.timedelta(seconds=19800)) is not an "
            "IANA zone; use a name like 'Asia/Shanghai' or 'UTC'",
            id="half-hour-offset",
        ),
        pytest.param(
            8,
            "timezone",
            "timezone must be a zone name like 'Asia/Shanghai' or a tzinfo, not int",
            id="int",
        ),
    ],
)
def test_resolve_timezone_bad_input(given: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidJobError) as info:
        resolve_timezone(given, field)
    assert message in str(info.value)


def test_unknown_zone_is_refused_by_cron_trigger_too() -> None:
    with pytest.raises(InvalidJobError, match="timezone 'Asia/Shangai' is not a known IANA zone"):
        CronTrigger("0 9 * * *", "Asia/Shangai")


# -- cron trigger object -----------------------------------------------------------------


def test_cron_unbound_until_bound() -> None:
    trigger = CronTrigger("0 9 * * *")
    assert trigger.timezone is None
    with pytest.raises(RuntimeError, match=r"has no timezone; call bind\(timezone\) first"):
        trigger.next_fire_time(datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(RuntimeError, match="has no timezone"):
        trigger.first_fire_time(datetime(2024, 1, 1, tzinfo=UTC))
    bound = trigger.bind("Asia/Shanghai")
    assert bound.timezone == SH
    assert bound.expression == "0 9 * * *"
    assert bound.next_fire_time(datetime(2024, 1, 1, tzinfo=UTC)) == datetime(
        2024, 1, 1, 9, tzinfo=SH
    )


def test_bind_keeps_an_explicit_zone() -> None:
    trigger = CronTrigger("0 9 * * *", "Europe/London")
    assert trigger.bind("Asia/Shanghai") is trigger


def test_cron_equality_is_by_schedule_and_zone() -> None:
    assert CronTrigger("0 9 * * 1-5", "UTC") == CronTrigger("0 9 * * mon-fri", "UTC")
    assert hash(CronTrigger("0 9 * * 1-5", "UTC")) == hash(CronTrigger("0 9 * * MON-FRI", "UTC"))
    assert CronTrigger("@daily", "UTC") == CronTrigger("0 0 * * *", "UTC")
    assert CronTrigger("0 9 * * *", "UTC") != CronTrigger("0 9 * * *", "Asia/Shanghai")
    assert CronTrigger("0 9 * * *") != CronTrigger("0 9 * * *", "UTC")
    assert CronTrigger("0 9 * * *", "UTC") != CronTrigger("0 10 * * *", "UTC")


def test_cron_repr_and_describe() -> None:
    trigger = CronTrigger("0 9,18 * * *", "Asia/Shanghai")
    assert repr(trigger) == "CronTrigger('0 9,18 * * *', timezone='Asia/Shanghai')"
    assert trigger.describe() == "at 09:00 and 18:00 every day (Asia/Shanghai)"
    assert CronTrigger("0 9,18 * * *").describe() == "at 09:00 and 18:00 every day"


def test_next_fire_times_lists_consecutive_fires() -> None:
    trigger = CronTrigger("0 9,18 * * *", "Asia/Shanghai")
    assert trigger.next_fire_times(datetime(2024, 5, 15, 10, tzinfo=SH), 4) == [
        datetime(2024, 5, 15, 18, tzinfo=SH),
        datetime(2024, 5, 16, 9, tzinfo=SH),
        datetime(2024, 5, 16, 18, tzinfo=SH),
        datetime(2024, 5, 17, 9, tzinfo=SH),
    ]
    assert trigger.next_fire_times(datetime(2024, 5, 15, 10, tzinfo=SH), 0) == []


def test_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="after must be an aware datetime"):
        CronTrigger("0 9 * * *", "UTC").next_fire_time(datetime(2024, 1, 1))


# -- specs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "trigger",
    [
        pytest.param(IntervalTrigger(hours=6), id="interval"),
        pytest.param(IntervalTrigger(days=400, seconds=0.000123), id="interval-microseconds"),
        pytest.param(
            IntervalTrigger(
                minutes=5,
                start_date=datetime(2024, 1, 1, 8, tzinfo=SH),
                end_date=datetime(2024, 12, 31, tzinfo=UTC),
                jitter=2.5,
            ),
            id="interval-full",
        ),
        pytest.param(CronTrigger("0 9,18 * * *", "Asia/Shanghai"), id="cron"),
        pytest.param(CronTrigger("@weekly"), id="cron-unbound"),
        pytest.param(DateTrigger(datetime(2024, 5, 1, 9, 30, 15, 5, tzinfo=NY)), id="date"),
    ],
)
def test_spec_round_trips_through_json(trigger: Trigger) -> None:
    spec = trigger.to_spec()
    restored = trigger_from_spec(json.loads(json.dumps(spec)))
    assert restored == trigger
    assert type(restored) is type(trigger)
    assert restored.to_spec() == spec


def test_spec_shapes() -> None:
    assert IntervalTrigger(hours=6, jitter=1).to_spec() == {
        "kind": "interval",
        "days": 0,
        "seconds": 21600,
        "microseconds": 0,
        "start_date": None,
        "end_date": None,
        "jitter": 1.0,
    }
    assert CronTrigger("0 3 * * *", "Asia/Shanghai").to_spec() == {
        "kind": "cron",
        "expression": "0 3 * * *",
        "timezone": "Asia/Shanghai",
    }
    assert DateTrigger(datetime(2024, 5, 1, 9, tzinfo=SH)).to_spec() == {
        "kind": "date",
        "run_date": "2024-05-01T01:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param([], "trigger spec must be a dict, not list", id="not-a-dict"),
        pytest.param(
            {},
            "trigger spec kind None is not known; use 'interval', 'cron' or 'date'",
            id="no-kind",
        ),
        pytest.param({"kind": "pickle"}, "trigger spec kind 'pickle' is not known", id="bad-kind"),
        pytest.param(
            {"kind": "date"},
            "date trigger spec has keys ['kind']; expected exactly ['kind', 'run_date']",
            id="missing-key",
        ),
        pytest.param(
            {"kind": "date", "run_date": "2024-05-01T00:00:00+00:00", "x": 1},
            "date trigger spec has keys",
            id="extra-key",
        ),
        pytest.param(
            {"kind": "date", "run_date": "yesterday"},
            "trigger spec run_date 'yesterday' is not an ISO datetime",
            id="bad-date",
        ),
        pytest.param(
            {"kind": "date", "run_date": "2024-05-01T00:00:00"},
            "run_date 2024-05-01T00:00:00 is naive",
            id="naive-date",
        ),
        pytest.param(
            {"kind": "date", "run_date": None},
            "date trigger spec run_date must be an ISO datetime string",
            id="null-date",
        ),
        pytest.param(
            {"kind": "cron", "expression": "0 25 * * *", "timezone": "UTC"},
            "hour 25 is out of range 0-23",
            id="bad-cron",
        ),
        pytest.param(
            {
                "kind": "interval",
                "days": 0,
                "seconds": "6",
                "microseconds": 0,
                "start_date": None,
                "end_date": None,
                "jitter": None,
            },
            "interval trigger spec seconds must be an integer",
            id="bad-interval",
        ),
        pytest.param(
            {
                "kind": "interval",
                "days": 0,
                "seconds": 0,
                "microseconds": 0,
                "start_date": None,
                "end_date": None,
                "jitter": None,
            },
            "interval is zero",
            id="zero-interval",
        ),
    ],
)
def test_bad_spec(spec: Any, message: str) -> None:
    with pytest.raises(InvalidJobError) as info:
        trigger_from_spec(spec)
    assert message in str(info.value)
