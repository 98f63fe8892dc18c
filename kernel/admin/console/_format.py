"""How the console writes times and durations (pure: ``now`` is passed in)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from .html import Markup, h

__all__ = ("duration", "relative", "seconds", "when")


def relative(delta: float) -> str:
    """``delta`` seconds from now in words: "in 3 h", "5 min ago", "now"."""
    size = abs(delta)
    if size < 1:
        return "now"
    if size < 90:
        amount = f"{round(size)} s"
    elif size < 90 * 60:
        amount = f"{round(size / 60)} min"
    elif size < 48 * 3600:
        amount = f"{round(size / 3600)} h"
    else:
        amount = f"{round(size / 86400)} d"
    return f"in {amount}" if delta > 0 else f"{amount} ago"


def duration(value: float | None) -> str:
    """A duration in seconds for people: "8 ms", "1.25 s", "2 min 5 s", "1 h 3 min"."""
    if value is None:
        return "—"
    if value < 0.001:
        return "< 1 ms"
    if value < 1:
        return f"{round(value * 1000)} ms"
    if value < 60:
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def seconds(value: float | None) -> str:
    """A lateness in seconds, signed only when early: "0.003 s", "12.4 s"."""
    if value is None:
        return "—"
    return duration(value) if value >= 0 else f"-{duration(-value)}"


def when(moment: datetime | None, now: datetime, zone: tzinfo) -> Markup:
    """``moment`` in ``zone`` and relative to ``now``, with the UTC time on hover."""
    if moment is None:
        return Markup("—")
    local = moment.astimezone(zone)
    utc = moment.astimezone(UTC)
    return h(
        "time",
        {
            "datetime": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "title": utc.strftime("%Y-%m-%d %H:%M:%S UTC"),
        },
        h("span", {"class": "abs"}, local.strftime("%Y-%m-%d %H:%M:%S %Z")),
        " ",
        h("span", {"class": "rel"}, f"({relative((moment - now).total_seconds())})"),
    )
