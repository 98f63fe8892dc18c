"""The public import path ``kernel.redaction`` (masking secrets in text).

The code lives in :mod:`kernel.observe.redaction`; this module re-exports its public names.
"""

from __future__ import annotations

from kernel.observe.redaction import *  # noqa: F403
from kernel.observe.redaction import __all__ as __all__
