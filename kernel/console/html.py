"""The public import path ``kernel.console.html`` (the operator console).

The code lives in :mod:`kernel.admin.console.html`; this module re-exports its public names.
"""

from __future__ import annotations

from kernel.admin.console.html import *  # noqa: F403
from kernel.admin.console.html import __all__ as __all__
