"""Refresh-token expiry: the notices, and the actor that runs the check.

Only users' *refresh* tokens are watched: tenant and app tokens renew themselves from the
app secret and never need a person. The levels (:mod:`actors.jobs.token_states` decides
them), per lark-domain.md's table:

========  ==============================  ========  ===========================
level     when (refresh token)            severity  how often
========  ==============================  ========  ===========================
warning   expires within ``warning_days``  warning   once a day per token, level
critical  expires within ``critical_days`` critical  once a day per token, level
expired   already expired, or refused     critical  once a day per token, level
          by Lark (revoked, invalid)
========  ==============================  ========  ===========================

Each notice goes to the user whose authorization it is, with the link to authorise again
(``oauth.redirect_base_url``); the app's administrator gets one summary a day per app that
has due users (counts by level, and who). "Once a day" is the local day in the service's
timezone. Before sending, a notice or summary slot is claimed in the store; after a
successful send it is recorded as sent; when sending fails it is released, so the next run
(or a retry) sends it, and it is never marked sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime, tzinfo
from typing import Any

import msgspec
from aioprometheus.collectors import Counter, Gauge, Registry

from actors.jobs._expiry_notices import DueNotice, admin_summary, user_notice
from actors.jobs.messages import CheckExpiry, ExpiryReport, NoticeOutcome, SendNotice
from actors.jobs.notifier import MessagingClient
from actors.jobs.token_states import (
    ExpiryStatus,
    TokenReport,
    TokenStateGauge,
    build_report,
    expiry_status,
)
from actors.runtime import Actor
from actors.store import AppRecord, NoticeLevel, Store, StoreUnavailableError, UserToken
from kernel.clock import Clock, RealClock
from kernel.triggers import resolve_timezone

__all__ = ("ExpiryStatus", "TokenExpiryActor", "TokenExpiryMonitor")

logger = logging.getLogger("actors.jobs.expiry")


class TokenExpiryMonitor:
    """Classifies refresh tokens and sends the due notices through ``messaging_client``.

    ``reauthorize_url(app_id)`` is the link a notice gives the user (``None``: no link, the
    user is told to ask the administrator).
    """

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
        reauthorize_url: Callable[[str], str | None] | None = None,
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
        self.summaries_counter = Counter(
            "token_expiry_summaries_sent_total",
            "Daily token expiry summaries sent to an app's administrator, by app.",
            registry=self.registry,
        )
        self.states = TokenStateGauge(self.registry)
        self.reauthorize_url: Callable[[str], str | None] = reauthorize_url or _no_link

    def get_expiry_status(self, expires_at: datetime, now: datetime | None = None) -> ExpiryStatus:
        """The status of a refresh token expiring at ``expires_at`` (aware), at ``now``
        (the clock's time by default)."""
        at = now if now is not None else self.clock.now()
        return expiry_status(expires_at, at, self.warning_days, self.critical_days)

    async def check_token_expiry(
        self, now: datetime | None = None, *, run: tuple[str, datetime] | None = None
    ) -> ExpiryReport:
        """Check every active app's user refresh tokens once; send what is due.

        ``run`` (job id, scheduled time): the scheduled run this check is; its notices'
        Lark ``uuid`` derive from it and their day is the scheduled time's, so a repeat of
        the run (a replica that was paused past its lease) sends nothing twice."""
        at = now if now is not None else self.clock.now()
        day = (run[1] if run is not None else at).astimezone(self.timezone).date()
        slot = None if run is None else f"{run[0]}@{run[1].isoformat()}"
        apps = {app.app_id: app for app in await self.store.list_apps(active_only=True)}
        tokens = [t for t in await self.store.list_user_tokens() if t.app_id in apps]
        soonest: dict[str, datetime] = {}
        outcomes: list[NoticeOutcome] = []
        due: dict[str, list[DueNotice]] = {}
        for token in tokens:
            status = self.get_expiry_status(token.refresh_expires_at, at)
            app_id = token.app_id
            expires = token.refresh_expires_at
            soonest[app_id] = min(soonest.get(app_id, expires), expires)
            level = _notice_level(token, status)
            if level is not None:
                notice = DueNotice(token=token, status=status, level=level)
                due.setdefault(app_id, []).append(notice)
                outcomes.append(await self._notify(apps[app_id], notice, day, slot))
        self._export(soonest)
        for app_id, notices in due.items():
            outcomes.append(await self._summarise(apps[app_id], notices, day, slot))
        self.states.publish(self._report(apps.values(), tokens, at))
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

    async def publish_states(self, app_id: str | None = None) -> TokenReport:
        """Recount the token states (of ``app_id`` alone, or of every active app) into the
        ``token_users_by_state`` gauge now, e.g. after an authorization or a refresh."""
        apps = await self.store.list_apps(active_only=True)
        if app_id is not None:
            apps = [app for app in apps if app.app_id == app_id]
        report = self._report(apps, await self.store.list_user_tokens(app_id), self.clock.now())
        self.states.publish(report, partial=app_id is not None)
        return report

    def _report(
        self, apps: Iterable[AppRecord], tokens: list[UserToken], at: datetime
    ) -> TokenReport:
        return build_report(
            apps,
            tokens,
            now=at,
            warning_days=self.warning_days,
            critical_days=self.critical_days,
            link_for=self.reauthorize_url,
        )

    async def _notify(
        self, app: AppRecord, due: DueNotice, day: date, slot: str | None
    ) -> NoticeOutcome:
        token, level = due.token, due.level
        outcome = NoticeOutcome(
            app_id=app.app_id, open_id=token.open_id, level=level, outcome="sent"
        )
        if not await self.store.claim_notice(app.app_id, token.open_id, level, day):
            return msgspec.structs.replace(outcome, outcome="duplicate")
        notice = user_notice(app, due, day, self.timezone, self.reauthorize_url(app.app_id),
                             run_slot=slot)
        sent = await self._send(
            notice,
            f"{level} notice to user {token.open_id} of app {app.app_id}",
            release=lambda: self.store.release_notice(app.app_id, token.open_id, level, day),
        )
        if isinstance(sent, str):
            return msgspec.structs.replace(outcome, outcome="failed", error=sent)
        await self.store.record_notice_sent(
            app.app_id, token.open_id, level, day, message_id=sent.message_id
        )
        self.sent_counter.inc({"app_id": app.app_id, "level": level})
        return msgspec.structs.replace(outcome, message_id=sent.message_id)

    async def _summarise(
        self, app: AppRecord, dues: list[DueNotice], day: date, slot: str | None
    ) -> NoticeOutcome:
        worst = min((d.level for d in dues), key=_SEVERITY_RANK.index)
        outcome = NoticeOutcome(
            app_id=app.app_id, open_id=app.admin_open_id, level=worst, outcome="sent",
            kind="summary",
        )
        if not app.admin_open_id:
            logger.warning(
                "app %s has no administrator open_id; its daily summary of %d due user(s) "
                "was not sent (set one with 'lark-scheduler apps update %s --admin OPEN_ID')",
                app.app_id,
                len(dues),
                app.app_id,
            )
            return msgspec.structs.replace(outcome, outcome="no_admin")
        if not await self.store.claim_summary(app.app_id, day):
            return msgspec.structs.replace(outcome, outcome="duplicate")
        notice = admin_summary(
            app, dues, day, self.timezone, self.reauthorize_url(app.app_id), self.warning_days,
            run_slot=slot,
        )
        sent = await self._send(
            notice,
            f"daily summary of app {app.app_id} to its administrator {app.admin_open_id}",
            release=lambda: self.store.release_summary(app.app_id, day),
        )
        if isinstance(sent, str):
            return msgspec.structs.replace(outcome, outcome="failed", error=sent)
        await self.store.record_summary_sent(app.app_id, day, message_id=sent.message_id)
        self.summaries_counter.inc({"app_id": app.app_id})
        return msgspec.structs.replace(outcome, message_id=sent.message_id)

    async def _send(
        self, notice: SendNotice, what: str, *, release: Callable[[], Any]
    ) -> _Sent | str:
        """Send ``notice``; on failure release its claim and answer the error text."""
        try:
            message_id = await self.messaging_client.send_notice(notice)
        except Exception as error:
            logger.error("%s failed to send; it will be retried: %s", what, error)
            try:
                await release()
            except StoreUnavailableError:
                logger.error("could not release the notice claim; it goes stale and is retried")
            return f"{type(error).__name__}: {error}"
        logger.info("%s sent", what)
        return _Sent(message_id=message_id)


class _Sent(msgspec.Struct, frozen=True):
    message_id: str


# Worst first.
_SEVERITY_RANK: list[NoticeLevel] = ["expired", "critical", "warning"]


def _notice_level(token: UserToken, status: ExpiryStatus) -> NoticeLevel | None:
    """The notice a token calls for: a refresh token Lark refused is as good as expired."""
    return "expired" if token.invalid_reason is not None else status.level


def _no_link(app_id: str) -> str | None:
    return None


class TokenExpiryActor(Actor[CheckExpiry]):
    """Answers :class:`CheckExpiry` with the monitor's :class:`ExpiryReport`."""

    def __init__(self, monitor: TokenExpiryMonitor) -> None:
        self.monitor = monitor

    async def receive(self, message: CheckExpiry) -> Any:
        run = None
        if message.job_id is not None and message.scheduled_at is not None:
            run = (message.job_id, message.scheduled_at)
        return await self.monitor.check_token_expiry(run=run)
