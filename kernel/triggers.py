"""The public import path ``kernel.triggers`` (triggers: when a job runs).

The code lives in :mod:`kernel.schedule.triggers`; this module re-exports its public names.
"""

from __future__ import annotations

from kernel.schedule.triggers import *  # noqa: F403
from kernel.schedule.triggers import __all__ as __all__
