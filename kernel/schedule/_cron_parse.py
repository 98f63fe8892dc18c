"""Cron expressions read as Vixie/Debian cron reads them, into a canonical, hashable form.

The grammar is the classic five fields ``minute hour day month day_of_week`` with
``* , - /``, month and weekday names (any case), 0 or 7 for Sunday, and the ``@`` macros:

* ``a-b`` is every value from a to b; ``a-a`` is the single value a. A reversed range
  (``5-1``) is refused, with the equivalent list in the message.
* ``/s`` steps through a range: ``*/s`` from the field's first value, ``a-b/s`` from a,
  and ``a/s`` from a to the field's last value (``7/2`` in day_of_week is ``7-7/2``, Sunday).
* In day_of_week, 7 is Sunday wherever it appears, ranges and steps included (``5-7`` is
  Friday through Sunday).
* A list of several items may not contain a bare ``*`` (``1,*``): Vixie cron reads it as
  every value yet not as a leading ``*`` for the day rule below, which is surely not what
  was meant, so it is refused with the fix. Starred steps in lists (``*/15,7``) are fine.
* Day of month and day of week: if either field *begins with* ``*`` (``*/5`` included), a
  day must match both; when both are restricted without a leading ``*``, a day matches if
  either matches.

Everything is read here, so how an expression behaves never depends on the installed
croniter: :mod:`kernel.schedule._cron` hands croniter only the canonical form (plain lists
of numbers, ``*`` and the day_or flag), which every supported croniter version reads the
same way.
Every refusal is an :class:`~kernel.errors.InvalidJobError` naming the expression, the field
and the fix.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from kernel.errors import InvalidJobError

__all__ = ("FIELD_NAMES", "MACROS", "CronSpec", "parse_expression")

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

_MONTH_NAMES: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                       "NOV", "DEC")
_DOW_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DAYS_IN_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February at most 29

# Quartz-style tokens croniter would partly accept; we refuse them so a schedule means the
# same thing in every cron the user knows.
_UNSUPPORTED_RE: Final = re.compile(r"[?#]|^(?:L|LW|L-?\d+|\d+L|\d+W|W\d*)$", re.IGNORECASE)
_UNSUPPORTED_MSG: Final = (
    "the special characters L, W, # and ? are not supported; "
    "use numbers, names, '*', ',', '-' and '/'"
)
_SHOWN: Final = 100  # characters of a token or expression quoted in an error message


class CronSpec(msgspec.Struct, frozen=True):
    """The canonical form of a cron expression: what it matches, however it was spelled.

    Each field is the sorted tuple of the values it allows, or None when it allows every
    value (weekdays are 0-6, Sunday 0). ``day_or`` is True only when both ``days`` and
    ``weekdays`` are restricted and a day matching either one matches; when one of them is
    None, only the other decides. Days that occur in none of the allowed months are dropped.
    Equal specs match the same times, so a spec can key caches of shared state.
    """

    minutes: tuple[int, ...] | None
    hours: tuple[int, ...] | None
    days: tuple[int, ...] | None
    months: tuple[int, ...] | None
    weekdays: tuple[int, ...] | None
    day_or: bool = False

    @property
    def every_hour(self) -> bool:
        """Whether the hour field matches all 24 hours (``*``, ``*/1``, ``0-23``, ...)."""
        return self.hours is None


class _Field:
    __slots__ = ("hi", "is_dow", "lo", "name", "names", "size", "values")

    def __init__(self, name: str, lo: int, hi: int, names: tuple[str, ...], first: int) -> None:
        self.name = name
        self.lo = lo
        self.hi = hi  # the largest number written (7 for day_of_week, though 7 is 0)
        self.names = {n: i + first for i, n in enumerate(names)}
        self.is_dow = name == "day_of_week"
        # Every distinct value (day_of_week: 0-6), and how many there are.
        self.values = frozenset(range(lo, hi + 1)) - ({7} if self.is_dow else set())
        self.size = len(self.values)

    def allowed(self) -> str:
        if self.name == "month":
            return "1-12 or JAN-DEC"
        if self.is_dow:
            return "0-7 (0 and 7 are Sunday) or SUN, MON, TUE, WED, THU, FRI, SAT"
        return f"{self.lo}-{self.hi}"


_FIELDS: Final = (
    _Field("minute", 0, 59, (), 0),
    _Field("hour", 0, 23, (), 0),
    _Field("day", 1, 31, (), 1),
    _Field("month", 1, 12, _MONTH_NAMES, 1),
    _Field("day_of_week", 0, 7, _DOW_NAMES, 0),
)


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


class _Reader:
    """Reads one expression; knows it, so every error can name it."""

    __slots__ = ("expression",)

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def error(self, message: str) -> InvalidJobError:
        return InvalidJobError(f"cron expression {_shown(self.expression)!r}: {message}")

    def number(self, field: _Field, token: str, item: str) -> int:
        if token.isdigit() and token.isascii():
            digits = token.lstrip("0") or "0"
            # Compared as text first: int() refuses more than 4,300 digits.
            if len(digits) > 2 or not field.lo <= int(digits) <= field.hi:
                raise self.error(
                    f"{field.name} {_shown(digits)} is out of range {field.allowed()}"
                )
            return int(digits)
        if _UNSUPPORTED_RE.search(token):
            raise self.error(f"{field.name} {_shown(item)!r}: {_UNSUPPORTED_MSG}")
        if token.isalpha() and token.isascii():
            number = field.names.get(token.upper())
            if number is not None:
                return number
            kind = "a known name" if field.names else "a number"
            raise self.error(
                f"{field.name} {_shown(token)!r} is not {kind}; use {field.allowed()}"
            )
        raise self.error(
            f"{field.name} {_shown(item)!r} is not valid; use {field.allowed()} "
            "with '*', ',', '-' and '/' (e.g. '*/15', '1-5', '0,30')"
        )

    def step(self, field: _Field, text: str, item: str) -> int:
        if not (text.isdigit() and text.isascii()):
            raise self.error(
                f"{field.name} {_shown(item)!r}: step {_shown(text)!r} is not a number; "
                "write e.g. '*/15'"
            )
        digits = text.lstrip("0") or "0"
        if digits == "0":
            raise self.error(
                f"{field.name} {_shown(item)!r}: step 0 is not allowed; use 1 or more"
            )
        if len(digits) > 2 or int(digits) >= field.size:
            raise self.error(
                f"{field.name} {_shown(item)!r}: step {_shown(digits)} is larger than the "
                f"field's range {field.lo}-{field.hi} and would match only once; "
                "for a longer period use an interval trigger"
            )
        return int(digits)

    def item(self, field: _Field, item: str) -> range:
        """The numbers one list item names, as written (day_of_week may include 7)."""
        if _UNSUPPORTED_RE.search(item):
            raise self.error(f"{field.name} {_shown(item)!r}: {_UNSUPPORTED_MSG}")
        base, slash, step_text = item.partition("/")
        step = self.step(field, step_text, item) if slash else 1
        if base == "*":
            return range(field.lo, field.hi + 1, step)
        first_text, dash, last_text = base.partition("-")
        first = self.number(field, first_text, item)
        if not dash:
            # `a/s` runs from a to the field's end; a lone `a` is just a.
            return range(first, field.hi + 1 if slash else first + 1, step)
        last = self.number(field, last_text, item)
        if last < first:
            raise self.error(
                f"{field.name} {_shown(item)!r} is a reversed range, which classic cron "
                f"refuses; write {_unwrapped(field, first, last, step)!r} instead"
            )
        return range(first, last + 1, step)

    def field(self, field: _Field, text: str) -> tuple[int, ...] | None:
        """The sorted values ``text`` allows, or None when it allows every value."""
        values: set[int] = set()
        items = text.split(",")
        for item in items:
            if not item:
                raise self.error(
                    f"{field.name} {_shown(text)!r} has an empty list item; separate values "
                    "with single commas, e.g. '0,30'"
                )
            if item == "*" and len(items) > 1:
                # Vixie cron reads it as '*' that does not begin the field (so a day
                # matching either day field would do): surely not what was meant.
                raise self.error(
                    f"{field.name} {_shown(text)!r} lists '*' with other values, but '*' "
                    "alone already matches every value; write '*' or list only the values "
                    "you mean"
                )
            values.update(self.item(field, item))
        if field.is_dow and 7 in values:
            values = (values - {7}) | {0}
        return None if values == field.values else tuple(sorted(values))

    def split(self) -> list[str]:
        expression = self.expression
        text = expression.strip()
        if not text:
            raise self.error(
                f"expected 5 fields ({_FIELD_LIST}) or a macro ({_MACRO_LIST}), "
                "got an empty string"
            )
        if text.startswith("@"):
            macro = MACROS.get(text.lower())
            if macro is None:
                raise self.error(
                    f"{_shown(text)!r} is not a supported macro; use one of {_MACRO_LIST}"
                )
            return macro.split()
        fields = text.split()
        if len(fields) != 5:
            hint = ""
            if len(fields) == 6:
                hint = "; a sixth field (seconds) is not supported"
            elif len(fields) == 7:
                hint = "; seconds and year fields are not supported"
            raise self.error(f"expected 5 fields ({_FIELD_LIST}), got {len(fields)}{hint}")
        return fields


def _unwrapped(field: _Field, first: int, last: int, step: int) -> str:
    """The list a reversed range ``first-last`` means when read as wrapping around."""
    top = 6 if field.is_dow else field.hi
    if field.is_dow and first == 7:
        first = 0  # `7-1` is Sunday through Monday
    if first <= last:
        spans = [(first, last)]
    else:
        spans = [(first, top), (field.lo, last)]
    suffix = f"/{step}" if step > 1 else ""
    return ",".join(f"{a}" if a == b else f"{a}-{b}{suffix}" for a, b in spans)


def _days(
    reader: _Reader, texts: list[str], days: tuple[int, ...] | None,
    months: tuple[int, ...] | None, weekdays: tuple[int, ...] | None,
) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None, bool]:
    """Vixie cron's day rule, normalised: (days, weekdays, day_or)."""
    both_must_match = texts[2].startswith("*") or texts[4].startswith("*")
    if not both_must_match and (days is None or weekdays is None):
        return None, None, False  # either may match, and one matches every day
    if days is None:
        return None, weekdays, False
    longest = max(_DAYS_IN_MONTH[m - 1] for m in months or range(1, 13))
    possible = tuple(d for d in days if d <= longest)
    if not both_must_match:
        if not possible:
            return None, weekdays, False  # the days never occur: only the weekday decides
        return possible, weekdays, True
    if not possible:
        raise reader.error(
            f"day {_shown(texts[2])} never occurs in month {_shown(texts[3])}, so it would "
            "never fire; check the day and month fields"
        )
    return possible, weekdays, False


# The values of each field's texts seen before, per field: distinct expressions mostly
# repeat the same field texts ("0", "*", "9", "1-5"), so adding 10,000 distinct expressions
# reads each field text once. Only valid texts are kept (a refusal raises before).
_FIELD_MEMO: Final[tuple[dict[str, tuple[int, ...] | None], ...]] = tuple({} for _ in _FIELDS)
_FIELD_MEMO_LIMIT: Final = 4096  # texts kept per field; beyond it reading just repeats


def _field_values(reader: _Reader, index: int, text: str) -> tuple[int, ...] | None:
    memo = _FIELD_MEMO[index]
    try:
        return memo[text]
    except KeyError:
        pass
    values = reader.field(_FIELDS[index], text)
    if len(memo) >= _FIELD_MEMO_LIMIT:
        memo.clear()
    memo[text] = values
    return values


def parse_expression(expression: str) -> CronSpec:
    """Validate ``expression`` and return its canonical form.

    Raises :class:`InvalidJobError` naming the expression, the field and the fix.
    """
    if not isinstance(expression, str):
        raise InvalidJobError(
            f"cron_expression must be a string like '0 9 * * *', "
            f"not {type(expression).__name__}"
        )
    reader = _Reader(expression)
    texts = reader.split()
    minutes, hours, days, months, weekdays = (
        _field_values(reader, i, text) for i, text in enumerate(texts)
    )
    days, weekdays, day_or = _days(reader, texts, days, months, weekdays)
    return CronSpec(minutes, hours, days, months, weekdays, day_or)
