"""The admin HTTP API (aiohttp): jobs, failures, health, readiness, metrics, the console.

* :mod:`.http` - :class:`~kernel.admin.http.AdminServer` and ``create_admin_app``;
* :mod:`._handlers` - the handlers, the token guard and the error middleware;
* :mod:`._routes` - the route table, as :mod:`.openapi` operations (``/openapi.json``);
* :mod:`._protocol` - what happens below the application (unparsable requests, access log);
* :mod:`.api_models` - the JSON bodies;
* :mod:`.console` - the operator console at ``/ui``.

Import it by its public paths (``kernel.http``, ``kernel.api_models``, ``kernel.openapi``,
``kernel.console``).
"""

from __future__ import annotations

__all__ = ()
