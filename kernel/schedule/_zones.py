"""IANA zones from names and tzinfo objects, with refusals that suggest the right name."""

from __future__ import annotations

import difflib
from datetime import timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from kernel.errors import InvalidJobError

__all__ = ("resolve_timezone",)

_ZONES: dict[str, ZoneInfo] = {}


@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def _unknown_zone(field: str, name: str) -> InvalidJobError:
    names = _zone_names()
    folded = {n.lower(): n for n in names}
    close = [folded[name.lower()]] if name.lower() in folded else []
    close = close or difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    example = close[0] if close else "Asia/Shanghai"
    return InvalidJobError(
        f"{field} {name!r} is not a known IANA zone; use a name like {example!r} or 'UTC'"
    )


def _load_zone(name: str, field: str) -> ZoneInfo:
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _unknown_zone(field, name) from None
    _ZONES[name] = zone
    return zone


def resolve_timezone(tz: str | tzinfo, field: str = "timezone") -> ZoneInfo:
    """The IANA zone ``tz`` names: a zone name, a ``ZoneInfo``, UTC, or a whole-hour offset.

    Raises :class:`InvalidJobError` for an unknown name, suggesting the closest known one.
    """
    if isinstance(tz, str):
        zone = _ZONES.get(tz)
        return zone if zone is not None else _load_zone(tz, field)
    if isinstance(tz, ZoneInfo):
        if tz.key is None:
            raise InvalidJobError(
                f"{field} {tz!r} has no IANA name (loaded from a file); "
                "use ZoneInfo('Area/City'), e.g. ZoneInfo('Asia/Shanghai')"
            )
        return tz
    if isinstance(tz, tzinfo):
        key = getattr(tz, "key", None) or getattr(tz, "zone", None)  # dateutil / pytz zones
        if isinstance(key, str):
            return resolve_timezone(key, field)
        if isinstance(tz, timezone):
            offset = tz.utcoffset(None)
            hours, rest = divmod(offset, timedelta(hours=1))
            if not rest:
                # POSIX sign: Etc/GMT-8 is eight hours *ahead* of UTC.
                return resolve_timezone("UTC" if hours == 0 else f"Etc/GMT{-hours:+d}", field)
        raise InvalidJobError(
            f"{field} {tz!r} is not an IANA zone; use a name like 'Asia/Shanghai' or 'UTC'"
        )
    raise InvalidJobError(
        f"{field} must be a zone name like 'Asia/Shanghai' or a tzinfo, "
        f"not {type(tz).__name__}"
    )
