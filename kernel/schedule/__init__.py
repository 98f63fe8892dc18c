"""Pure schedule maths: when jobs fire and what happens to due times.

No event loop, no clock reads and no I/O in here (import-linter keeps it so): triggers
and the cron maths, zones, the fire-time arithmetic of one job, and the policy.
"""

from __future__ import annotations

__all__ = ()
