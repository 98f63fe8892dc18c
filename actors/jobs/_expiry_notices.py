"""What the expiry notices say: one to the user whose authorization expires (with the link to
authorise again), one daily summary to the app's administrator. Pure: no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, tzinfo

import msgspec

from actors.jobs.messages import SendNotice, Severity
from actors.jobs.token_states import ExpiryStatus
from actors.store import AppRecord, NoticeLevel, UserToken

__all__ = ("DueNotice", "admin_summary", "user_notice")

# A fixed namespace: the idempotency key of a notice slot is the same in every process.
_NOTICE_NAMESPACE = uuid.UUID("5f0c7f0e-5d1a-4c55-9a53-8d1c2b7f4e21")
# Worst first: the order of a summary's lines and of its title's counts.
_LEVEL_ORDER: tuple[NoticeLevel, ...] = ("expired", "critical", "warning")
_SEVERITY: dict[NoticeLevel, Severity] = {
    "expired": "critical",
    "critical": "critical",
    "warning": "warning",
}
# Enough names for an administrator to act on; `tokens list` has the rest.
_MAX_NAMES = 20
_REFUSED = {
    "revoked": "was revoked",
    "expired": "has expired",
    "invalid": "is no longer valid",
}


class DueNotice(msgspec.Struct, frozen=True, kw_only=True):
    """A user whose authorization calls for a notice today, at ``level``."""

    token: UserToken
    status: ExpiryStatus
    level: NoticeLevel


def _key(slot: str, run_slot: str | None = None) -> str:
    """The notice's Lark ``uuid``: from the scheduled run (``job@time``) when there is
    one, so a repeat of that run is deduplicated by Lark; else from the day's slot. Lark
    keeps a ``uuid`` for one hour: a repeat later than that is stopped by the store's
    notice claim (once a day per token and level), not by Lark."""
    return str(uuid.uuid5(_NOTICE_NAMESPACE, slot if run_slot is None else
                          f"{run_slot}/{slot}"))


def _local(due: DueNotice, zone: tzinfo) -> str:
    return due.status.expires_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _who(token: UserToken) -> str:
    return f"{token.name} ({token.open_id})" if token.name else token.open_id


def _what_happened(due: DueNotice, zone: tzinfo) -> str:
    """``expires on ..., in 3 days`` / ``expired on ...`` / ``was revoked by Lark``."""
    reason = due.token.invalid_reason
    if reason is not None:
        return f"{_REFUSED[reason]} (Lark refused its refresh token)"
    if due.level == "expired":
        return f"expired on {_local(due, zone)}"
    status = due.status
    left = f"{status.days} days" if status.days >= 1 else f"{status.hours} hours"
    return f"expires on {_local(due, zone)}, in {left}"


def user_notice(
    app: AppRecord, due: DueNotice, day: date, zone: tzinfo, link: str | None,
    *, run_slot: str | None = None,
) -> SendNotice:
    """The notice to the user whose authorization of ``app`` expires (or was refused)."""
    token = due.token
    if token.invalid_reason is not None:
        title = f"Lark authorisation no longer valid: app {app.name}"
    elif due.level == "expired":
        title = f"Lark authorisation expired: app {app.name}"
    else:
        title = f"Lark authorisation expiring ({due.level}): app {app.name}"
    then = (
        f"Authorise the app again to keep it working: {link}"
        if link
        else f"Ask the administrator of app {app.name} how to authorise it again."
    )
    what = _what_happened(due, zone)
    body = f"Your authorisation of app {app.name} ({app.app_id}) {what}. {then}"
    return SendNotice(
        app_id=app.app_id,
        receive_id=token.open_id,
        title=title,
        body=body,
        severity=_SEVERITY[due.level],
        idempotency_key=_key(f"{app.app_id}/{token.open_id}/{due.level}/{day}", run_slot),
        link=link,
    )


def admin_summary(
    app: AppRecord,
    dues: Sequence[DueNotice],
    day: date,
    zone: tzinfo,
    link: str | None,
    warning_days: float,
    *,
    run_slot: str | None = None,
) -> SendNotice:
    """The administrator's summary of the users of ``app`` due a notice today."""
    assert app.admin_open_id is not None, "the caller checks for an administrator"
    assert dues, "a summary needs at least one due user"
    levels = [level for level in _LEVEL_ORDER if any(d.level == level for d in dues)]
    counts = ", ".join(f"{sum(d.level == level for d in dues)} {level}" for level in levels)
    lines = []
    for level in levels:
        who = [d for d in dues if d.level == level]
        names = [f"{_who(d.token)} {_what_happened(d, zone)}" for d in who[:_MAX_NAMES]]
        if len(who) > _MAX_NAMES:
            names.append(f"and {len(who) - _MAX_NAMES} more")
        lines.append(f"{level} ({len(who)}): " + "; ".join(names))
    if link:
        lines.append(f"Each of them was sent a notice with the link to authorise again: {link}")
    else:
        lines.append(
            "They were told to ask you how to authorise again: the service has no "
            "oauth.redirect_base_url, so it cannot send them a link."
        )
    lines.append(
        f"'lark-scheduler tokens list --app {app.app_id} --expiring {warning_days:g}' "
        "lists them."
    )
    return SendNotice(
        app_id=app.app_id,
        receive_id=app.admin_open_id,
        title=f"Lark authorisations of app {app.name}: {counts}",
        body="\n".join(lines),
        severity=_SEVERITY[levels[0]],
        idempotency_key=_key(f"{app.app_id}/summary/{day}", run_slot),
        link=link,
    )
