"""Cron expressions: validation with messages that name the fix, and the parsed, shared form.

The grammar is the classic five fields ``minute hour day month day_of_week`` with
``* , - /``, month and weekday names, 0 or 7 for Sunday, and the ``@`` macros. Validation
is ours (so every refusal names the expression, the field and what is allowed); expansion
and naive wall-clock iteration are croniter's. Turning wall-clock times into real instants
across daylight-saving changes lives in :mod:`kernel.schedule._cron_zone`.

A parsed expression is cached by its text, so building a trigger for an expression seen
before is a dict lookup; expressions that expand to the same sets share one
:class:`ParsedCron` (and so one croniter and, per zone, one memo of answers).
"""

from __future__ import annotations

import re
import threading
from datetime import datetime
from typing import Final

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from kernel.errors import InvalidJobError

__all__ = ("FIELD_NAMES", "ParsedCron", "parse_cron")

FIELD_NAMES: Final = ("minute", "hour", "day", "month", "day_of_week")
_FIELD_LIST: Final = " ".join(FIELD_NAMES)

MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MACRO_LIST: Final = ", ".join(MACROS)

MONTH_NAMES: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                      "NOV", "DEC")
DOW_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class _Field:
    __slots__ = ("hi", "index", "lo", "name", "names", "size")

    def __init__(self, index: int, lo: int, hi: int, names: dict[str, int], size: int) -> None:
        self.index = index
        self.name = FIELD_NAMES[index]
        self.lo = lo
        self.hi = hi
        self.names = names
        self.size = size  # how many distinct values the field has

    def allowed(self) -> str:
        if self.index == 3:
            return "1-12 or JAN-DEC"
        if self.index == 4:
            return "0-7 (0 and 7 are Sunday) or SUN, MON, TUE, WED, THU, FRI, SAT"
        return f"{self.lo}-{self.hi}"


_FIELDS: Final = (
    _Field(0, 0, 59, {}, 60),
    _Field(1, 0, 23, {}, 24),
    _Field(2, 1, 31, {}, 31),
    _Field(3, 1, 12, {n: i + 1 for i, n in enumerate(MONTH_NAMES)}, 12),
    _Field(4, 0, 7, {n: i for i, n in enumerate(DOW_NAMES)}, 7),
)

# Quartz-style tokens croniter would partly accept; we refuse them so a schedule means the
# same thing in every cron the user knows.
_UNSUPPORTED_RE: Final = re.compile(r"[?#]|^(?:L|LW|L-?\d+|\d+L|\d+W|W\d*)$", re.IGNORECASE)
_UNSUPPORTED_MSG: Final = (
    "the special characters L, W, # and ? are not supported; "
    "use numbers, names, '*', ',', '-' and '/'"
)
_DAYS_IN_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February at most 29

Expanded = tuple[tuple[int, ...] | None, ...]
"""Per field, the sorted values it allows, or None when it allows every value."""


def _error(expression: str, message: str) -> InvalidJobError:
    return InvalidJobError(f"cron expression {expression!r}: {message}")


def _value(expression: str, field: _Field, token: str, item: str) -> int:
    if token.isdigit() and token.isascii():
        value = int(token)
        if not field.lo <= value <= field.hi:
            raise _error(expression, f"{field.name} {value} is out of range {field.allowed()}")
        return value
    if _UNSUPPORTED_RE.search(token):
        raise _error(expression, f"{field.name} {item!r}: {_UNSUPPORTED_MSG}")
    if token.isalpha() and token.isascii():
        number = field.names.get(token.upper())
        if number is not None:
            return number
        if field.names:
            raise _error(
                expression,
                f"{field.name} {token!r} is not a known name; use {field.allowed()}",
            )
        raise _error(
            expression, f"{field.name} {token!r} is not a number; use {field.allowed()}"
        )
    raise _error(
        expression,
        f"{field.name} {item!r} is not valid; use {field.allowed()} "
        "with '*', ',', '-' and '/' (e.g. '*/15', '1-5', '0,30')",
    )


def _check_field(expression: str, field: _Field, text: str) -> None:
    for item in text.split(","):
        if not item:
            raise _error(
                expression,
                f"{field.name} {text!r} has an empty list item; separate values "
                "with single commas, e.g. '0,30'",
            )
        if _UNSUPPORTED_RE.search(item):
            raise _error(expression, f"{field.name} {item!r}: {_UNSUPPORTED_MSG}")
        base, slash, step_text = item.partition("/")
        if slash:
            if not (step_text.isdigit() and step_text.isascii()):
                raise _error(
                    expression,
                    f"{field.name} {item!r}: step {step_text!r} is not a number; "
                    "write e.g. '*/15'",
                )
            step = int(step_text)
            if step == 0:
                raise _error(
                    expression, f"{field.name} {item!r}: step 0 is not allowed; use 1 or more"
                )
            if step >= field.size:
                raise _error(
                    expression,
                    f"{field.name} {item!r}: step {step} is larger than the field's range "
                    f"{field.lo}-{field.hi} and would match only once; "
                    "for a longer period use an interval trigger",
                )
        if base == "*":
            continue
        first, dash, last = base.partition("-")
        _value(expression, field, first, item)
        if dash:
            _value(expression, field, last, item)


def _split(expression: str) -> list[str]:
    if not isinstance(expression, str):
        raise InvalidJobError(
            f"cron_expression must be a string like '0 9 * * *', "
            f"not {type(expression).__name__}"
        )
    text = expression.strip()
    if not text:
        raise _error(
            expression,
            f"expected 5 fields ({_FIELD_LIST}) or a macro ({_MACRO_LIST}), "
            "got an empty string",
        )
    if text.startswith("@"):
        macro = MACROS.get(text.lower())
        if macro is None:
            raise _error(
                expression, f"{text!r} is not a supported macro; use one of {_MACRO_LIST}"
            )
        return macro.split()
    fields = text.split()
    if len(fields) != 5:
        hint = ""
        if len(fields) == 6:
            hint = "; a sixth field (seconds) is not supported"
        elif len(fields) == 7:
            hint = "; seconds and year fields are not supported"
        raise _error(
            expression,
            f"expected 5 fields ({_FIELD_LIST}), got {len(fields)}{hint}",
        )
    return fields


def _expand(expression: str, normalised: str) -> tuple[Expanded, croniter[datetime]]:
    try:
        # The constructor expands the fields; one expansion serves both purposes.
        iterator = croniter(normalised, datetime(2000, 1, 1), ret_type=datetime)
    except CroniterBadCronError as exc:  # our checks should have caught it first
        raise _error(expression, f"{exc}; check each field against {_FIELD_LIST}") from None
    expanded = iterator.expanded
    if iterator.nth_weekday_of_month or len(expanded) != 5:
        raise _error(expression, f"unsupported syntax; use {_FIELD_LIST}")
    result: list[tuple[int, ...] | None] = []
    for values in expanded:
        if values == ["*"]:
            result.append(None)
        else:
            result.append(tuple(sorted(int(v) for v in values)))
    return tuple(result), iterator


def _check_can_fire(expression: str, fields: list[str], expanded: Expanded) -> None:
    days, months, weekdays = expanded[2], expanded[3], expanded[4]
    if days is None or weekdays is not None:
        return  # every month has every weekday, and the OR rule keeps weekday matches
    for month in months or range(1, 13):
        if days[0] <= _DAYS_IN_MONTH[month - 1]:
            return
    raise _error(
        expression,
        f"day {fields[2]} never occurs in month {fields[3]}, so it would never fire; "
        "check the day and month fields",
    )


class ParsedCron:
    """A validated cron expression: its expansion and a croniter for naive iteration.

    Shared by every trigger whose expression expands to the same sets. croniter keeps
    mutable state, so naive iteration takes a lock (triggers may be built and asked on
    any thread).
    """

    __slots__ = ("_iter", "_lock", "expanded", "hour_is_wildcard", "normalised")

    def __init__(self, normalised: str, expanded: Expanded, iterator: croniter[datetime]) -> None:
        self.normalised = normalised
        self.expanded = expanded
        hours = expanded[1]
        self.hour_is_wildcard = hours is None or len(hours) == 24
        self._iter = iterator
        self._lock = threading.Lock()

    def naive_next(self, start: datetime) -> datetime | None:
        """The first matching wall-clock minute strictly after naive ``start``, or None."""
        with self._lock:
            try:
                result: datetime = self._iter.get_next(datetime, start)
            except (CroniterBadDateError, OverflowError, ValueError):
                return None
        return result


# Text as given -> parsed; expansion -> parsed (so equivalent spellings share one).
_BY_TEXT: dict[str, ParsedCron] = {}
_BY_EXPANSION: dict[Expanded, ParsedCron] = {}
_CACHE_LIMIT: Final = 20_000  # distinct expressions kept; beyond it parsing just repeats


def parse_cron(expression: str) -> ParsedCron:
    """Validate ``expression`` and return its shared parsed form.

    Raises :class:`InvalidJobError` naming the expression, the field and the fix.
    """
    parsed = _BY_TEXT.get(expression)
    if parsed is not None:
        return parsed
    fields = _split(expression)
    for field, text in zip(_FIELDS, fields, strict=True):
        _check_field(expression, field, text)
    normalised = " ".join(f.upper() for f in fields)
    expanded, iterator = _expand(expression, normalised)
    _check_can_fire(expression, fields, expanded)
    parsed = _BY_EXPANSION.get(expanded)
    if parsed is None:
        if len(_BY_EXPANSION) >= _CACHE_LIMIT:
            _BY_EXPANSION.clear()
        parsed = _BY_EXPANSION.setdefault(expanded, ParsedCron(normalised, expanded, iterator))
    if len(_BY_TEXT) >= _CACHE_LIMIT:
        _BY_TEXT.clear()
    _BY_TEXT[expression] = parsed
    return parsed
