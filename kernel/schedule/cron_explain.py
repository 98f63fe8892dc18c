"""Explain a cron expression: what it means, when it fires next, and daylight-saving traps.

Backs the ``cron explain`` command. Pure: the caller passes ``after`` (no clock is read).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

import msgspec

from kernel.schedule._cron import parse_cron
from kernel.schedule._cron_describe import describe_spec
from kernel.schedule._cron_zone import gap_end, transition_between
from kernel.schedule.triggers import CronTrigger

__all__ = ("DstWarning", "Explanation", "daylight_saving_rule", "explain")

# No zone has shifted its clocks by more than this at once for DST; older wall times
# cannot have an occurrence after `after`.
_LOOK_BACK = timedelta(hours=3)
_MAX_CANDIDATES = 100_000  # wall times scanned for warnings, so "* * * * *" with a big n ends
_YEAR_DAYS = 366  # the rule is stated when the zone changes its offset within a year

SKIPPED_RULE = "a local time the clocks skip runs once, at the end of the gap"
REPEATED_RULE = {
    True: "a local time that happens twice runs both times, because the hour field matches "
    "every hour",
    False: "a local time that happens twice runs once, the first time, because the hour field "
    "does not match every hour",
}
"""The repeated-hour rule, by whether the hour field matches all 24 hours (``*``, ``*/1``,
``0-23``, ...): design.md's daylight-saving contract, in the words ``cron explain`` uses."""


class DstWarning(msgspec.Struct, frozen=True, kw_only=True):
    """A matching local time that does not exist (``gap``) or happens twice (``overlap``)."""

    kind: Literal["gap", "overlap"]
    local_time: datetime
    """The wall-clock time the expression names (naive)."""
    runs_at: tuple[datetime, ...]
    """The real instants it runs at, as aware local datetimes."""
    message: str


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """A cron expression in a zone, explained."""

    expression: str
    timezone: str
    description: str
    next_fires: tuple[datetime, ...]
    """The next fire instants after ``after``, as aware local datetimes."""
    warnings: tuple[DstWarning, ...]
    """Matching local times between ``after`` and the last listed fire that a DST change
    skips or repeats."""
    daylight_saving: str | None
    """How this expression runs across daylight-saving changes, when the zone has one within
    a year after ``after`` or in the listed window; else None."""

    def format(self) -> str:
        """A few lines for a terminal."""
        lines = [f"{self.expression!r} in {self.timezone}: {self.description}", "next fires:"]
        lines += [f"  {fire.isoformat()}  ({fire:%a %Z})" for fire in self.next_fires]
        if self.daylight_saving is not None:
            lines.append(f"daylight saving: {self.daylight_saving}")
        lines += [f"warning: {warning.message}" for warning in self.warnings]
        return "\n".join(lines)


def _hm(moment: datetime) -> str:
    return f"{moment:%H:%M %Z}"


def _warning(trigger: CronTrigger, local: datetime) -> DstWarning | None:
    zone = trigger.timezone
    assert zone is not None
    key = zone.key
    first = local.replace(tzinfo=zone)
    second = local.replace(tzinfo=zone, fold=1)
    off_first, off_second = first.utcoffset(), second.utcoffset()
    if off_first == off_second:
        return None
    assert off_first is not None
    assert off_second is not None
    when = f"{local:%Y-%m-%d %H:%M}"
    if off_first < off_second:
        end = gap_end(zone, local).astimezone(zone)
        start_wall = end.replace(tzinfo=None) - (off_second - off_first)
        return DstWarning(
            kind="gap",
            local_time=local,
            runs_at=(end,),
            message=(
                f"{when} does not exist in {key}: clocks jump from {start_wall:%H:%M} to "
                f"{end:%H:%M}; skipped times run once, at {_hm(end)}"
            ),
        )
    early = first.astimezone(UTC).astimezone(zone)
    late = second.astimezone(UTC).astimezone(zone)
    change = transition_between(zone, early, late).astimezone(zone)
    back_from = change.replace(tzinfo=None) + (off_first - off_second)
    if trigger.hour_is_wildcard:
        runs: tuple[datetime, ...] = (early, late)
        verdict = f"it runs both times, at {_hm(early)} and at {_hm(late)}"
    else:
        runs = (early,)
        verdict = (
            f"it runs once, the first time ({_hm(early)}), because its hour field does not "
            "match every hour"
        )
    return DstWarning(
        kind="overlap",
        local_time=local,
        runs_at=runs,
        message=(
            f"{when} happens twice in {key}: clocks go back from {back_from:%H:%M} to "
            f"{change:%H:%M}; {verdict}"
        ),
    )


def _warnings(trigger: CronTrigger, after: datetime, last: datetime) -> tuple[DstWarning, ...]:
    zone = trigger.timezone
    assert zone is not None
    parsed = parse_cron(trigger.expression)
    local = parsed.naive_next(after.astimezone(zone).replace(tzinfo=None) - _LOOK_BACK)
    end = last.astimezone(zone).replace(tzinfo=None)
    found: list[DstWarning] = []
    for _ in range(_MAX_CANDIDATES):
        if local is None or local > end:
            break
        warning = _warning(trigger, local)
        if warning is not None:
            instants = (
                (warning.local_time.replace(tzinfo=zone).astimezone(UTC),
                 warning.local_time.replace(tzinfo=zone, fold=1).astimezone(UTC))
                if warning.kind == "overlap" else warning.runs_at
            )
            if any(after < instant <= last for instant in instants):
                found.append(warning)
        local = parsed.naive_next(local)
    return tuple(found)


def daylight_saving_rule(every_hour: bool) -> str:
    """The daylight-saving contract for a job whose hour field does (not) match every hour."""
    return f"{SKIPPED_RULE}; {REPEATED_RULE[every_hour]}"


def _changes_within_a_year(zone: tzinfo, after: datetime) -> bool:
    offset = after.astimezone(zone).utcoffset()
    # Daily samples: no zone changes its offset and back within a day.
    for day in range(1, _YEAR_DAYS + 1):
        try:
            moment = (after + timedelta(days=day)).astimezone(zone)
        except OverflowError:  # the end of time
            return False
        if moment.utcoffset() != offset:
            return True
    return False


def explain(
    expression: str, timezone: str | tzinfo, n: int = 5, *, after: datetime
) -> Explanation:
    """Describe ``expression`` in ``timezone`` and list its next ``n`` fires after ``after``.

    Raises :class:`~kernel.errors.InvalidJobError` for a bad expression or zone.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a whole number >= 0, got {n!r}")
    trigger = CronTrigger(expression, timezone)
    zone = trigger.timezone
    assert zone is not None
    fires = trigger.next_fire_times(after, n)
    warnings = _warnings(trigger, after, fires[-1]) if fires else ()
    observed = bool(warnings) or _changes_within_a_year(zone, after)
    return Explanation(
        expression=expression,
        timezone=str(zone.key),
        description=describe_spec(parse_cron(expression).spec),
        next_fires=tuple(fire.astimezone(zone) for fire in fires),
        warnings=warnings,
        daylight_saving=daylight_saving_rule(trigger.hour_is_wildcard) if observed else None,
    )
