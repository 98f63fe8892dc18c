"""Cron across daylight-saving changes, as design.md says.

* A matching local time in the skipped hour runs once, at the first instant after the gap
  (and that instant is not run twice when it matches too).
* In the repeated hour, a job whose hour field matches all 24 hours, however written (``*``,
  ``*/1``, ``0-23``, all 24 listed), fires at every real instant that matches; any other job
  (``1``, ``*/3``, ``0-22``) runs once, at the first occurrence, even when its minute field is
  ``*`` (Debian cron differs there: see tests/test_cron_oracle.py).

Expectations are written in UTC, with the local reading in the comment.
2024 transitions: America/New_York 03-10 07:00Z (02:00 EST -> 03:00 EDT) and 11-03 06:00Z
(02:00 EDT -> 01:00 EST); Europe/London 03-31 01:00Z (01:00 GMT -> 02:00 BST) and 10-27
01:00Z (02:00 BST -> 01:00 GMT).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.triggers import CronTrigger


def u(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2024) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


SEQUENCES = [
    # -- New York, spring forward (02:00-03:00 local does not exist on 03-10) ------------
    pytest.param(
        "America/New_York",
        "30 2 * * *",
        u(3, 9, 17),
        [u(3, 10, 7, 0), u(3, 11, 6, 30), u(3, 12, 6, 30)],
        id="ny-spring-fixed-0230-runs-at-0300-edt",
    ),
    pytest.param(
        "America/New_York",
        "0 2 * * *",
        u(3, 9, 17),
        [u(3, 10, 7, 0), u(3, 11, 6, 0)],
        id="ny-spring-fixed-0200-runs-at-0300-edt",
    ),
    pytest.param(
        "America/New_York",
        "0 3 * * *",
        u(3, 9, 17),
        [u(3, 10, 7, 0), u(3, 11, 7, 0)],
        id="ny-spring-fixed-0300-unaffected",
    ),
    pytest.param(
        "America/New_York",
        "0 1 * * *",
        u(3, 9, 17),
        [u(3, 10, 6, 0), u(3, 11, 5, 0)],
        id="ny-spring-fixed-0100-est-then-edt",
    ),
    pytest.param(
        "America/New_York",
        "*/15 * * * *",
        u(3, 10, 6, 30),
        # 01:45 EST; 02:00-02:45 collapse into 03:00 EDT, which is not run twice.
        [u(3, 10, 6, 45), u(3, 10, 7, 0), u(3, 10, 7, 15), u(3, 10, 7, 30)],
        id="ny-spring-every-15-collapses",
    ),
    pytest.param(
        "America/New_York",
        "0 * * * *",
        u(3, 10, 5, 30),
        [u(3, 10, 6, 0), u(3, 10, 7, 0), u(3, 10, 8, 0)],
        id="ny-spring-hourly-0200-and-0300-are-one-run",
    ),
    pytest.param(
        "America/New_York",
        "30 * * * *",
        u(3, 10, 6, 0),
        # 01:30 EST, 02:30 -> 03:00 EDT, 03:30 EDT, 04:30 EDT
        [u(3, 10, 6, 30), u(3, 10, 7, 0), u(3, 10, 7, 30), u(3, 10, 8, 30)],
        id="ny-spring-half-past-every-hour",
    ),
    pytest.param(
        "America/New_York",
        "0 0 * * *",
        u(3, 9, 12),
        [u(3, 10, 5, 0), u(3, 11, 4, 0)],
        id="ny-spring-seed-midnight",
    ),
    # -- New York, fall back (01:00-02:00 local happens twice on 11-03) -----------------
    pytest.param(
        "America/New_York",
        "30 1 * * *",
        u(11, 2, 16),
        # 01:30 EDT only, then 01:30 EST on the following days
        [u(11, 3, 5, 30), u(11, 4, 6, 30), u(11, 5, 6, 30)],
        id="ny-fall-fixed-0130-once-first-occurrence",
    ),
    pytest.param(
        "America/New_York",
        "0 1 * * *",
        u(11, 2, 16),
        [u(11, 3, 5, 0), u(11, 4, 6, 0)],
        id="ny-fall-fixed-0100-once",
    ),
    pytest.param(
        "America/New_York",
        "0 2 * * *",
        u(11, 2, 16),
        [u(11, 3, 7, 0), u(11, 4, 7, 0)],
        id="ny-fall-fixed-0200-unaffected",
    ),
    pytest.param(
        "America/New_York",
        "0 1-2 * * *",
        u(11, 3, 4),
        # 01:00 EDT, 02:00 EST (01:00 EST is not run), then 01:00 and 02:00 EST
        [u(11, 3, 5, 0), u(11, 3, 7, 0), u(11, 4, 6, 0), u(11, 4, 7, 0)],
        id="ny-fall-hour-range-is-restricted",
    ),
    pytest.param(
        "America/New_York",
        "15 0-2 * * *",
        u(11, 3, 4),
        [u(11, 3, 4, 15), u(11, 3, 5, 15), u(11, 3, 7, 15)],
        id="ny-fall-quarter-past-restricted",
    ),
    pytest.param(
        "America/New_York",
        "*/30 * * * *",
        u(11, 3, 4, 30),
        # 01:00 EDT, 01:30 EDT, 01:00 EST, 01:30 EST, 02:00 EST
        [u(11, 3, 5, 0), u(11, 3, 5, 30), u(11, 3, 6, 0), u(11, 3, 6, 30), u(11, 3, 7, 0)],
        id="ny-fall-every-30-fires-both-passes",
    ),
    pytest.param(
        "America/New_York",
        "30 * * * *",
        u(11, 3, 4),
        [u(11, 3, 4, 30), u(11, 3, 5, 30), u(11, 3, 6, 30), u(11, 3, 7, 30)],
        id="ny-fall-half-past-fires-both-passes",
    ),
    pytest.param(
        "America/New_York",
        "0 0-23 * * *",
        u(11, 3, 4, 30),
        [u(11, 3, 5, 0), u(11, 3, 6, 0), u(11, 3, 7, 0)],
        id="ny-fall-hour-range-covering-all-24-is-a-wildcard",
    ),
    pytest.param(
        "America/New_York",
        "0 */1 * * *",
        u(11, 3, 4, 30),
        [u(11, 3, 5, 0), u(11, 3, 6, 0), u(11, 3, 7, 0)],
        id="ny-fall-hour-step-1-is-every-hour",
    ),
    pytest.param(
        "America/New_York",
        "0 " + ",".join(map(str, range(24))) + " * * *",
        u(11, 3, 4, 30),
        [u(11, 3, 5, 0), u(11, 3, 6, 0), u(11, 3, 7, 0)],
        id="ny-fall-all-24-hours-listed-is-every-hour",
    ),
    pytest.param(
        "America/New_York",
        "*/15 1 * * *",
        u(11, 3, 4, 50),
        # 01:00-01:45 EDT only; Debian cron would repeat them in EST (minute begins with *)
        [u(11, 3, 5, 0), u(11, 3, 5, 15), u(11, 3, 5, 30), u(11, 3, 5, 45), u(11, 4, 6, 0)],
        id="ny-fall-fixed-hour-starred-minute-once",
    ),
    pytest.param(
        "America/New_York",
        "0 9,18 * * *",
        u(11, 2, 23),
        [u(11, 3, 14, 0), u(11, 3, 23, 0), u(11, 4, 14, 0)],
        id="ny-fall-seed-token-expiry-follows-local-time",
    ),
    # -- London, spring forward (01:00-02:00 local does not exist on 03-31) -------------
    pytest.param(
        "Europe/London",
        "30 1 * * *",
        u(3, 30, 12),
        [u(3, 31, 1, 0), u(4, 1, 0, 30), u(4, 2, 0, 30)],
        id="london-spring-fixed-0130-runs-at-0200-bst",
    ),
    pytest.param(
        "Europe/London",
        "0 1 * * *",
        u(3, 30, 12),
        [u(3, 31, 1, 0), u(4, 1, 0, 0)],
        id="london-spring-fixed-0100-runs-at-0200-bst",
    ),
    pytest.param(
        "Europe/London",
        "0 2 * * *",
        u(3, 30, 12),
        [u(3, 31, 1, 0), u(4, 1, 1, 0)],
        id="london-spring-fixed-0200-unaffected",
    ),
    pytest.param(
        "Europe/London",
        "*/20 * * * *",
        u(3, 31, 0, 30),
        [u(3, 31, 0, 40), u(3, 31, 1, 0), u(3, 31, 1, 20), u(3, 31, 1, 40)],
        id="london-spring-every-20-collapses",
    ),
    pytest.param(
        "Europe/London",
        "0 * * * *",
        u(3, 30, 23, 30),
        [u(3, 31, 0, 0), u(3, 31, 1, 0), u(3, 31, 2, 0)],
        id="london-spring-hourly",
    ),
    # -- London, fall back (01:00-02:00 local happens twice on 10-27) -------------------
    pytest.param(
        "Europe/London",
        "30 1 * * *",
        u(10, 26, 12),
        [u(10, 27, 0, 30), u(10, 28, 1, 30)],
        id="london-fall-fixed-0130-once-first-occurrence",
    ),
    pytest.param(
        "Europe/London",
        "0 1 * * *",
        u(10, 26, 12),
        [u(10, 27, 0, 0), u(10, 28, 1, 0)],
        id="london-fall-fixed-0100-once",
    ),
    pytest.param(
        "Europe/London",
        "*/30 * * * *",
        u(10, 26, 23, 30),
        # 01:00 BST, 01:30 BST, 01:00 GMT, 01:30 GMT, 02:00 GMT
        [u(10, 27, 0, 0), u(10, 27, 0, 30), u(10, 27, 1, 0), u(10, 27, 1, 30), u(10, 27, 2, 0)],
        id="london-fall-every-30-fires-both-passes",
    ),
    pytest.param(
        "Europe/London",
        "0 * * * *",
        u(10, 26, 23, 30),
        [u(10, 27, 0, 0), u(10, 27, 1, 0), u(10, 27, 2, 0)],
        id="london-fall-hourly-fires-both-passes",
    ),
    # -- Lord Howe: a half-hour shift. 2024-10-06 02:00-02:30 local (+10:30 -> +11) does
    #    not exist; 2024-04-07 01:30-02:00 local (+11 -> +10:30) happens twice.
    pytest.param(
        "Australia/Lord_Howe",
        "15 2 * * *",
        u(10, 5),
        [u(10, 5, 15, 30), u(10, 6, 15, 15)],
        id="lord-howe-spring-half-hour-gap",
    ),
    pytest.param(
        "Australia/Lord_Howe",
        "45 1 * * *",
        u(4, 6),
        [u(4, 6, 14, 45), u(4, 7, 15, 15)],
        id="lord-howe-fall-fixed-once",
    ),
    pytest.param(
        "Australia/Lord_Howe",
        "45 * * * *",
        u(4, 6, 13, 50),
        [u(4, 6, 14, 45), u(4, 6, 15, 15), u(4, 6, 16, 15)],
        id="lord-howe-fall-any-hour-twice",
    ),
    # -- Havana changes at midnight: the day's first hour is skipped or repeated. --------
    pytest.param(
        "America/Havana",
        "0 0 * * *",
        u(3, 9, 12),
        # 2024-03-10 00:00 does not exist: 01:00 CDT (05:00Z) instead
        [u(3, 10, 5, 0), u(3, 11, 4, 0)],
        id="havana-midnight-gap",
    ),
    pytest.param(
        "America/Havana",
        "30 0 * * *",
        u(11, 2, 12),
        [u(11, 3, 4, 30), u(11, 4, 5, 30)],
        id="havana-midnight-overlap-fixed",
    ),
    pytest.param(
        "America/Havana",
        "0 */3 * * *",
        u(11, 3, 3),
        # 00:00 CDT once (not again at 00:00 CST: every 3 hours is not every hour), 03:00 CST
        [u(11, 3, 4, 0), u(11, 3, 8, 0)],
        id="havana-midnight-overlap-every-3-hours-once",
    ),
    # -- Apia skipped all of 2011-12-30 (-10 -> +14): that day's 09:00 runs when it ends.
    pytest.param(
        "Pacific/Apia",
        "0 9 * * *",
        u(12, 29, 0, year=2011),
        [u(12, 29, 19, 0, year=2011), u(12, 30, 10, 0, year=2011), u(12, 30, 19, 0, year=2011)],
        id="apia-skipped-day",
    ),
]


@pytest.mark.parametrize(("zone", "expression", "after", "expected"), SEQUENCES)
def test_fires_across_transitions(
    zone: str, expression: str, after: datetime, expected: list[datetime]
) -> None:
    trigger = CronTrigger(expression, zone)
    fires = trigger.next_fire_times(after, len(expected))
    assert fires == expected
    assert all(fire.tzinfo is UTC for fire in fires)


AFTER_INSIDE_THE_REPEATED_HOUR = [
    # 01:45 EDT (first pass): 01:00 EST comes next for an any-hour job.
    pytest.param("*/30 * * * *", u(11, 3, 5, 45), u(11, 3, 6, 0), id="any-hour-from-first-pass"),
    # 01:10 EST (second pass)
    pytest.param("*/30 * * * *", u(11, 3, 6, 10), u(11, 3, 6, 30), id="any-hour-from-second-pass"),
    # 01:50 EDT: 01:45 EST is earlier on the wall clock but later in real time.
    pytest.param("45 * * * *", u(11, 3, 5, 50), u(11, 3, 6, 45), id="earlier-wall-time-later"),
    pytest.param("45 * * * *", u(11, 3, 6, 50), u(11, 3, 7, 45), id="second-pass-to-0245-est"),
    pytest.param("0 * * * *", u(11, 3, 5, 0), u(11, 3, 6, 0), id="from-0100-edt-to-0100-est"),
    pytest.param("0 * * * *", u(11, 3, 6, 0), u(11, 3, 7, 0), id="from-0100-est-to-0200-est"),
    pytest.param("30 1 * * *", u(11, 3, 5, 15), u(11, 3, 5, 30), id="fixed-from-first-pass"),
    pytest.param("30 1 * * *", u(11, 3, 5, 45), u(11, 4, 6, 30), id="fixed-after-its-run"),
    pytest.param("30 1 * * *", u(11, 3, 6, 10), u(11, 4, 6, 30), id="fixed-never-second-pass"),
    pytest.param("30 1 * * *", u(11, 3, 5, 30), u(11, 4, 6, 30), id="fixed-from-its-own-run"),
]


@pytest.mark.parametrize(("expression", "after", "expected"), AFTER_INSIDE_THE_REPEATED_HOUR)
def test_after_inside_the_repeated_hour(
    expression: str, after: datetime, expected: datetime
) -> None:
    assert CronTrigger(expression, "America/New_York").next_fire_time(after) == expected


def test_a_whole_spring_forward_night_every_15_minutes() -> None:
    fires = CronTrigger("*/15 * * * *", "America/New_York").next_fire_times(u(3, 10, 4, 50), 14)
    # 00:00-01:45 EST, then 03:00 EDT once, then 03:15-04:00 EDT
    assert fires == [
        u(3, 10, 5, 0),
        u(3, 10, 5, 15),
        u(3, 10, 5, 30),
        u(3, 10, 5, 45),
        u(3, 10, 6, 0),
        u(3, 10, 6, 15),
        u(3, 10, 6, 30),
        u(3, 10, 6, 45),
        u(3, 10, 7, 0),
        u(3, 10, 7, 15),
        u(3, 10, 7, 30),
        u(3, 10, 7, 45),
        u(3, 10, 8, 0),
        u(3, 10, 8, 15),
    ]


def test_the_gap_end_is_exact() -> None:
    fire = CronTrigger("59 2 * * *", "America/New_York").next_fire_time(u(3, 10, 0))
    assert fire == datetime(2024, 3, 10, 7, 0, 0, 0, tzinfo=UTC)
    assert fire.astimezone(ZoneInfo("America/New_York")).isoformat() == "2024-03-10T03:00:00-04:00"


def test_first_fire_time_at_the_gap_end() -> None:
    trigger = CronTrigger("30 2 * * *", "America/New_York")
    assert trigger.first_fire_time(u(3, 10, 7, 0)) == u(3, 10, 7, 0)
    assert trigger.first_fire_time(datetime(2024, 3, 10, 7, 0, 1, tzinfo=UTC)) == u(3, 11, 6, 30)


# -- property: the answer is the first real matching instant --------------------------

# Each zone with its 2024 transitions, so `after` lands near the zone's own changes often.
TRANSITIONS = {
    "America/New_York": [u(3, 10, 7), u(11, 3, 6)],
    "Europe/London": [u(3, 31, 1), u(10, 27, 1)],
    "Australia/Lord_Howe": [u(4, 6, 15), u(10, 5, 15, 30)],
    "Asia/Shanghai": [u(6, 1)],  # none: any instant will do
}
MINUTES = [
    ("*", set(range(60))),
    ("*/15", {0, 15, 30, 45}),
    ("0", {0}),
    ("30", {30}),
    ("0,30", {0, 30}),
    ("5-10", set(range(5, 11))),
    ("*/20", {0, 20, 40}),
    ("59", {59}),
]
HOURS = [
    ("*", set(range(24))),
    ("1", {1}),
    ("2", {2}),
    ("1-3", {1, 2, 3}),
    ("*/2", set(range(0, 24, 2))),
    ("0-23", set(range(24))),
    ("0,1,2", {0, 1, 2}),
    ("22-23,0-2", {22, 23, 0, 1, 2}),
]
WEEKDAYS = [("*", set(range(7))), ("1-5", {1, 2, 3, 4, 5}), ("0,6", {0, 6}), ("SUN", {0})]
YEAR_START = u(1, 1)


class Reference:
    """Brute force over real minutes, straight from design.md's words."""

    def __init__(self, zone: ZoneInfo, minutes: set[int], hours: set[int], weekdays: set[int]):
        self.zone = zone
        self.minutes = minutes
        self.hours = hours
        self.weekdays = weekdays
        self.any_hour = hours == set(range(24))

    def wall_matches(self, wall: datetime) -> bool:
        weekday = (wall.weekday() + 1) % 7  # cron: 0 = Sunday
        return (
            wall.minute in self.minutes and wall.hour in self.hours and (weekday in self.weekdays)
        )

    def fires_at(self, instant: datetime) -> bool:
        wall = instant.astimezone(self.zone)
        if self.wall_matches(wall) and (wall.fold == 0 or self.any_hour):
            return True
        before = (instant - timedelta(minutes=1)).astimezone(self.zone)
        if wall.utcoffset() == before.utcoffset():
            return False
        # `instant` ends a gap: the skipped wall minutes run here.
        skipped = before.replace(tzinfo=None) + timedelta(minutes=1)
        while skipped < wall.replace(tzinfo=None):
            if self.wall_matches(skipped):
                return True
            skipped += timedelta(minutes=1)
        return False


def afters(zone_name: str) -> st.SearchStrategy[tuple[str, datetime]]:
    anywhere = st.integers(0, 366 * 86400).map(lambda s: YEAR_START + timedelta(seconds=s))
    near = st.builds(
        lambda t, s: t + timedelta(seconds=s),
        st.sampled_from(TRANSITIONS[zone_name]),
        st.integers(-3 * 3600, 3 * 3600),
    )
    whole_minutes = st.one_of(anywhere, near).map(lambda d: d.replace(second=0))
    fraction = st.integers(0, 999_999).map(lambda us: timedelta(microseconds=us))
    after = st.one_of(
        anywhere, near, whole_minutes, st.builds(lambda d, f: d + f, whole_minutes, fraction)
    )
    return st.tuples(st.just(zone_name), after)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    zone_and_after=st.sampled_from(sorted(TRANSITIONS)).flatmap(afters),
    minute=st.sampled_from(MINUTES),
    hour=st.sampled_from(HOURS),
    weekday=st.sampled_from(WEEKDAYS),
)
def test_next_fire_is_the_first_matching_instant(
    zone_and_after: tuple[str, datetime],
    minute: tuple[str, set[int]],
    hour: tuple[str, set[int]],
    weekday: tuple[str, set[int]],
) -> None:
    zone_name, after = zone_and_after
    zone = ZoneInfo(zone_name)
    expression = f"{minute[0]} {hour[0]} * * {weekday[0]}"
    reference = Reference(zone, minute[1], hour[1], weekday[1])
    result = CronTrigger(expression, zone_name).next_fire_time(after)
    assert result is not None
    assert result > after
    assert result.tzinfo is UTC
    assert reference.fires_at(result), (expression, zone_name, after, result)
    candidate = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while candidate < result:
        assert not reference.fires_at(candidate), (expression, zone_name, after, candidate)
        candidate += timedelta(minutes=1)
