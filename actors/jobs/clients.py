"""Per-app Lark clients, built lazily from the store's apps and secrets."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from actors.config import LarkConfig
from actors.lark import LarkClient
from actors.store import Store
from kernel.clock import Clock

__all__ = ("LarkClientFactory", "LarkClientPool", "MissingSecretError", "default_client_factory")

#: Builds the client of one app: ``factory(app_id, app_secret, lark_config, clock)``.
LarkClientFactory = Callable[[str, str, LarkConfig, Clock], LarkClient]


class MissingSecretError(LookupError):
    """An app has no secret in the store, so no Lark client can speak for it."""


def default_client_factory(
    app_id: str, app_secret: str, config: LarkConfig, clock: Clock
) -> LarkClient:
    """A :class:`LarkClient` on the configured host, with the service's clock for time
    and backoff sleeps."""
    return LarkClient(
        app_id,
        app_secret,
        base_url=config.base_url,
        timeout=config.timeout,
        max_retries=config.max_retries,
        now=clock.now,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )


class LarkClientPool:
    """One client per app, made on first use and kept (with its token cache) until
    :meth:`aclose`. :meth:`forget` drops one, e.g. after its secret changed."""

    def __init__(
        self,
        store: Store,
        config: LarkConfig,
        clock: Clock,
        factory: LarkClientFactory = default_client_factory,
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._factory = factory
        self._clients: dict[str, LarkClient] = {}
        self._lock = anyio.Lock()

    async def get(self, app_id: str) -> LarkClient:
        """The client of ``app_id``; :class:`MissingSecretError` when it has no secret."""
        async with self._lock:
            client = self._clients.get(app_id)
            if client is None:
                secret = await self._store.get_app_secret(app_id)
                if not secret:
                    raise MissingSecretError(
                        f"app {app_id!r} has no secret in the store; set it with "
                        "store.set_app_secret() (or the admin API) before it can be synced"
                    )
                client = self._factory(app_id, secret, self._config, self._clock)
                self._clients[app_id] = client
            return client

    async def forget(self, app_id: str) -> None:
        """Close and drop the client of ``app_id`` (rebuilt on next use)."""
        async with self._lock:
            client = self._clients.pop(app_id, None)
        if client is not None:
            await client.aclose()

    async def aclose(self) -> None:
        """Close every client."""
        async with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
