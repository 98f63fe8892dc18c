"""Plain-English descriptions of canonical cron expressions ("at 09:00 and 18:00 every day")."""

from __future__ import annotations

from typing import Final

from kernel.schedule._cron_parse import CronSpec

__all__ = ("describe_spec",)

_MONTHS: Final = ("January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")
_WEEKDAYS: Final = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                    "Saturday")
_MAX_TIMES: Final = 6  # list "at 09:00, 12:00 and 18:00" up to this many times a day


def _join(words: list[str], conjunction: str = "and") -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + f" {conjunction} " + words[-1]


def _runs(values: tuple[int, ...]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and runs[-1][1] == value - 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _spell(
    values: tuple[int, ...],
    name: tuple[str, ...] | None = None,
    offset: int = 0,
    conjunction: str = "and",
) -> str:
    """``(1, 2, 3, 5)`` -> "1-3 and 5"; with names, "Monday through Wednesday and Friday"."""
    words: list[str] = []
    for lo, hi in _runs(values):
        first = name[lo - offset] if name else str(lo)
        last = name[hi - offset] if name else str(hi)
        if lo == hi:
            words.append(first)
        elif hi == lo + 1:
            words.extend((first, last))
        else:
            words.append(f"{first} through {last}" if name else f"{first}-{last}")
    return _join(words, conjunction)


def _step(values: tuple[int, ...], lo: int, size: int) -> int | None:
    """The step s when ``values`` is exactly lo, lo+s, lo+2s, ... over the whole field."""
    if len(values) < 2:
        return None
    step = values[1] - values[0]
    if values[0] != lo or tuple(range(lo, lo + size, step)) != values:
        return None
    return step


def _during(hours: tuple[int, ...]) -> str:
    return f"during hour{'' if len(hours) == 1 else 's'} {_spell(hours)}"


def _time_part(minutes: tuple[int, ...] | None, hours: tuple[int, ...] | None) -> str:
    if minutes is None:
        if hours is None:
            return "every minute"
        return f"every minute {_during(hours)}"
    minute_step = _step(minutes, 0, 60)
    if hours is None:
        if minute_step is not None:
            return f"every {minute_step} minutes"
        if minutes == (0,):
            return "every hour, on the hour"
        return f"every hour at minute {_spell(minutes)}"
    if len(hours) * len(minutes) <= _MAX_TIMES:
        return "at " + _join([f"{h:02d}:{m:02d}" for h in hours for m in minutes])
    if minute_step is not None:
        return f"every {minute_step} minutes {_during(hours)}"
    hour_step = _step(hours, 0, 24)
    hour_text = f"every {hour_step} hours" if hour_step else _during(hours)
    return f"at minute {_spell(minutes)} {hour_text}"


def _day_part(spec: CronSpec) -> str:
    days, weekdays = spec.days, spec.weekdays
    day_text = ""
    if days is not None:
        plural = "day" if len(days) == 1 else "days"
        day_text = f"on {plural} {_spell(days)} of the month"
    if weekdays is None:
        return day_text
    if not day_text:
        return "on " + _spell(weekdays, _WEEKDAYS)
    if spec.day_or:
        return f"{day_text} or on {_spell(weekdays, _WEEKDAYS)}"
    return f"{day_text} when it falls on {_spell(weekdays, _WEEKDAYS, conjunction='or')}"


def describe_spec(spec: CronSpec) -> str:
    """Describe the schedule in plain English, e.g. "at 09:00 on Monday through Friday"."""
    text = _time_part(spec.minutes, spec.hours)
    day_text = _day_part(spec)
    if day_text:
        text += " " + day_text
    elif spec.months is None and text.startswith("at ") and ":" in text:
        text += " every day"  # "at 09:00 every day"; "every 15 minutes" needs no suffix
    if spec.months is not None:
        text += " in " + _spell(spec.months, _MONTHS, offset=1)
    return text
