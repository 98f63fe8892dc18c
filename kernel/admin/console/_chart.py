"""A job's recent runs as a small SVG chart: duration and lateness per run, drawn on the
server (no script, no library). Each bar has a ``<title>``, shown on hover and read by
screen readers; colours come from the style sheet's classes."""

from __future__ import annotations

from collections.abc import Sequence

from ._format import duration, seconds
from .history import RunEntry
from .html import Markup, h

__all__ = ("run_chart",)

_WIDTH = 600
_PANEL = 70  # height of each panel's plot area
_LEFT = 64  # room for the axis labels
_TOP = 18
_GAP = 34
_SLOTS = 30


def _bars(
    entries: Sequence[RunEntry], values: Sequence[float | None], top: int, label: str,
    css_of: Sequence[str], text_of: Sequence[str],
) -> list[Markup]:
    biggest = max((v for v in values if v is not None), default=0.0)
    scale = biggest if biggest > 0 else 1.0
    # At least _SLOTS slots, so that a few runs make thin bars from the left, not slabs.
    step = (_WIDTH - _LEFT) / max(len(entries), _SLOTS)
    width = max(step * 0.7, 1.0)
    shapes: list[Markup] = [
        h("text", {"x": 0, "y": top - 6, "class": "chart-label"}, label),
        h("text", {"x": _LEFT - 6, "y": top + 8, "class": "chart-axis", "text-anchor": "end"},
          duration(biggest) if biggest > 0 else "0"),
        h("text", {"x": _LEFT - 6, "y": top + _PANEL, "class": "chart-axis",
                   "text-anchor": "end"}, "0"),
        h("line", {"x1": _LEFT, "x2": _WIDTH, "y1": top + _PANEL, "y2": top + _PANEL,
                   "class": "chart-base"}),
    ]
    for index, value in enumerate(values):
        if value is None:
            continue
        height = max(value / scale * _PANEL, 1.0) if value > 0 else 1.0
        x = _LEFT + index * step + (step - width) / 2
        shapes.append(h(
            "rect",
            {"x": f"{x:.1f}", "y": f"{top + _PANEL - height:.1f}", "width": f"{width:.1f}",
             "height": f"{height:.1f}", "class": css_of[index]},
            h("title", {}, text_of[index]),
        ))
    return shapes


def run_chart(entries: Sequence[RunEntry], title: str) -> Markup:
    """Two bar panels over ``entries`` (oldest left): duration, coloured by outcome, and
    lateness of scheduled runs (a missed run's lateness is shown too)."""
    texts = [
        f"{e.outcome}{' (manual)' if e.manual else ''}: duration {duration(e.duration)}, "
        f"lateness {seconds(e.lateness)}"
        for e in entries
    ]
    outcome_css = [
        "bar-ok" if e.outcome == "succeeded"
        else "bar-running" if e.outcome == "running"
        else "bar-fail"
        for e in entries
    ]
    late_css = ["bar-missed" if e.outcome == "missed" else "bar-late" for e in entries]
    height = _TOP + 2 * _PANEL + _GAP + 12
    return h(
        "figure", {"class": "chart"},
        h(
            "svg",
            {"viewBox": f"0 0 {_WIDTH} {height}", "role": "img", "aria-label": title,
             "xmlns": "http://www.w3.org/2000/svg", "preserveAspectRatio": "xMinYMin meet"},
            _bars(entries, [e.duration for e in entries], _TOP, "Duration", outcome_css, texts),
            _bars(entries, [e.lateness for e in entries], _TOP + _PANEL + _GAP, "Lateness",
                  late_css, texts),
        ),
        h("figcaption", {}, title),
    )
