"""Cron expressions: the parsed, shared form that croniter iterates.

Reading and validating an expression is :mod:`kernel.schedule._cron_parse`'s (our own parser, so
behaviour never depends on the croniter version); naive wall-clock iteration is croniter's,
fed only the canonical form; turning wall-clock times into real instants across
daylight-saving changes lives in :mod:`kernel.schedule._cron_zone`.

A parsed expression is cached by its text, so building a trigger for an expression seen
before is a dict lookup; expressions with the same canonical form share one
:class:`ParsedCron` (and so one croniter and, per zone, one memo of answers).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Final

from croniter import CroniterBadDateError, croniter

from kernel.errors import InvalidJobError
from kernel.schedule._cron_parse import CronSpec, parse_expression

__all__ = ("CronSpec", "ParsedCron", "croniter_form", "parse_cron")


def _listed(values: tuple[int, ...] | None) -> str:
    return "*" if values is None else ",".join(map(str, values))


def croniter_form(spec: CronSpec) -> tuple[str, bool]:
    """The expression and ``day_or`` flag croniter gets for ``spec``.

    Only ``*`` and plain lists of numbers (weekday 0-6): every croniter from 2.0 on reads
    these the same way, while ranges, steps and 7 changed meaning between versions. croniter's
    own day rule is "OR when neither day field is ``*``" unless told ``day_or=False``; with
    one field ``*`` only the other counts, which is also what the canonical form means.
    """
    fields = (spec.minutes, spec.hours, spec.days, spec.months, spec.weekdays)
    return " ".join(_listed(values) for values in fields), spec.day_or


class ParsedCron:
    """A validated cron expression: its canonical form and a croniter for naive iteration.

    Shared by every trigger whose expression has the same canonical form. The croniter is
    built at the first question (a trigger that is only validated, described or stored
    never pays for it) and then reused for every question, from whatever start: croniter
    keeps mutable state, so naive iteration takes a lock (triggers may be built and asked
    on any thread).
    """

    __slots__ = ("_iter", "_lock", "hour_is_wildcard", "spec")

    def __init__(self, spec: CronSpec) -> None:
        self.spec = spec
        self.hour_is_wildcard = spec.every_hour
        self._iter: croniter[datetime] | None = None
        self._lock = threading.Lock()

    def _build(self) -> croniter[datetime]:
        expression, day_or = croniter_form(self.spec)
        try:
            return croniter(expression, datetime(2000, 1, 1), ret_type=datetime, day_or=day_or)
        except ValueError as exc:  # croniter's errors are ValueErrors; our form is always valid
            raise InvalidJobError(
                f"croniter refused the canonical form {expression!r} ({exc}); "
                "this is a bug in lark-scheduler, please report it with the expression"
            ) from None

    def naive_next(self, start: datetime) -> datetime | None:
        """The first matching wall-clock minute strictly after naive ``start``, or None."""
        with self._lock:
            it = self._iter
            if it is None:
                it = self._iter = self._build()
            try:
                result: datetime = it.get_next(datetime, start)
            except (CroniterBadDateError, OverflowError, ValueError):
                return None
        return result


# Text as given -> parsed; canonical form -> parsed (so equivalent spellings share one).
_BY_TEXT: dict[str, ParsedCron] = {}
_BY_SPEC: dict[CronSpec, ParsedCron] = {}
_CACHE_LIMIT: Final = 20_000  # distinct expressions kept; beyond it parsing just repeats


def parse_cron(expression: str) -> ParsedCron:
    """Validate ``expression`` and return its shared parsed form.

    Raises :class:`InvalidJobError` naming the expression, the field and the fix.
    """
    parsed = _BY_TEXT.get(expression) if isinstance(expression, str) else None
    if parsed is not None:
        return parsed
    spec = parse_expression(expression)
    parsed = _BY_SPEC.get(spec)
    if parsed is None:
        if len(_BY_SPEC) >= _CACHE_LIMIT:
            _BY_SPEC.clear()
        parsed = _BY_SPEC.setdefault(spec, ParsedCron(spec))
    if len(_BY_TEXT) >= _CACHE_LIMIT:
        _BY_TEXT.clear()
    _BY_TEXT[expression] = parsed
    return parsed
