"""The pages a person sees during an authorization: plain HTML, every value escaped.

Every OAuth answer carries :data:`SAFE_HEADERS`: nothing is cached (the callback URL holds a
one-time code), no ``Referer`` leaves the page (it would carry the code to whatever the page
links to), and the page loads nothing, runs nothing and cannot be framed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from aiohttp import web

__all__ = ("SAFE_HEADERS", "page")

SAFE_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;"
    "line-height:1.5;color:#1f2329}h1{font-size:1.4em}.ok{color:#137333}.error{color:#b3261e}"
    "a.button{display:inline-block;padding:.5em 1em;background:#3370ff;color:#fff;"
    "border-radius:4px;text-decoration:none}"
)


def page(
    title: str,
    paragraphs: Sequence[str],
    *,
    status: int = 200,
    ok: bool = False,
    link: tuple[str, str] | None = None,
    problem: str = "",
) -> web.Response:
    """A page: ``title``, ``paragraphs`` (plain text), and a ``(label, url)`` button.

    ``problem`` names the error (``forged_state``, ...) in ``data-problem`` for scripts and
    tests; people read the text.
    """
    body = "".join(f"<p>{html.escape(text)}</p>" for text in paragraphs)
    if link is not None:
        label, url = link
        body += f'<p><a class="button" href="{html.escape(url)}">{html.escape(label)}</a></p>'
    cls = "ok" if ok else "error"
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body data-problem="{html.escape(problem)}"><h1 class="{cls}">{html.escape(title)}</h1>'
        f"{body}</body></html>"
    )
    return web.Response(
        text=text, status=status, content_type="text/html", headers=SAFE_HEADERS
    )
