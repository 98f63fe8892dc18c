"""The public import path ``kernel.console`` (the operator console).

The code lives in :mod:`kernel.admin.console`; this module re-exports its public names.
"""

from __future__ import annotations

from kernel.admin.console import *  # noqa: F403
from kernel.admin.console import __all__ as __all__
