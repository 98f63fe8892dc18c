"""The messages the built-in jobs' actors accept, and the reports they answer with."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from actors.store import HealthResult, NoticeLevel

__all__ = (
    "AppSyncResult",
    "CheckExpiry",
    "CheckHealth",
    "CleanupReport",
    "CleanupTokens",
    "ExpiryReport",
    "GetReadiness",
    "HealthReport",
    "NoticeOutcome",
    "SendNotice",
    "Severity",
    "SyncReport",
    "SyncUsers",
)

Severity = Literal["info", "warning", "critical"]


# -- user sync ------------------------------------------------------------------------------


class SyncUsers(msgspec.Struct, frozen=True, kw_only=True):
    """Sync the users of every active app (or only ``app_ids``, when given)."""

    app_ids: tuple[str, ...] | None = None


class AppSyncResult(msgspec.Struct, frozen=True, kw_only=True):
    """One app's sync: ``ok`` with what changed; ``partial`` when some departments could
    not be listed (``departments_failed``, ``error`` says why): the users listed were
    written, none was deactivated; or ``failed`` with the error (nothing was written for
    that app)."""

    app_id: str
    status: Literal["ok", "partial", "failed"]
    users: int = 0
    added: int = 0
    updated: int = 0
    deactivated: int = 0
    error: str | None = None
    departments_failed: tuple[str, ...] = ()


class SyncReport(msgspec.Struct, frozen=True, kw_only=True):
    """Every app's result, in app order."""

    started_at: datetime
    apps: tuple[AppSyncResult, ...] = ()

    @property
    def failed(self) -> tuple[AppSyncResult, ...]:
        return tuple(app for app in self.apps if app.status == "failed")

    @property
    def partial(self) -> tuple[AppSyncResult, ...]:
        return tuple(app for app in self.apps if app.status == "partial")


# -- notices --------------------------------------------------------------------------------


class SendNotice(msgspec.Struct, frozen=True, kw_only=True):
    """Send a notice as app ``app_id`` to ``receive_id`` (an open_id); the reply is the
    Lark ``message_id``. ``idempotency_key`` keeps retries of one send from posting twice.
    ``link`` (already in ``body``) becomes a button on a card."""

    app_id: str
    receive_id: str
    title: str
    body: str
    severity: Severity
    idempotency_key: str | None = None
    link: str | None = None


# -- token expiry ---------------------------------------------------------------------------


class CheckExpiry(msgspec.Struct, frozen=True, kw_only=True):
    """Check every active app's user refresh tokens and send the notices that are due.

    ``job_id`` and ``scheduled_at``: the scheduled run asking (cluster mode's claimed run,
    :data:`kernel.coordination.current_run`); the notices' Lark ``uuid`` then derives from
    them, so a repeat of that scheduled time is deduplicated by Lark, and the notice day is
    the scheduled time's day. ``None``: a manual check (the day of now, day-keyed uuids).
    """

    job_id: str | None = None
    scheduled_at: datetime | None = None


class NoticeOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What happened to one due notice slot in one run.

    ``kind`` ``user``: the notice to the user ``open_id`` at ``level``. ``kind`` ``summary``:
    the app's daily summary to its administrator ``open_id`` (``None`` when the app has
    none: ``no_admin``), ``level`` being the worst level it reports.
    """

    app_id: str
    open_id: str | None
    level: NoticeLevel
    outcome: Literal["sent", "duplicate", "failed", "no_admin"]
    message_id: str | None = None
    error: str | None = None
    kind: Literal["user", "summary"] = "user"


class ExpiryReport(msgspec.Struct, frozen=True, kw_only=True):
    """One expiry check: tokens looked at, and the outcome of every due notice."""

    checked_at: datetime
    tokens: int = 0
    notices: tuple[NoticeOutcome, ...] = ()

    def count(self, outcome: str) -> int:
        """How many due notices ended with ``outcome``."""
        return sum(1 for notice in self.notices if notice.outcome == outcome)


# -- cleanup --------------------------------------------------------------------------------


class CleanupTokens(msgspec.Struct, frozen=True, kw_only=True):
    """Delete tokens (and old notice and health rows) past the retention."""


class CleanupReport(msgspec.Struct, frozen=True, kw_only=True):
    """How many rows went; tokens whose refresh expiry is before ``cutoff`` were deleted,
    and failure records of runs started before ``failures_cutoff``."""

    cutoff: datetime
    tokens_deleted: int
    notices_deleted: int
    health_deleted: int
    failures_cutoff: datetime | None = None
    failures_deleted: int = 0


# -- health ---------------------------------------------------------------------------------


class CheckHealth(msgspec.Struct, frozen=True, kw_only=True):
    """Probe the database, RabbitMQ and the Lark API now, and record the results."""


class GetReadiness(msgspec.Struct, frozen=True, kw_only=True):
    """The latest health report (a check runs first when none has run yet)."""


class HealthReport(msgspec.Struct, frozen=True, kw_only=True):
    """One result per component (``database``, ``rabbitmq``, ``lark``); ``ready`` is what
    ``/readyz`` answers: the database is ok and no configured RabbitMQ fails. Lark's
    reachability is reported but does not gate readiness: a replica cannot fix Lark."""

    checked_at: datetime
    results: tuple[HealthResult, ...]
    ready: bool
    recorded: bool = True
