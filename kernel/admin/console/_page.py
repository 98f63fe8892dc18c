"""What every console page shares: the request's context, the layout, the answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from urllib.parse import quote, urlencode

from aiohttp import web

from ._format import when
from ._session import Session
from .html import Markup, h, join

__all__ = (
    "CSP",
    "ConsolePage",
    "ConsoleRequest",
    "NavItem",
    "html_response",
    "layout",
    "redirect",
    "segment",
    "unsegment",
)

#: Nothing inline, nothing from elsewhere: scripts and styles come from /ui/static only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# Pages show data that changes and may be sensitive: never cached, never reused.
NO_STORE: Mapping[str, str] = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class ConsoleRequest:
    """One request to the console, as a page sees it.

    ``base`` is the console's own path (``/ui``, or under the prefix it is mounted at);
    ``now`` and ``timezone`` come from the kernel's clock and zone. ``session`` is the
    signed-in session, if any; ``can_sign_in`` is false when no admin token is configured
    (the console is then read-only); ``token_hint`` says how to configure one.
    """

    request: web.Request
    base: str
    now: datetime
    timezone: tzinfo
    session: Session | None
    can_sign_in: bool
    token_hint: str

    @property
    def signed_in(self) -> bool:
        return self.session is not None

    def url(self, *parts: str, **query: str | None) -> str:
        """The console URL of ``parts`` (each quoted, so a job id may hold any character;
        see :func:`segment`)."""
        path = "/".join([self.base, *(quote(segment(p), safe="") for p in parts)])
        params = {k: v for k, v in query.items() if v is not None}
        return f"{path}?{urlencode(params)}" if params else path

    def when(self, moment: datetime | None) -> Markup:
        """``moment`` in the console's zone, relative to now, UTC on hover."""
        return when(moment, self.now, self.timezone)

    def form(
        self,
        action: str,
        label: str,
        *,
        css: str = "",
        hidden: Mapping[str, str] | None = None,
        title: str | None = None,
    ) -> Markup:
        """A POST form of one button, with the session's CSRF token."""
        fields: list[Markup] = [
            h("input", {"type": "hidden", "name": name, "value": value})
            for name, value in {**(hidden or {}), "csrf": self.csrf}.items()
        ]
        button = h("button", {"type": "submit", "class": css or None, "title": title}, label)
        return h("form", {"method": "post", "action": action, "class": "inline"}, *fields, button)

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session is not None else ""


def segment(value: str) -> str:
    """``value`` as one URL path segment. Browsers resolve ``.`` and ``..`` (even
    percent-encoded) before sending, so those, and values starting with ``~``, get a ``~``
    in front; :func:`unsegment` takes it off."""
    return f"~{value}" if value in (".", "..") or value.startswith("~") else value


def unsegment(value: str) -> str:
    """The value :func:`segment` was given."""
    return value[1:] if value.startswith("~") else value


Render = Callable[[ConsoleRequest], Awaitable[Markup]]


@dataclass(frozen=True)
class ConsolePage:
    """A page an application adds to the console (:func:`kernel.console.add_console_page`).

    ``path``: one URL segment under the console (``tokens`` serves ``/ui/tokens``);
    ``title``: its heading and its link in the navigation; ``render``: an async function
    of the :class:`ConsoleRequest` answering the page's body (build it with
    :mod:`kernel.console.html`, which escapes). ``needs_sign_in``: only a signed-in operator
    sees it (others are sent to sign in; without an admin token configured, the page says
    so and how to configure one).
    """

    path: str
    title: str
    render: Render
    needs_sign_in: bool = True


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    key: str


def layout(
    ctx: ConsoleRequest,
    title: str,
    body: Markup,
    *,
    nav: Sequence[NavItem],
    current: str,
    product: str,
    flashes: Sequence[tuple[str, str]] = (),
    refresh: float = 0,
) -> Markup:
    """The whole page: header, navigation, the read-only notice, messages, ``body``
    (``refresh``: seconds between the script's refreshes of its ``data-live`` parts)."""
    links = [
        h("a", {"href": item.href, "aria-current": "page" if item.key == current else None},
          item.label)
        for item in nav
    ]
    if ctx.signed_in:
        account = ctx.form(ctx.url("logout"), "Sign out", css="link")
    elif ctx.can_sign_in:
        account = h("a", {"href": ctx.url("login", next=ctx.request.path_qs)}, "Sign in")
    else:
        account = h("span", {"class": "muted"}, "read-only")
    notices: list[Markup] = []
    if not ctx.can_sign_in:
        notices.append(h(
            "div", {"class": "notice", "role": "note"},
            h("strong", {}, "Read-only: no admin token is configured. "),
            f"To pause, run and retry jobs here, {ctx.token_hint}.",
        ))
    for kind, text in flashes:
        notices.append(h(
            "div", {"class": f"flash {kind}", "role": "status" if kind == "ok" else "alert"},
            text,
        ))
    static = ctx.url("static")
    return join(
        Markup("<!doctype html>"),
        h(
            "html", {"lang": "en"},
            h(
                "head", {},
                h("meta", {"charset": "utf-8"}),
                h("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
                h("title", {}, f"{title} · {product}"),
                h("link", {"rel": "icon", "href": f"{static}/favicon.svg",
                           "type": "image/svg+xml"}),
                h("link", {"rel": "stylesheet", "href": f"{static}/console.css"}),
                h("script", {"src": f"{static}/console.js", "defer": True}),
            ),
            h(
                "body",
                {"data-now": ctx.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "data-refresh": f"{refresh:g}"},
                h("a", {"class": "skip", "href": "#main"}, "Skip to content"),
                h(
                    "header", {},
                    h("a", {"class": "brand", "href": ctx.base}, product),
                    h("nav", {"aria-label": "Console"}, *links),
                    h("div", {"class": "account"}, account),
                ),
                h("main", {"id": "main", "tabindex": "-1"}, *notices,
                  h("h1", {}, title), body),
            ),
        ),
    )


def html_response(text: Markup, status: int = 200) -> web.Response:
    return web.Response(
        text=text, status=status, content_type="text/html", charset="utf-8", headers=NO_STORE
    )


def redirect(location: str) -> web.Response:
    """303 See Other to ``location`` (a path of ours)."""
    return web.Response(status=303, headers={"Location": location, **NO_STORE})
