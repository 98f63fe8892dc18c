"""The public import path ``kernel.console.history`` (the operator console).

The code lives in :mod:`kernel.admin.console.history`; this module re-exports its public names.
"""

from __future__ import annotations

from kernel.admin.console.history import *  # noqa: F403
from kernel.admin.console.history import __all__ as __all__
