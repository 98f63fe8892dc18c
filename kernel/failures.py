"""The public import path ``kernel.failures`` (failure records and their stores).

The code lives in :mod:`kernel.observe.failures`; this module re-exports its public names.
"""

from __future__ import annotations

from kernel.observe.failures import *  # noqa: F403
from kernel.observe.failures import __all__ as __all__
