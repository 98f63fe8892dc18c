"""A small HTML builder that escapes everything it is not told is HTML.

Job ids, names, exception messages and tracebacks are user data: every ``str`` child and
every attribute value passes through :func:`html.escape`; only :class:`Markup` (what these
functions return) is inserted as it is. Pages of an extension (:mod:`kernel.console`) are
built with the same functions::

    h("tr", {}, h("td", {"data-label": "Job"}, job_id), h("td", {}, when_text))
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

__all__ = ("Markup", "esc", "h", "join")


class Markup(str):
    """Text that is already HTML (made by :func:`h`, :func:`esc` or :func:`join`)."""

    __slots__ = ()


# HTML elements that have no closing tag (SVG elements inside HTML are closed explicitly).
_VOID = frozenset({"br", "hr", "img", "input", "link", "meta"})


def esc(value: object) -> Markup:
    """``value`` as HTML text: escaped unless it is already :class:`Markup`."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def join(*children: object) -> Markup:
    """The children side by side (``None`` left out, iterables flattened), escaped."""
    return Markup("".join(_render(child) for child in children))


def _render(child: object) -> str:
    if child is None or child is False:
        return ""
    if isinstance(child, str):
        return esc(child)
    if isinstance(child, Iterable):
        return "".join(_render(c) for c in child)
    return esc(child)


def h(tag: str, attrs: Mapping[str, object] | None = None, *children: object) -> Markup:
    """``<tag attrs>children</tag>``. An attribute whose value is ``None`` or ``False`` is
    left out, ``True`` writes it bare; other values are escaped."""
    parts = [tag]
    for name, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        if value is True:
            parts.append(name)
        else:
            parts.append(f'{name}="{esc(value)}"')
    opening = f"<{' '.join(parts)}>"
    if tag in _VOID and not children:
        return Markup(opening)
    return Markup(f"{opening}{join(*children)}</{tag}>")
