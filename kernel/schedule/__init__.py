"""Pure schedule maths: when jobs fire and what happens to due times.

No event loop, no clock reads and no I/O in here (import-linter keeps it so):

* :mod:`.triggers` - interval, cron and date triggers (public path ``kernel.triggers``);
* :mod:`._cron_parse`, :mod:`._cron`, :mod:`._cron_zone`, :mod:`._cron_describe` - reading
  cron expressions (our own parser), their shared iterable form, mapping matches to
  instants across daylight saving, describing them in words;
* :mod:`._zones` - time zone names; :mod:`.cron_explain` - ``kernel.cron_explain``;
* :mod:`.fire_times` - where one job is on its trigger's times, on both clocks;
* :mod:`.policy` - the one decision: coalesce, misfire grace, max_instances, retry.
"""

from __future__ import annotations

__all__ = ()
