"""Refresh-token expiry: the policy, the notices, and the actor that runs the check.

Only users' *refresh* tokens are watched: tenant and app tokens renew themselves from the
app secret and never need a person. Per lark-domain.md's table:

========  ==============================  ========  ===========================
level     when (refresh token)            severity  how often
========  ==============================  ========  ===========================
warning   expires within ``warning_days``  warning   once a day per token, level
critical  expires within ``critical_days`` critical  once a day per token, level
expired   already expired                 critical  once a day per token, level
========  ==============================  ========  ===========================

"Once a day" is the local day in the service's timezone. Before sending, a notice slot is
claimed in the store; after a successful send it is recorded as sent; when sending fails
it is released, so the next run (or a retry) sends it, and it is never marked sent.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, tzinfo
from typing import Any, Literal

import msgspec
from aioprometheus.collectors import Counter, Gauge, Registry

from actors.jobs.messages import CheckExpiry, ExpiryReport, NoticeOutcome, SendNotice, Severity
from actors.jobs.notifier import MessagingClient
from actors.runtime import Actor
from actors.store import AppRecord, NoticeLevel, Store, StoreUnavailableError, UserToken
from kernel.clock import Clock, RealClock
from kernel.triggers import resolve_timezone

__all__ = ("ExpiryStatus", "TokenExpiryActor", "TokenExpiryMonitor")

logger = logging.getLogger("actors.jobs.expiry")

ExpiryState = Literal["valid", "expiring", "expiring_soon", "expired"]
_LEVELS: dict[ExpiryState, NoticeLevel] = {
    "expiring": "warning",
    "expiring_soon": "critical",
    "expired": "expired",
}
_DAY = 86400.0
# A fixed namespace: the idempotency key of a notice slot is the same in every process.
_NOTICE_NAMESPACE = uuid.UUID("5f0c7f0e-5d1a-4c55-9a53-8d1c2b7f4e21")


class ExpiryStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Where one refresh token stands.

    ``days`` and ``hours`` are whole days and whole hours to expiry, rounded down (so
    negative once expired); ``days_to_expiry`` is the exact fraction. ``level`` is the
    notice it calls for, ``None`` while ``valid``.
    """

    status: ExpiryState
    severity: Severity
    level: NoticeLevel | None
    expires_at: datetime
    days_to_expiry: float
    days: int
    hours: int


class TokenExpiryMonitor:
    """Classifies refresh tokens and sends the due notices through ``messaging_client``."""

    def __init__(
        self,
        messaging_client: MessagingClient,
        warning_days: int = 7,
        critical_days: int = 3,
        *,
        store: Store,
        clock: Clock | None = None,
        timezone: str | tzinfo = "Asia/Shanghai",
        registry: Registry | None = None,
    ) -> None:
        for name, value in (("warning_days", warning_days), ("critical_days", critical_days)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name}={value!r} must be a number of days > 0, e.g. 7")
        if not critical_days < warning_days:
            raise ValueError(
                f"critical_days={critical_days!r} must be less than warning_days="
                f"{warning_days!r} (critical notices come closer to expiry than warnings)"
            )
        self.messaging_client = messaging_client
        self.warning_days = warning_days
        self.critical_days = critical_days
        self.store = store
        self.clock: Clock = clock if clock is not None else RealClock()
        self.timezone = resolve_timezone(timezone)
        self.registry = registry if registry is not None else Registry()
        # Base units (seconds since the epoch), as Prometheus asks: dashboards and alerts
        # compute the countdown, (token_expiry_timestamp_seconds - time()) / 86400 days.
        self.expiry_gauge = Gauge(
            "token_expiry_timestamp_seconds",
            "When the soonest user refresh token of an app expires, in seconds since the epoch.",
            registry=self.registry,
        )
        self.sent_counter = Counter(
            "token_expiry_warnings_sent_total",
            "Token expiry notices sent, by app and level.",
            registry=self.registry,
        )

    def get_expiry_status(self, expires_at: datetime, now: datetime | None = None) -> ExpiryStatus:
        """The status of a refresh token expiring at ``expires_at`` (aware), at ``now``
        (the clock's time by default)."""
        if expires_at.tzinfo is None or expires_at.utcoffset() is None:
            raise ValueError(
                f"expires_at {expires_at.isoformat()} is naive; pass an aware datetime"
            )
        at = now if now is not None else self.clock.now()
        seconds = (expires_at - at).total_seconds()
        status: ExpiryState
        severity: Severity
        if seconds <= 0:
            status, severity = "expired", "critical"
        elif seconds <= self.critical_days * _DAY:
            status, severity = "expiring_soon", "critical"
        elif seconds <= self.warning_days * _DAY:
            status, severity = "expiring", "warning"
        else:
            status, severity = "valid", "info"
        return ExpiryStatus(
            status=status,
            severity=severity,
            level=_LEVELS.get(status),
            expires_at=expires_at,
            days_to_expiry=seconds / _DAY,
            days=int(seconds // _DAY),
            hours=int(seconds // 3600),
        )

    async def check_token_expiry(self, now: datetime | None = None) -> ExpiryReport:
        """Check every active app's user refresh tokens once; send what is due."""
        at = now if now is not None else self.clock.now()
        day = at.astimezone(self.timezone).date()
        apps = {app.app_id: app for app in await self.store.list_apps(active_only=True)}
        tokens = [t for t in await self.store.list_user_tokens() if t.app_id in apps]
        soonest: dict[str, datetime] = {}
        outcomes: list[NoticeOutcome] = []
        for token in tokens:
            status = self.get_expiry_status(token.refresh_expires_at, at)
            app_id = token.app_id
            expires = token.refresh_expires_at
            soonest[app_id] = min(soonest.get(app_id, expires), expires)
            if status.level is not None:
                outcomes.append(await self._notify(apps[app_id], token, status, status.level, day))
        self._export(soonest)
        return ExpiryReport(checked_at=at, tokens=len(tokens), notices=tuple(outcomes))

    def _export(self, soonest: dict[str, datetime]) -> None:
        # An app without tokens any more (cleaned up, disabled) loses its series: a stale
        # expiry would keep its alert firing for ever.
        gauge = self.expiry_gauge
        series: Any = gauge.values  # aioprometheus' MetricDict, untyped
        for labels, _ in gauge.get_all():
            if labels.get("app_id") not in soonest:
                del series[labels]
        for app_id, expires in soonest.items():
            gauge.set({"app_id": app_id}, expires.timestamp())

    async def _notify(
        self, app: AppRecord, token: UserToken, status: ExpiryStatus, level: NoticeLevel, day: date
    ) -> NoticeOutcome:
        outcome = NoticeOutcome(
            app_id=app.app_id, open_id=token.open_id, level=level, outcome="sent"
        )
        if not app.admin_open_id:
            logger.warning(
                "app %s has no administrator open_id; %s notice for user %s not sent",
                app.app_id,
                level,
                token.open_id,
            )
            return msgspec.structs.replace(outcome, outcome="no_admin")
        if not await self.store.claim_notice(app.app_id, token.open_id, level, day):
            return msgspec.structs.replace(outcome, outcome="duplicate")
        notice = self._notice(
            app, token, status, level, f"{app.app_id}/{token.open_id}/{level}/{day}"
        )
        try:
            message_id = await self.messaging_client.send_notice(notice)
        except Exception as error:
            logger.error(
                "%s notice for user %s of app %s failed to send; it will be retried: %s",
                level,
                token.open_id,
                app.app_id,
                error,
            )
            try:
                await self.store.release_notice(app.app_id, token.open_id, level, day)
            except StoreUnavailableError:
                logger.error("could not release the notice claim; it goes stale and is retried")
            return msgspec.structs.replace(
                outcome, outcome="failed", error=f"{type(error).__name__}: {error}"
            )
        await self.store.record_notice_sent(
            app.app_id, token.open_id, level, day, message_id=message_id
        )
        self.sent_counter.inc({"app_id": app.app_id, "level": level})
        logger.info("%s notice for user %s of app %s sent", level, token.open_id, app.app_id)
        return msgspec.structs.replace(outcome, message_id=message_id)

    def _notice(
        self, app: AppRecord, token: UserToken, status: ExpiryStatus, level: NoticeLevel, slot: str
    ) -> SendNotice:
        local = status.expires_at.astimezone(self.timezone).strftime("%Y-%m-%d %H:%M %Z")
        if level == "expired":
            title = f"Lark authorisation expired: app {app.name}"
            when = f"expired on {local}"
        else:
            title = f"Lark authorisation expiring ({level}): app {app.name}"
            left = f"{status.days} days" if status.days >= 1 else f"{status.hours} hours"
            when = f"expires on {local}, in {left}"
        body = (
            f"The refresh token of user {token.open_id} for app {app.name} ({app.app_id}) "
            f"{when}. The user must authorise the app again to keep it working."
        )
        assert app.admin_open_id is not None
        return SendNotice(
            app_id=app.app_id,
            receive_id=app.admin_open_id,
            title=title,
            body=body,
            severity=status.severity,
            idempotency_key=str(uuid.uuid5(_NOTICE_NAMESPACE, slot)),
        )


class TokenExpiryActor(Actor[CheckExpiry]):
    """Answers :class:`CheckExpiry` with the monitor's :class:`ExpiryReport`."""

    def __init__(self, monitor: TokenExpiryMonitor) -> None:
        self.monitor = monitor

    async def receive(self, message: CheckExpiry) -> Any:
        return await self.monitor.check_token_expiry()
