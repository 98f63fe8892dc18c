"""The public import path ``kernel.logs`` (logging: formats, redaction, one line per run).

The code lives in :mod:`kernel.observe.logs`; this module re-exports its public names.
"""

from __future__ import annotations

from kernel.observe.logs import *  # noqa: F403
from kernel.observe.logs import __all__ as __all__
