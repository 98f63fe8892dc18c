"""The public import path ``kernel.api_models`` (the admin API's request and answer bodies).

The code lives in :mod:`kernel.admin.api_models`; this module re-exports its public names.
"""

from __future__ import annotations

from kernel.admin.api_models import *  # noqa: F403
from kernel.admin.api_models import __all__ as __all__
