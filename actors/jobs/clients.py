"""Per-app Lark clients, built lazily from the store's apps and secrets."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable

import anyio

from actors.config import LarkConfig
from actors.lark import LarkClient
from actors.store import Store
from kernel.clock import Clock

__all__ = ("LarkClientFactory", "LarkClientPool", "MissingSecretError", "default_client_factory")

logger = logging.getLogger("actors.jobs.clients")

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
    :meth:`aclose`, or until the app's stored secret changes.

    Every :meth:`get` reads the app's secret from the store, so a secret set by another
    process (``lark-scheduler apps update APP --secret-stdin``) is used from the next call
    on, without a restart: the old client and its tokens are dropped. :meth:`forget` drops
    one by hand.
    """

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
        # app id -> (digest of the secret the client was made with, the client)
        self._clients: dict[str, tuple[bytes, LarkClient]] = {}
        # Replaced clients may still be serving a call in another actor: closed at aclose().
        self._retired: list[LarkClient] = []
        self._lock = anyio.Lock()

    async def get(self, app_id: str) -> LarkClient:
        """The client of ``app_id``; :class:`MissingSecretError` when it has no secret."""
        async with self._lock:
            secret = await self._store.get_app_secret(app_id)
            cached = self._clients.get(app_id)
            if not secret:
                if cached is not None:
                    self._retire(app_id)
                raise MissingSecretError(
                    f"app {app_id!r} has no secret in the store; set it with "
                    f"'lark-scheduler apps update {app_id} --secret-stdin' (or "
                    "store.set_app_secret()) before it can be used"
                )
            digest = hashlib.sha256(secret.encode("utf-8")).digest()
            if cached is not None and hmac.compare_digest(cached[0], digest):
                return cached[1]
            if cached is not None:
                logger.info(
                    "app %s: its secret changed in the store; using a new client and token",
                    app_id,
                )
                self._retire(app_id)
            client = self._factory(app_id, secret, self._config, self._clock)
            self._clients[app_id] = (digest, client)
            return client

    def _retire(self, app_id: str) -> None:
        _, client = self._clients.pop(app_id)
        self._retired.append(client)

    async def forget(self, app_id: str) -> None:
        """Close and drop the client of ``app_id`` (rebuilt on next use)."""
        async with self._lock:
            entry = self._clients.pop(app_id, None)
        if entry is not None:
            await entry[1].aclose()

    async def aclose(self) -> None:
        """Close every client."""
        async with self._lock:
            clients = [client for _, client in self._clients.values()] + self._retired
            self._clients, self._retired = {}, []
        for client in clients:
            await client.aclose()
