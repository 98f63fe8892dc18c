"""The public import path ``kernel.cron_explain`` (a cron expression in words and times).

The code lives in :mod:`kernel.schedule.cron_explain`; this module re-exports its public names.
"""

from __future__ import annotations

from kernel.schedule.cron_explain import *  # noqa: F403
from kernel.schedule.cron_explain import __all__ as __all__
