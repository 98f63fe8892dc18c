"""The operator console: the admin API's jobs, runs and failures as web pages at ``/ui``.

:func:`kernel.http.create_admin_app` mounts it (``console=False`` leaves it out); it is
served by the same aiohttp application, needs no build step and loads nothing from
elsewhere (its style sheet and script ship in this package).

* **Jobs**: each job's trigger in words, next run (in the kernel's zone, relative, UTC on
  hover), state, last outcome and duration, p99 lateness; pause, resume, run now, remove.
* **A job's page**: its recent runs and a lateness/duration chart (SVG drawn here), from a
  bounded in-memory :class:`~kernel.console.history.RunHistory` fed by the kernel's events.
* **Failures**: filtered by job, the redacted traceback, retry.
* **Sign-in** with the admin token, exchanged for a session cookie (HttpOnly,
  SameSite=Strict, Secure over HTTPS); every form carries a CSRF token. Without an admin
  token the console is read-only and says how to configure one. Read access follows the
  admin API: job pages are open unless ``protect_jobs``; failures need a session.

Every page is escaped (:mod:`kernel.console.html`), has a strict Content-Security-Policy
(scripts and styles only from the console itself, nothing inline) and ``no-store``.

An application adds pages of its own (the Lark service adds tokens and health) with
:func:`add_console_page` on the admin app, before it starts::

    async def render(ctx: ConsoleRequest) -> Markup:
        return h("p", {}, "hello, ", ctx.request.remote or "you")

    add_console_page(admin_app, ConsolePage("hello", "Hello", render, needs_sign_in=False))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ._app import Console
from ._format import duration
from ._page import ConsolePage, ConsoleRequest
from ._site import ConsoleOptions
from .history import RunEntry, RunHistory
from .html import Markup, esc, h, join

if TYPE_CHECKING:
    from kernel.http import AdminKernel

__all__ = (
    "CONSOLE",
    "Console",
    "ConsoleOptions",
    "ConsolePage",
    "ConsoleRequest",
    "Markup",
    "RunEntry",
    "RunHistory",
    "add_console",
    "add_console_page",
    "duration",
    "esc",
    "h",
    "join",
)

#: Where the admin app keeps its :class:`Console`.
CONSOLE = web.AppKey("console", Console)


def add_console(
    app: web.Application,
    kernel: AdminKernel,
    *,
    token: str | None,
    token_hint: str,
    protect_jobs: bool = False,
    options: ConsoleOptions | None = None,
) -> Console:
    """Mount the console of ``kernel`` in ``app`` at ``options.path`` (before it starts)."""
    console = Console(
        kernel, token=token, token_hint=token_hint, protect_jobs=protect_jobs, options=options
    )
    app.add_subapp(console.options.path.rstrip("/"), console.app)
    app[CONSOLE] = console
    return console


def add_console_page(app: web.Application, page: ConsolePage) -> bool:
    """Add ``page`` to the console mounted in ``app``; ``False`` when ``app`` has none
    (it was created with ``console=False``)."""
    console = app.get(CONSOLE)
    if console is None:
        return False
    console.add_page(page)
    return True
