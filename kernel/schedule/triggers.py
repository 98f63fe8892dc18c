"""Triggers: when a job runs. Pure time maths, no event loop and no clock reads.

* :class:`IntervalTrigger` — every fixed length of elapsed time; fire ``k`` of a series is
  ``anchor + k * interval`` (multiplied, never accumulated, so it never drifts).
* :class:`CronTrigger` — a five-field cron expression in an IANA zone, with the
  daylight-saving rules of design.md.
* :class:`DateTrigger` — once, at an aware instant.

Triggers are immutable values (equal when they describe the same schedule) and turn into
JSON-safe dicts with ``to_spec()`` and back with :func:`trigger_from_spec`.
Every refusal is an :class:`~kernel.errors.InvalidJobError` naming the field and the fix.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, NoReturn, TypeAlias
from zoneinfo import ZoneInfo

from kernel.errors import InvalidJobError
from kernel.schedule._cron import ParsedCron, parse_cron
from kernel.schedule._cron_describe import describe_spec
from kernel.schedule._cron_zone import Schedule, schedule_for
from kernel.schedule._zones import resolve_timezone

__all__ = (
    "CronTrigger",
    "DateTrigger",
    "IntervalTrigger",
    "Trigger",
    "resolve_timezone",
    "trigger_from_spec",
)

_ONE_MICROSECOND = timedelta(microseconds=1)
_ZERO = timedelta(0)
_PLAIN_NUMBERS = frozenset((int, float))
_AWARE_HINT = "attach a timezone, e.g. datetime(2024, 1, 1, 9, 0, tzinfo=ZoneInfo('Asia/Shanghai'))"


class _Frozen:
    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable; build a new one instead")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable; build a new one instead")


def _aware_utc(field: str, value: object) -> datetime:
    if type(value) is datetime and value.tzinfo is UTC:
        return value  # already what is kept (the common case: times built in UTC)
    if not isinstance(value, datetime):
        raise InvalidJobError(
            f"{field} must be an aware datetime, not {type(value).__name__}; {_AWARE_HINT}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidJobError(f"{field} {value.isoformat()} is naive; {_AWARE_HINT}")
    return value.astimezone(UTC)


def _number(field: str, value: object, hint: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidJobError(f"{field} must be a number, not {type(value).__name__}; {hint}")
    if not math.isfinite(value):
        raise InvalidJobError(f"{field}={value} is not a finite number; {hint}")
    if value < 0:
        raise InvalidJobError(f"{field}={value} is negative; {hint}")
    return value


# -- interval ----------------------------------------------------------------------------

_INTERVAL_HINT = "use e.g. hours=6 or minutes=5"
# An interval this long never fires in practice; much longer ones overflow timedelta, or
# put the next fire past the year 9999 that datetime can hold.
_MAX_INTERVAL = timedelta(days=36525)
_UNITS = (("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60))


def _spell_duration(delta: timedelta) -> str:
    micros = delta // _ONE_MICROSECOND
    words: list[str] = []
    for unit, seconds in _UNITS:
        count, micros = divmod(micros, seconds * 1_000_000)
        if count:
            words.append(f"{count} {unit}" + ("" if count == 1 else "s"))
    if micros:
        text = f"{micros / 1_000_000:.6f}".rstrip("0").rstrip(".")
        words.append(f"{text} second" + ("" if micros == 1_000_000 else "s"))
    return ", ".join(words)


class IntervalTrigger(_Frozen):
    """Every ``interval`` of elapsed time, optionally between ``start_date`` and ``end_date``.

    ``jitter`` (seconds) lets the kernel delay each run by a random amount up to it.
    """

    __slots__ = ("end_date", "interval", "jitter", "start_date")

    interval: timedelta
    start_date: datetime | None
    end_date: datetime | None
    jitter: float | None

    def __init__(
        self,
        *,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        jitter: float | None = None,
    ) -> None:
        values = (weeks, days, hours, minutes, seconds)
        # Lean validation for the common case (plain non-negative numbers, finite: a sum
        # of finite ones that overflowed goes the long way too); any doubt goes field by
        # field, whose refusal names the field.
        if not (set(map(type, values)) <= _PLAIN_NUMBERS
                and min(values) >= 0 and math.isfinite(sum(values))):
            for name, value in zip(("weeks", "days", "hours", "minutes", "seconds"), values,
                                   strict=True):
                _number(f"interval {name}", value, _INTERVAL_HINT)
        try:
            if weeks or days or hours or minutes:
                interval = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes,
                                     seconds=seconds)
            else:  # the same value, 5x cheaper: timedelta adds float parts up slowly
                interval = timedelta(seconds=seconds)
        except OverflowError:  # beyond timedelta's range (about 2.7 million years)
            interval = _MAX_INTERVAL + _ONE_MICROSECOND
        if interval > _MAX_INTERVAL:
            raise InvalidJobError(
                f"interval is longer than {_MAX_INTERVAL.days} days (100 years), so it would "
                f"never fire; {_INTERVAL_HINT}"
            )
        if interval <= _ZERO:
            raise InvalidJobError(
                f"interval is zero; give it a positive length, {_INTERVAL_HINT}"
            )
        start = None if start_date is None else _aware_utc("start_date", start_date)
        end = None if end_date is None else _aware_utc("end_date", end_date)
        if start is not None and end is not None and end < start:
            raise InvalidJobError(
                f"end_date {end.isoformat()} is before start_date {start.isoformat()}; "
                "swap them or drop end_date"
            )
        if jitter is not None:
            _number("jitter", jitter, "use None or a number of seconds >= 0")
        object.__setattr__(self, "interval", interval)
        object.__setattr__(self, "start_date", start)
        object.__setattr__(self, "end_date", end)
        object.__setattr__(self, "jitter", None if jitter is None else float(jitter))

    @property
    def interval_seconds(self) -> float:
        """The interval in seconds."""
        return self.interval.total_seconds()

    def fire_time(self, anchor: datetime, k: int) -> datetime:
        """Fire ``k`` (0, 1, 2, ...) of the series that starts at ``anchor``: exact, no drift."""
        return anchor + self.interval * k

    def describe(self) -> str:
        """E.g. "every 6 hours" or "every 1 day, 2 hours (from ..., jitter up to 30s)"."""
        text = f"every {_spell_duration(self.interval)}"
        extras = []
        if self.start_date is not None:
            extras.append(f"from {self.start_date.isoformat()}")
        if self.end_date is not None:
            extras.append(f"until {self.end_date.isoformat()}")
        if self.jitter:
            extras.append(f"jitter up to {self.jitter:g}s")
        return f"{text} ({', '.join(extras)})" if extras else text

    def to_spec(self) -> dict[str, Any]:
        """A JSON-safe dict that :func:`trigger_from_spec` turns back into this trigger."""
        return {
            "kind": "interval",
            "days": self.interval.days,
            "seconds": self.interval.seconds,
            "microseconds": self.interval.microseconds,
            "start_date": None if self.start_date is None else self.start_date.isoformat(),
            "end_date": None if self.end_date is None else self.end_date.isoformat(),
            "jitter": self.jitter,
        }

    def _key(self) -> tuple[object, ...]:
        return (self.interval, self.start_date, self.end_date, self.jitter)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IntervalTrigger):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        args = [f"seconds={self.interval.total_seconds()!r}"]
        args.extend(
            f"{name}={value!r}"
            for name, value in (("start_date", self.start_date), ("end_date", self.end_date),
                                ("jitter", self.jitter))
            if value is not None
        )
        return f"IntervalTrigger({', '.join(args)})"


# -- cron --------------------------------------------------------------------------------


class CronTrigger(_Frozen):
    """A cron expression in an IANA zone; ``timezone=None`` until the kernel binds its own.

    The expression is read as Vixie/Debian cron reads it (:mod:`kernel.schedule._cron_parse`), so
    equal triggers are those whose expressions match the same times in the same zone,
    however spelled. Triggers with the same canonical form and zone share one parsed schedule
    and its memo of answers, so building one for an expression seen before is a dict lookup.
    """

    __slots__ = ("_parsed", "_schedule", "expression", "timezone")

    expression: str
    timezone: ZoneInfo | None
    _parsed: ParsedCron
    _schedule: Schedule | None

    def __init__(self, expression: str, timezone: str | tzinfo | None = None) -> None:
        parsed = parse_cron(expression)
        zone = None if timezone is None else resolve_timezone(timezone)
        object.__setattr__(self, "expression", expression)
        object.__setattr__(self, "timezone", zone)
        object.__setattr__(self, "_parsed", parsed)
        object.__setattr__(self, "_schedule", None if zone is None else schedule_for(parsed, zone))

    @property
    def hour_is_wildcard(self) -> bool:
        """Whether the hour field matches all 24 hours, however written (``*``, ``*/1``,
        ``0-23``, ...): then a local time that daylight saving repeats fires at both
        occurrences; otherwise only at the first."""
        return self._parsed.hour_is_wildcard

    def bind(self, timezone: str | tzinfo) -> CronTrigger:
        """This trigger in ``timezone``; itself when it already has a zone."""
        if self.timezone is not None:
            return self
        return CronTrigger(self.expression, timezone)

    def _bound(self) -> Schedule:
        schedule = self._schedule
        if schedule is None:
            raise RuntimeError(
                f"CronTrigger({self.expression!r}) has no timezone; "
                "call bind(timezone) first (the kernel binds its default zone)"
            )
        return schedule

    def next_fire_time(self, after: datetime) -> datetime | None:
        """The first fire instant strictly after aware ``after``, as an aware UTC datetime."""
        schedule = self._schedule
        if schedule is None:
            schedule = self._bound()
        return schedule.next_after(after)

    def first_fire_time(self, now: datetime) -> datetime | None:
        """The first fire instant at or after aware ``now`` (fire instants are whole seconds)."""
        return self._bound().next_after(now - _ONE_MICROSECOND)

    def next_fire_times(self, after: datetime, n: int) -> list[datetime]:
        """The next ``n`` fire instants strictly after ``after`` (fewer if the schedule ends)."""
        schedule = self._bound()
        times: list[datetime] = []
        current = after
        while len(times) < n:
            following = schedule.next_after(current)
            if following is None:
                break
            times.append(following)
            current = following
        return times

    def describe(self) -> str:
        """E.g. "at 09:00 and 18:00 every day (Asia/Shanghai)"."""
        text = describe_spec(self._parsed.spec)
        return text if self.timezone is None else f"{text} ({self.timezone.key})"

    def to_spec(self) -> dict[str, Any]:
        """A JSON-safe dict that :func:`trigger_from_spec` turns back into this trigger."""
        zone = None if self.timezone is None else self.timezone.key
        return {"kind": "cron", "expression": self.expression, "timezone": zone}

    def _key(self) -> tuple[object, ...]:
        return (self._parsed.spec, None if self.timezone is None else self.timezone.key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronTrigger):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        zone = None if self.timezone is None else self.timezone.key
        return f"CronTrigger({self.expression!r}, timezone={zone!r})"


# -- date --------------------------------------------------------------------------------


class DateTrigger(_Frozen):
    """Once, at ``run_date`` (kept as aware UTC)."""

    __slots__ = ("run_date",)

    run_date: datetime

    def __init__(self, run_date: datetime) -> None:
        object.__setattr__(self, "run_date", _aware_utc("run_date", run_date))

    def describe(self) -> str:
        """E.g. "once at 2024-05-01T01:00:00+00:00"."""
        return f"once at {self.run_date.isoformat()}"

    def to_spec(self) -> dict[str, Any]:
        """A JSON-safe dict that :func:`trigger_from_spec` turns back into this trigger."""
        return {"kind": "date", "run_date": self.run_date.isoformat()}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DateTrigger):
            return NotImplemented
        return self.run_date == other.run_date

    def __hash__(self) -> int:
        return hash(self.run_date)

    def __repr__(self) -> str:
        return f"DateTrigger({self.run_date!r})"


Trigger: TypeAlias = IntervalTrigger | CronTrigger | DateTrigger

# -- specs -------------------------------------------------------------------------------

_SPEC_KEYS = {
    "interval": {"kind", "days", "seconds", "microseconds", "start_date", "end_date", "jitter"},
    "cron": {"kind", "expression", "timezone"},
    "date": {"kind", "run_date"},
}


def _spec_datetime(spec: dict[str, Any], key: str) -> datetime | None:
    value = spec[key]
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidJobError(f"trigger spec {key} must be an ISO datetime string or null")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidJobError(
            f"trigger spec {key} {value!r} is not an ISO datetime; "
            "write e.g. '2024-01-01T09:00:00+08:00'"
        ) from None


def trigger_from_spec(spec: dict[str, Any]) -> Trigger:
    """The trigger a ``to_spec()`` dict describes. Refuses malformed specs."""
    if not isinstance(spec, dict):
        raise InvalidJobError(f"trigger spec must be a dict, not {type(spec).__name__}")
    kind = spec.get("kind")
    keys = _SPEC_KEYS.get(kind) if isinstance(kind, str) else None
    if keys is None:
        raise InvalidJobError(
            f"trigger spec kind {kind!r} is not known; use 'interval', 'cron' or 'date'"
        )
    if set(spec) != keys:
        raise InvalidJobError(
            f"{kind} trigger spec has keys {sorted(spec)}; expected exactly {sorted(keys)}"
        )
    if kind == "cron":
        return CronTrigger(spec["expression"], spec["timezone"])
    if kind == "date":
        run_date = _spec_datetime(spec, "run_date")
        if run_date is None:
            raise InvalidJobError("date trigger spec run_date must be an ISO datetime string")
        return DateTrigger(run_date)
    for key in ("days", "seconds", "microseconds"):
        if isinstance(spec[key], bool) or not isinstance(spec[key], int):
            raise InvalidJobError(f"interval trigger spec {key} must be an integer")
    return IntervalTrigger(
        days=spec["days"],
        seconds=spec["seconds"] + spec["microseconds"] / 1_000_000,
        start_date=_spec_datetime(spec, "start_date"),
        end_date=_spec_datetime(spec, "end_date"),
        jitter=spec["jitter"],
    )
