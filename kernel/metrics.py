"""The public import path ``kernel.metrics`` (Prometheus metrics of the kernel).

The code lives in :mod:`kernel.observe.metrics`; this module re-exports its public names.
"""

from __future__ import annotations

from kernel.observe.metrics import *  # noqa: F403
from kernel.observe.metrics import __all__ as __all__
