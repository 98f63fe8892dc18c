"""The Lark service's pages in the operator console (:mod:`kernel.console`): users'
authorizations per app (from :func:`actors.jobs.token_states.token_report`, never a token)
and the last health check of each component."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from actors.jobs import HealthReport
from actors.jobs.token_states import TOKEN_STATES, AppTokenStates, TokenReport, TokenView
from actors.oauth.routes import ReportSource
from kernel.console import (
    ConsolePage,
    ConsoleRequest,
    Markup,
    add_console_page,
    duration,
    h,
    join,
)

__all__ = ("USERS_SHOWN", "add_service_pages", "health_page", "tokens_page")

#: Users listed per app (the soonest to expire first); the counts always count everyone.
USERS_SHOWN = 200

_STATE_CSS = {
    "valid": "ok", "warning": "warn", "critical": "bad", "expired": "bad", "invalid": "bad",
}
_HEALTH_CSS = {"ok": "ok", "fail": "bad", "not_configured": "muted"}
Readiness = Callable[[], Awaitable[HealthReport]]


def _counts(app: AppTokenStates) -> Markup:
    return h("div", {"class": "counts"}, *(
        h("span", {"class": f"badge {_STATE_CSS[state] if app.counts.get(state) else 'muted'}"},
          f"{state} {app.counts.get(state, 0)}")
        for state in TOKEN_STATES
    ))


def _users(ctx: ConsoleRequest, users: Sequence[TokenView]) -> Markup:
    rows = [
        h(
            "tr", {"data-user": user.open_id},
            h("td", {"data-label": "User"}, user.name or user.open_id,
              h("div", {"class": "muted small mono"}, user.open_id) if user.name else None),
            h("td", {"data-label": "State"},
              h("span", {"class": f"badge {_STATE_CSS[user.state]}"}, user.state,
                f" ({user.invalid_reason})" if user.invalid_reason else "")),
            h("td", {"data-label": "Expires"}, ctx.when(user.refresh_expires_at)),
            h("td", {"data-label": "Authorised"}, ctx.when(user.authorized_at)),
            h("td", {"data-label": "Link"},
              h("a", {"href": user.reauthorize_url}, "authorise again")
              if user.reauthorize_url and user.state != "valid" else None),
        )
        for user in sorted(users, key=lambda u: (u.state != "invalid", u.days_to_expiry))
    ]
    head = h("thead", {}, h("tr", {}, *(
        h("th", {"scope": "col"}, t)
        for t in ("User", "State", "Refresh token expires", "Authorised", "Link")
    )))
    return h("table", {"class": "grid tokens"}, head, h("tbody", {}, *rows))


def tokens_page(report: ReportSource, warning_days: float) -> ConsolePage:
    """Per app: users by token state, and who expires when (``?expiring=1``: only users
    whose authorization expires within ``warning_days`` or was refused)."""

    async def render(ctx: ConsoleRequest) -> Markup:
        expiring = ctx.request.query.get("expiring") == "1"
        answer: TokenReport = await report(None, warning_days if expiring else None)
        filters = h(
            "nav", {"class": "filters", "aria-label": "Which users"},
            h("a", {"href": ctx.url("tokens"), "aria-current": None if expiring else "true"},
              "All users"),
            h("a", {"href": ctx.url("tokens", expiring="1"),
                    "aria-current": "true" if expiring else None},
              f"Expiring within {warning_days:g} days or refused"),
        )
        if not answer.apps:
            return join(filters, h("p", {}, "No active app is registered: add one with ",
                                   h("code", {}, "lark-scheduler apps add APP_ID"), "."))
        sections = []
        for app in answer.apps:
            users = [t for t in answer.tokens if t.app_id == app.app_id]
            users.sort(key=lambda u: u.days_to_expiry)
            shown = users[:USERS_SHOWN]
            listing: Markup | None = _users(ctx, shown) if shown else h(
                "p", {"class": "muted"},
                "No user matches." if expiring else "No user has authorised this app yet.",
            )
            more = None
            if len(users) > len(shown):
                more = h("p", {"class": "muted"},
                         f"The {len(shown)} soonest to expire of {len(users)} are shown; "
                         "lark-scheduler tokens list lists them all.")
            sections.append(h(
                "section", {"class": "app", "data-app": app.app_id},
                h("h2", {}, f"{app.name} ({app.app_id})" if app.name else app.app_id),
                _counts(app), listing, more,
            ))
        return join(
            filters, *sections,
            h("p", {"class": "muted small"},
              "States as of ", ctx.when(answer.checked_at),
              ". Token values are never shown; other services fetch them from the token API."),
        )

    return ConsolePage("tokens", "Tokens", render, needs_sign_in=True)


def health_page(readiness: Readiness) -> ConsolePage:
    """The last health check: each component's status, latency and detail."""

    async def render(ctx: ConsoleRequest) -> Markup:
        report = await readiness()
        verdict = (
            h("p", {}, h("span", {"class": "badge ok"}, "ready"),
              " The database works, and RabbitMQ when configured.")
            if report.ready
            else h("p", {}, h("span", {"class": "badge bad"}, "not ready"),
                   " /readyz answers 503: see the failed components.")
        )
        rows = [
            h(
                "tr", {"data-component": r.component},
                h("td", {"data-label": "Component"}, r.component),
                h("td", {"data-label": "Status"},
                  h("span", {"class": f"badge {_HEALTH_CSS.get(r.status, 'muted')}"},
                    r.status.replace("_", " "))),
                h("td", {"data-label": "Latency"}, duration(r.latency)),
                h("td", {"data-label": "Detail"}, r.detail or "—"),
                h("td", {"data-label": "Checked"}, ctx.when(r.checked_at)),
            )
            for r in report.results
        ]
        head = h("thead", {}, h("tr", {}, *(
            h("th", {"scope": "col"}, t)
            for t in ("Component", "Status", "Latency", "Detail", "Checked")
        )))
        return join(
            verdict,
            h("table", {"class": "grid health"}, head, h("tbody", {}, *rows)),
            h("p", {"class": "muted small"},
              "The health_check job probes every component on its schedule; run it now from ",
              h("a", {"href": ctx.url("jobs", "health_check")}, "its page"),
              ". The Lark API's result is shown but does not decide readiness."),
        )

    return ConsolePage("health", "Health", render, needs_sign_in=False)


def add_service_pages(
    app: web.Application, *, report: ReportSource, readiness: Readiness, warning_days: float
) -> None:
    """Add the tokens and health pages to the console of ``app`` (if it has one)."""
    add_console_page(app, tokens_page(report, warning_days))
    add_console_page(app, health_page(readiness))
