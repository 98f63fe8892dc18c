"""The public import path ``kernel.openapi`` (the admin API's routes as OpenAPI operations).

The code lives in :mod:`kernel.admin.openapi`; this module re-exports its public names.
"""

from __future__ import annotations

from kernel.admin.openapi import *  # noqa: F403
from kernel.admin.openapi import __all__ as __all__
