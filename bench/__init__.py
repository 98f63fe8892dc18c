"""The scheduling benchmark: the kernel side by side with the alternatives and the event
loop's own floor (issue 6). ``python -m bench --help``; ``tox -e bench``."""

from __future__ import annotations

from bench._cli import main

__all__ = ("main",)
