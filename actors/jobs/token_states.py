"""Where users' authorizations stand: the expiry policy, the five token states, per-app counts.

One decision, used everywhere (the expiry job, ``tokens list``, ``GET /tokens``, the
``token_users_by_state`` gauge, a console):

=========  =====================================================================
state      the user's refresh token ...
=========  =====================================================================
valid      expires in more than ``warning_days``
warning    expires within ``warning_days`` (and more than ``critical_days``)
critical   expires within ``critical_days``
expired    has expired
invalid    was refused by Lark (20026 invalid, 20037 expired, 20064 revoked)
=========  =====================================================================

For a console or another service: :func:`token_report` answers a :class:`TokenReport` (per-app
counts of every state, and one :class:`TokenView` per user, never a token value); the admin
API serves the same as ``GET /tokens`` and the command line as ``tokens list --json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Literal

import msgspec
from aioprometheus.collectors import Gauge, Registry

from actors.store import AppRecord, NoticeLevel, Store, TokenInvalidReason, UserToken

__all__ = (
    "TOKEN_STATES",
    "AppTokenStates",
    "ExpiryState",
    "ExpiryStatus",
    "TokenReport",
    "TokenState",
    "TokenStateGauge",
    "TokenView",
    "build_report",
    "expiry_status",
    "token_report",
    "token_state",
)

ExpiryState = Literal["valid", "expiring", "expiring_soon", "expired"]
Severity = Literal["info", "warning", "critical"]
TokenState = Literal["valid", "warning", "critical", "expired", "invalid"]
#: Every state, from good to bad: the order of counts in reports and on dashboards.
TOKEN_STATES: tuple[TokenState, ...] = ("valid", "warning", "critical", "expired", "invalid")

_DAY = 86400.0
_LEVELS: dict[ExpiryState, NoticeLevel] = {
    "expiring": "warning",
    "expiring_soon": "critical",
    "expired": "expired",
}
_STATES: dict[ExpiryState, TokenState] = {
    "valid": "valid",
    "expiring": "warning",
    "expiring_soon": "critical",
    "expired": "expired",
}

#: Builds the re-authorization link of an app (``None`` when OAuth is not configured).
LinkFor = Callable[[str], str | None]


class ExpiryStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Where one refresh token stands by its expiry time.

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


def expiry_status(
    expires_at: datetime, now: datetime, warning_days: float, critical_days: float
) -> ExpiryStatus:
    """The status of a refresh token expiring at ``expires_at`` (aware), at ``now``."""
    if expires_at.tzinfo is None or expires_at.utcoffset() is None:
        raise ValueError(f"expires_at {expires_at.isoformat()} is naive; pass an aware datetime")
    seconds = (expires_at - now).total_seconds()
    status: ExpiryState
    severity: Severity
    if seconds <= 0:
        status, severity = "expired", "critical"
    elif seconds <= critical_days * _DAY:
        status, severity = "expiring_soon", "critical"
    elif seconds <= warning_days * _DAY:
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


def token_state(token: UserToken, status: ExpiryStatus) -> TokenState:
    """The state of ``token`` whose refresh expiry has ``status``: ``invalid`` once Lark
    refused it, whatever its expiry time says."""
    return "invalid" if token.invalid_reason is not None else _STATES[status.status]


class TokenView(msgspec.Struct, frozen=True, kw_only=True):
    """One user's authorization of one app, as people see it (no token value).

    ``reauthorize_url`` is where the user authorises the app again (``None`` when the
    service has no ``oauth.redirect_base_url``).
    """

    app_id: str
    open_id: str
    name: str
    state: TokenState
    refresh_expires_at: datetime
    days_to_expiry: float
    access_expires_at: datetime | None
    authorized_at: datetime | None
    invalid_reason: TokenInvalidReason | None
    has_credentials: bool
    reauthorize_url: str | None


class AppTokenStates(msgspec.Struct, frozen=True, kw_only=True):
    """How many users of an app are in each state (every state present, zeros too)."""

    app_id: str
    name: str
    active: bool
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class TokenReport(msgspec.Struct, frozen=True, kw_only=True):
    """Token states at ``checked_at``: per app (every app asked for, even with no token),
    and per user (only the users that matched the filters)."""

    checked_at: datetime
    apps: tuple[AppTokenStates, ...]
    tokens: tuple[TokenView, ...]


def build_report(
    apps: Iterable[AppRecord],
    tokens: Iterable[UserToken],
    *,
    now: datetime,
    warning_days: float,
    critical_days: float,
    expiring_days: float | None = None,
    link_for: LinkFor | None = None,
) -> TokenReport:
    """The report of ``tokens`` of ``apps`` at ``now`` (pure: no I/O).

    ``expiring_days`` keeps only users whose refresh token expires within that many days
    (expired ones included) or was refused by Lark; the per-app counts always count all.
    """
    by_app = {app.app_id: app for app in apps}
    counts: dict[str, dict[str, int]] = {
        app_id: dict.fromkeys(TOKEN_STATES, 0) for app_id in by_app
    }
    views: list[TokenView] = []
    for token in tokens:
        if token.app_id not in by_app:
            continue
        status = expiry_status(token.refresh_expires_at, now, warning_days, critical_days)
        state = token_state(token, status)
        counts[token.app_id][state] += 1
        if (
            expiring_days is not None
            and state != "invalid"
            and status.days_to_expiry > expiring_days
        ):
            continue
        views.append(
            TokenView(
                app_id=token.app_id,
                open_id=token.open_id,
                name=token.name,
                state=state,
                refresh_expires_at=token.refresh_expires_at,
                days_to_expiry=round(status.days_to_expiry, 3),
                access_expires_at=token.access_expires_at,
                authorized_at=token.authorized_at,
                invalid_reason=token.invalid_reason,
                has_credentials=token.has_credentials,
                reauthorize_url=None if link_for is None else link_for(token.app_id),
            )
        )
    return TokenReport(
        checked_at=now,
        apps=tuple(
            AppTokenStates(app_id=app.app_id, name=app.name, active=app.active, counts=counts[i])
            for i, app in sorted(by_app.items())
        ),
        tokens=tuple(views),
    )


async def token_report(
    store: Store,
    *,
    now: datetime,
    warning_days: float = 7,
    critical_days: float = 3,
    app_id: str | None = None,
    expiring_days: float | None = None,
    active_only: bool = True,
    link_for: LinkFor | None = None,
) -> TokenReport:
    """Token states of every (active) app, or of ``app_id`` alone, read from ``store``.

    The small function a console calls to show who must authorise again; see
    :func:`build_report` for ``expiring_days``. An unknown ``app_id`` gives an empty report.
    """
    apps = await store.list_apps(active_only=active_only)
    if app_id is not None:
        apps = [app for app in apps if app.app_id == app_id]
    tokens = await store.list_user_tokens(app_id)
    return build_report(
        apps,
        tokens,
        now=now,
        warning_days=warning_days,
        critical_days=critical_days,
        expiring_days=expiring_days,
        link_for=link_for,
    )


class TokenStateGauge:
    """``token_users_by_state{app_id, state}``: users of each app by token state.

    Every state of every reported app is set (zeros too); an app reported before but missing
    now (disabled, or its tokens gone) drops to zero in every state rather than keeping its
    last counts.
    """

    def __init__(self, registry: Registry) -> None:
        self.gauge = Gauge(
            "token_users_by_state",
            "Users of an app by the state of their authorization: valid, warning (refresh "
            "token expires within warning_days), critical, expired, invalid (refused by Lark).",
            registry=registry,
        )
        self._seen: set[str] = set()

    def publish(self, report: TokenReport, *, partial: bool = False) -> None:
        """Set the counts of ``report``'s apps; unless ``partial`` (a report of some apps
        only), apps reported before and missing now are set to zero."""
        current: Mapping[str, Mapping[str, int]] = {a.app_id: a.counts for a in report.apps}
        stale = set() if partial else self._seen - set(current)
        for app_id in sorted(stale):
            for state in TOKEN_STATES:
                self.gauge.set({"app_id": app_id, "state": state}, 0)
        for app_id, counts in current.items():
            for state in TOKEN_STATES:
                self.gauge.set({"app_id": app_id, "state": state}, counts[state])
        self._seen = (self._seen - stale) | set(current)
