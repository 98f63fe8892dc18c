"""The public import path ``kernel.events`` (the events the kernel reports).

The code lives in :mod:`kernel.observe.events`; this module re-exports its public names.
"""

from __future__ import annotations

from kernel.observe.events import *  # noqa: F403
from kernel.observe.events import __all__ as __all__
