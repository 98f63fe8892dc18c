"""The Lark service's persistence: one :class:`Store` interface, SQLite and PostgreSQL.

``open_store(url)`` picks the backend from the URL and answers an opened store::

    async with await open_store("sqlite:///data/lark.db") as store: ...
    store = await open_store("postgresql://user@host/db", schema="lark", secret_key=key)
"""

from __future__ import annotations

from typing import Any

from actors.store._files import secure_data_dir
from actors.store.base import (
    AppExistsError,
    AppNotFoundError,
    AppRecord,
    HealthResult,
    HealthStatus,
    InvalidAppIdError,
    NoticeKey,
    NoticeLevel,
    SecretKeyError,
    SentNotice,
    SentSummary,
    Store,
    StoreError,
    StoreIntegrityError,
    StoreUnavailableError,
    SyncState,
    SyncSummary,
    TokenGrant,
    TokenInvalidReason,
    UserCredentials,
    UserInfo,
    UserRecord,
    UserToken,
    check_app_id,
)

__all__ = (
    "AppExistsError",
    "AppNotFoundError",
    "AppRecord",
    "HealthResult",
    "HealthStatus",
    "InvalidAppIdError",
    "NoticeKey",
    "NoticeLevel",
    "SecretKeyError",
    "SentNotice",
    "SentSummary",
    "Store",
    "StoreError",
    "StoreIntegrityError",
    "StoreUnavailableError",
    "SyncState",
    "SyncSummary",
    "TokenGrant",
    "TokenInvalidReason",
    "UserCredentials",
    "UserInfo",
    "UserRecord",
    "UserToken",
    "check_app_id",
    "make_store",
    "open_store",
    "secure_data_dir",
)

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://", "postgresql+asyncpg://")


def make_store(url: str, **kw: Any) -> Store:
    """An unopened store for ``url``; keyword arguments go to the backend's constructor.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (the path is what
    follows ``sqlite:///``, as in SQLAlchemy) and ``sqlite:///:memory:`` choose
    :class:`~actors.store.sqlite.SqliteStore`; ``postgresql://...`` (or ``postgres://``)
    chooses :class:`~actors.store.postgres.PostgresStore`.
    """
    if url.startswith(_SQLITE):
        path = url[len(_SQLITE) :]
        if not path:
            raise ValueError(
                "store URL 'sqlite:///' has no path; write sqlite:///data/lark.db (relative) "
                "or sqlite:////var/lib/lark/lark.db (absolute)"
            )
        from actors.store.sqlite import SqliteStore

        return SqliteStore(path, **kw)
    if url.startswith(_POSTGRES):
        from actors.store.postgres import PostgresStore

        dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        return PostgresStore(dsn, **kw)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ValueError(
        f"store URL scheme {scheme!r} is not supported; use sqlite:///path/to/db "
        "or postgresql://user@host:port/database"
    )


async def open_store(url: str, **kw: Any) -> Store:
    """:func:`make_store`, opened (and migrated unless ``migrate_on_open=False``)."""
    store = make_store(url, **kw)
    await store.open()
    return store
