"""The public import path ``kernel.http`` (the admin HTTP API).

The code lives in :mod:`kernel.admin.http`; this module re-exports its public names.
"""

from __future__ import annotations

from kernel.admin.http import *  # noqa: F403
from kernel.admin.http import __all__ as __all__
