"""``TokenExpiryMonitor`` with the seed's constructor::

    monitor = TokenExpiryMonitor(messaging_client=client, warning_days=7, critical_days=3)

It is :class:`actors.jobs.TokenExpiryMonitor` with the store made optional: without one,
each :meth:`~TokenExpiryMonitor.check_token_expiry` opens the configured store (the file
named by ``LARK_SCHEDULER_CONFIG`` and the ``LARK_SCHEDULER_*`` environment) for its
duration, and then gives users the configuration's re-authorization link
(``oauth.redirect_base_url``) unless ``reauthorize_url`` was passed. ``messaging_client`` is
anything with ``async send_notice(notice) -> message_id``.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from actors.config import load_config
from actors.jobs import ExpiryReport
from actors.jobs import TokenExpiryMonitor as _Monitor
from actors.jobs.notifier import MessagingClient
from actors.service import LarkService
from actors.store import Store

__all__ = ("TokenExpiryMonitor",)


class _NoStore:
    """Stands in until a check opens the configured store."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(
            "this TokenExpiryMonitor has no store open; check_token_expiry() opens the "
            "configured one, or pass store=... to the constructor"
        )


class TokenExpiryMonitor(_Monitor):
    """Classifies refresh tokens (``get_expiry_status``) and sends due notices
    (``check_token_expiry``); see the module docstring. Run one check at a time."""

    def __init__(
        self,
        messaging_client: MessagingClient,
        warning_days: int = 7,
        critical_days: int = 3,
        *,
        store: Store | None = None,
        **options: Any,
    ) -> None:
        self._own_store = store is None
        self._own_link = "reauthorize_url" not in options
        placeholder: Any = _NoStore()
        super().__init__(
            messaging_client, warning_days, critical_days,
            store=store if store is not None else placeholder, **options,
        )

    async def check_token_expiry(
        self, now: datetime | None = None, *, run: tuple[str, datetime] | None = None
    ) -> ExpiryReport:
        """Check every active app's user refresh tokens once; send what is due."""
        if not self._own_store:
            return await super().check_token_expiry(now, run=run)
        config = load_config(os.environ.get("LARK_SCHEDULER_CONFIG"), os.environ)
        link = self.reauthorize_url
        if self._own_link:
            self.reauthorize_url = config.oauth.authorize_url
        async with LarkService(config) as service:
            placeholder, self.store = self.store, service.store
            try:
                return await super().check_token_expiry(now, run=run)
            finally:
                self.store = placeholder
                self.reauthorize_url = link
