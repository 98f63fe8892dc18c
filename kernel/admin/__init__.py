"""The admin HTTP API (aiohttp): jobs, failures, health, readiness and metrics.

* :mod:`.http` - :class:`~kernel.admin.http.AdminServer` and ``create_admin_app``;
* :mod:`._handlers` - the handlers, the token guard and the error middleware;
* :mod:`._protocol` - what happens below the application (unparsable requests, access log);
* :mod:`.api_models` - the JSON bodies.

Import it by its public paths (``kernel.http``, ``kernel.api_models``).
"""

from __future__ import annotations

__all__ = ()
