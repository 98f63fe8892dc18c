"""What the Lark service persists, and the interface every store backend implements.

Rows are frozen :class:`msgspec.Struct` read models. Datetimes are aware and in UTC on the
way out; on the way in any aware datetime is accepted (a naive one is refused, since the
store cannot guess its zone). App secrets are not part of any row: they go in and out only
through :meth:`Store.set_app_secret` and :meth:`Store.get_app_secret`, encrypted at rest.

Users' OAuth tokens are the other credentials a store keeps: they go in through
:meth:`Store.save_user_authorization` and :meth:`Store.rotate_user_tokens` and come out only
through :meth:`Store.get_user_credentials`, encrypted at rest with the same key as app
secrets. :class:`UserToken` rows say when they expire and whether Lark refused them, never
what they are.

A :class:`Store` is also a :class:`kernel.failures.FailureStore`, so the kernel can persist
failure records in the same database.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

import msgspec

from kernel.failures import FailureRecord, RetryAttempt

__all__ = (
    "AppExistsError",
    "AppNotFoundError",
    "AppRecord",
    "HealthResult",
    "HealthStatus",
    "InvalidAppIdError",
    "NoticeKey",
    "NoticeLevel",
    "NoticeStatus",
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
)

NoticeLevel = Literal["warning", "critical", "expired"]
NoticeStatus = Literal["claimed", "sent"]
HealthStatus = Literal["ok", "fail", "not_configured"]
# Lark app ids are "cli_" and 16 hex digits; a little wider, never a newline or a leading "-".
_APP_ID = re.compile(r"cli_[A-Za-z0-9_-]{1,60}")
#: Why Lark refused a refresh token: 20026 invalid, 20037 expired, 20064 revoked.
TokenInvalidReason = Literal["invalid", "expired", "revoked"]


# -- errors ---------------------------------------------------------------------------------


class StoreError(Exception):
    """Base class of every error a store raises on purpose."""


class StoreUnavailableError(StoreError, ConnectionError):
    """The database cannot be reached, or went away mid-operation.

    The operation's transaction was rolled back: nothing of it was written.
    """


class StoreIntegrityError(StoreError, ValueError):
    """The database refused a row (a constraint); the whole operation was rolled back."""


class AppNotFoundError(StoreError, LookupError):
    """No app has this id."""

    def __init__(self, app_id: str) -> None:
        super().__init__(f"no app with app_id {app_id!r}; add_app() registers it first")
        self.app_id = app_id


class AppExistsError(StoreError, ValueError):
    """An app with this id is already registered."""

    def __init__(self, app_id: str) -> None:
        super().__init__(f"app_id {app_id!r} is already registered; use update_app() to change it")
        self.app_id = app_id


class InvalidAppIdError(StoreError, ValueError):
    """An app id that is not a Lark app id (``cli_`` and up to 60 letters, digits, ``_``
    or ``-``); nothing was written."""

    def __init__(self, app_id: object) -> None:
        shown = repr(app_id) if len(repr(app_id)) <= 80 else f"{repr(app_id)[:77]}..."
        super().__init__(
            f"app_id {shown} is not a Lark app id: it must be 'cli_' followed by 1 to 60 "
            "letters, digits, _ or - (copy the App ID from the app's page in the Lark "
            "developer console, e.g. cli_a1b2c3d4e5f6a7b8)"
        )
        self.app_id = app_id


def check_app_id(app_id: object) -> str:
    """``app_id`` when it looks like a Lark app id; :class:`InvalidAppIdError` otherwise."""
    if not isinstance(app_id, str) or not _APP_ID.fullmatch(app_id):
        raise InvalidAppIdError(app_id)
    return app_id


class SecretKeyError(StoreError, ValueError):
    """No key to encrypt secrets with, or a stored secret does not decrypt with the key."""


# -- rows -----------------------------------------------------------------------------------


class AppRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A Lark app the service manages. Its secret is deliberately not a field."""

    app_id: str
    name: str
    active: bool = True
    admin_open_id: str | None = None
    created_at: datetime
    updated_at: datetime


class UserInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A user as the Lark contact API lists them (the input of a sync)."""

    open_id: str
    union_id: str | None = None
    user_id: str | None = None
    name: str = ""
    en_name: str | None = None
    email: str | None = None
    mobile: str | None = None
    department_ids: tuple[str, ...] = ()
    is_frozen: bool = False
    is_resigned: bool = False
    is_activated: bool = True
    is_exited: bool = False


class UserRecord(UserInfo, frozen=True, kw_only=True):
    """A user of one app as stored: what Lark said, whether the last complete listing had
    them (``active``), and when the stored row last changed."""

    app_id: str
    active: bool = True
    updated_at: datetime


class SyncSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What one :meth:`Store.replace_app_users` changed."""

    added: int = 0
    updated: int = 0
    deactivated: int = 0


class SyncState(msgspec.Struct, frozen=True, kw_only=True):
    """When an app's users were last synced completely, and how many the listing had."""

    app_id: str
    last_sync_at: datetime
    last_user_count: int


class UserToken(msgspec.Struct, frozen=True, kw_only=True):
    """Where a user's OAuth authorization of an app stands; never the token values.

    ``has_credentials``: the store holds the tokens themselves (the user authorised through
    the OAuth flow), not only their expiry times. ``invalid_reason``: Lark refused the
    refresh token (the user must authorise again), set at ``invalid_at``.
    """

    app_id: str
    open_id: str
    access_expires_at: datetime | None = None
    refresh_expires_at: datetime
    updated_at: datetime | None = None
    name: str = ""
    scope: str = ""
    authorized_at: datetime | None = None
    invalid_reason: TokenInvalidReason | None = None
    invalid_at: datetime | None = None
    has_credentials: bool = False


class UserCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """A user's stored tokens, decrypted, with the row they belong to.

    ``version`` is what :meth:`Store.rotate_user_tokens` and
    :meth:`Store.invalidate_user_token` compare against. ``repr`` hides the tokens.
    """

    token: UserToken
    access_token: str
    refresh_token: str
    version: int

    def __repr__(self) -> str:
        return (
            f"UserCredentials(token={self.token!r}, access_token='<redacted>', "
            f"refresh_token='<redacted>', version={self.version})"
        )


class TokenGrant(Protocol):
    """Tokens Lark handed out for a user (:class:`actors.lark.UserTokenGrant` is one)."""

    @property
    def access_token(self) -> str: ...
    @property
    def access_expires_at(self) -> datetime: ...
    @property
    def refresh_token(self) -> str: ...
    @property
    def refresh_expires_at(self) -> datetime: ...
    @property
    def scope(self) -> str: ...


class NoticeKey(msgspec.Struct, frozen=True, kw_only=True):
    """One notice slot: at most one notice per token, level and local day is sent."""

    app_id: str
    open_id: str
    level: NoticeLevel
    day: date


class SentNotice(msgspec.Struct, frozen=True, kw_only=True):
    """A notice slot that was claimed (sending in progress) or sent."""

    app_id: str
    open_id: str
    level: NoticeLevel
    day: date
    status: NoticeStatus
    claimed_at: datetime
    sent_at: datetime | None = None
    message_id: str | None = None

    @property
    def key(self) -> NoticeKey:
        """The slot this row occupies."""
        return NoticeKey(app_id=self.app_id, open_id=self.open_id, level=self.level, day=self.day)


class SentSummary(msgspec.Struct, frozen=True, kw_only=True):
    """An administrator's daily summary slot of one app: claimed (sending) or sent."""

    app_id: str
    day: date
    status: NoticeStatus
    claimed_at: datetime
    sent_at: datetime | None = None
    message_id: str | None = None


class HealthResult(msgspec.Struct, frozen=True, kw_only=True):
    """One component's health-check outcome; ``latency`` in seconds, when measured."""

    checked_at: datetime
    component: str
    status: HealthStatus
    latency: float | None = None
    detail: str = ""


# -- the interface --------------------------------------------------------------------------


@runtime_checkable
class Store(Protocol):
    """The service's persistence: apps, users, tokens, notices, health and failure records.

    Every method is a coroutine and safe to call concurrently from tasks of one event loop.
    A method either completes or changes nothing (each write is one transaction, or, for
    :meth:`delete_tokens_expired_before` and :meth:`delete_failures_before`, one transaction per
    batch). When the database
    cannot be reached a method raises :class:`StoreUnavailableError`.
    """

    async def open(self) -> None:
        """Connect, and apply pending migrations unless the store was built with
        ``migrate_on_open=False``."""
        ...

    async def close(self) -> None:
        """Disconnect; idempotent."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def migrate(self) -> list[int]:
        """Apply pending schema migrations in order; answer the versions applied now."""
        ...

    async def applied_migrations(self) -> list[int]:
        """The schema versions applied so far, in order."""
        ...

    async def ping(self) -> None:
        """Run a real query; raise :class:`StoreUnavailableError` when it cannot."""
        ...

    # apps
    async def add_app(
        self,
        app_id: str,
        name: str,
        *,
        secret: str | None = None,
        admin_open_id: str | None = None,
        active: bool = True,
    ) -> AppRecord:
        """Register an app; :class:`AppExistsError` when its id is taken."""
        ...

    async def update_app(
        self,
        app_id: str,
        *,
        name: str | None = None,
        admin_open_id: str | msgspec.UnsetType | None = msgspec.UNSET,
        active: bool | None = None,
    ) -> AppRecord:
        """Change the given fields (``admin_open_id=None`` clears it); answer the new row."""
        ...

    async def disable_app(self, app_id: str) -> AppRecord:
        """Mark an app inactive (its rows stay); answer the new row."""
        ...

    async def get_app(self, app_id: str) -> AppRecord | None: ...

    async def list_apps(self, *, active_only: bool = True) -> list[AppRecord]:
        """Apps ordered by id."""
        ...

    async def set_app_secret(self, app_id: str, secret: str) -> None:
        """Store an app's secret, encrypted with the store's key."""
        ...

    async def get_app_secret(self, app_id: str) -> str | None:
        """The decrypted secret, or ``None`` when none is set."""
        ...

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose``, derived (HKDF-SHA256) from the store's secret key.

        Signing keys (the OAuth ``state``) need no configuration of their own this way, are
        never in the database, are the same on every replica sharing the secret key, and
        change with it. Only while the store is open.
        """
        ...

    # users
    async def replace_app_users(
        self,
        app_id: str,
        users: Sequence[UserInfo],
        synced_at: datetime,
        *,
        deactivate_missing: bool = True,
    ) -> SyncSummary:
        """Make the stored users of an app match a complete listing, in one transaction.

        Every listed user is upserted (a repeated ``open_id``: the last one wins); stored
        users missing from the listing are marked inactive, never deleted; the sync time
        and listing size are recorded. Running it twice with one listing changes nothing
        the second time. ``deactivate_missing=False`` is for a partial listing (some
        departments could not be listed): missing users are left as they are.
        """
        ...

    async def list_users(self, app_id: str, *, active_only: bool = False) -> list[UserRecord]:
        """An app's users ordered by ``open_id``."""
        ...

    async def get_sync_state(self, app_id: str) -> SyncState | None: ...

    # tokens
    async def upsert_user_token(self, token: UserToken) -> UserToken:
        """Insert or replace the expiry times of a user's tokens; answer the stored row."""
        ...

    async def list_user_tokens(self, app_id: str | None = None) -> list[UserToken]:
        """Tokens ordered by app and ``open_id``, optionally of one app."""
        ...

    async def delete_tokens_expired_before(
        self, cutoff: datetime, *, batch_size: int = 500, max_batches: int | None = None
    ) -> int:
        """Delete tokens whose refresh expiry, or Lark's refusal (``invalid_at``), is strictly
        before ``cutoff``, ``batch_size`` rows per transaction, at most ``max_batches``
        batches; answer how many went."""
        ...

    async def save_user_authorization(
        self, app_id: str, open_id: str, grant: TokenGrant, *, name: str = ""
    ) -> UserToken:
        """Store a user's fresh authorization: both tokens (encrypted), their expiry, who
        the user is. Replaces what was stored for the user and clears ``invalid_reason``."""
        ...

    async def get_user_credentials(self, app_id: str, open_id: str) -> UserCredentials | None:
        """The user's decrypted tokens; ``None`` when the store holds none for them (no
        row, or a row with expiry times only)."""
        ...

    async def rotate_user_tokens(
        self, app_id: str, open_id: str, version: int, grant: TokenGrant
    ) -> UserToken | None:
        """Store the tokens a refresh answered (the new refresh token with its access
        token, in one transaction) if the row is still at ``version``; ``None`` when it
        changed meanwhile (another refresh or a new authorization won: nothing written)."""
        ...

    async def invalidate_user_token(
        self, app_id: str, open_id: str, version: int, reason: TokenInvalidReason
    ) -> bool:
        """Mark the user's tokens refused by Lark if the row is still at ``version`` and not
        invalid yet; answer whether it was marked."""
        ...

    async def delete_user_token(self, app_id: str, open_id: str) -> bool:
        """Forget the user's tokens of ``app_id``; answer whether there were any."""
        ...

    async def consume_oauth_state(self, nonce: str, app_id: str, expires_at: datetime) -> bool:
        """Record an OAuth state as used; ``False`` when it was used before (a replay).

        States that expired are forgotten in the same transaction: a signed state is refused
        after ``expires_at`` anyway, so the table only keeps what could still be replayed.
        """
        ...

    # notices
    async def claim_notice(
        self,
        app_id: str,
        open_id: str,
        level: NoticeLevel,
        day: date,
        *,
        stale_after: float = 600.0,
    ) -> bool:
        """Claim a notice slot before sending; ``True`` means the caller must send it.

        ``False`` when the slot is sent already or another caller holds a claim younger
        than ``stale_after`` seconds (an older claim is taken over: its holder crashed).
        After sending, call :meth:`record_notice_sent`; when sending fails, call
        :meth:`release_notice` so that the next run tries again.
        """
        ...

    async def record_notice_sent(
        self,
        app_id: str,
        open_id: str,
        level: NoticeLevel,
        day: date,
        *,
        message_id: str | None = None,
    ) -> None:
        """Mark a slot sent (claimed or not); a slot already sent keeps its first record."""
        ...

    async def release_notice(
        self, app_id: str, open_id: str, level: NoticeLevel, day: date
    ) -> None:
        """Drop a claim whose notice failed to send; a sent slot is left alone."""
        ...

    async def list_notices(
        self, *, app_id: str | None = None, day: date | None = None
    ) -> list[SentNotice]:
        """Claimed and sent notice slots, ordered by day, app, user and level."""
        ...

    async def delete_notices_before(self, day: date) -> int:
        """Drop notice and summary slots of days before ``day``; answer how many."""
        ...

    async def claim_summary(self, app_id: str, day: date, *, stale_after: float = 600.0) -> bool:
        """Claim the administrator's summary slot of ``app_id`` for ``day``; as
        :meth:`claim_notice`, then :meth:`record_summary_sent` or :meth:`release_summary`."""
        ...

    async def record_summary_sent(
        self, app_id: str, day: date, *, message_id: str | None = None
    ) -> None:
        """Mark a summary slot sent; a slot already sent keeps its first record."""
        ...

    async def release_summary(self, app_id: str, day: date) -> None:
        """Drop a summary claim whose message failed to send; a sent slot is left alone."""
        ...

    async def list_summaries(
        self, *, app_id: str | None = None, day: date | None = None
    ) -> list[SentSummary]:
        """Claimed and sent summary slots, ordered by day and app."""
        ...

    # health
    async def record_health(self, results: Sequence[HealthResult]) -> None: ...

    async def latest_health(self) -> list[HealthResult]:
        """The newest result of each component, ordered by component."""
        ...

    async def delete_health_before(self, cutoff: datetime) -> int:
        """Drop results checked before ``cutoff``; answer how many."""
        ...

    # failure records (kernel.failures.FailureStore)
    async def add_failure(self, record: FailureRecord) -> None: ...

    async def get_failure(self, failure_id: str) -> FailureRecord | None: ...

    async def list_failures(
        self, *, job_id: str | None = None, limit: int = 100
    ) -> list[FailureRecord]: ...

    async def set_retry(self, failure_id: str, attempt: RetryAttempt) -> None: ...

    async def delete_failures_before(self, cutoff: datetime, *, batch_size: int = 500) -> int:
        """Delete failure records (and their retries) of runs started strictly before
        ``cutoff``, ``batch_size`` records per transaction; answer how many went."""
        ...
