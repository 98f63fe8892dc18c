"""The kernel of another checkout (``BENCH_BASELINE_TREE``), to compare a change with.

``BENCH_BASELINE_TREE=/path/to/checkout`` (a directory holding the ``kernel`` package, e.g.
a ``git worktree add ../main main``) makes the ``kernel-baseline`` engine: the same
:class:`bench._engines.kernel.KernelEngine`, but ``kernel`` is imported from that tree. The
runner's process is fresh, so importing this module before anything imports ``kernel``
is enough.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench._engines.kernel import KernelEngine
from bench._measure import TimeBase

__all__ = ("BaselineKernelEngine", "probe")

ENV = "BENCH_BASELINE_TREE"


def _tree() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value).resolve() if value else None


def probe() -> str | None:
    """None when ``BENCH_BASELINE_TREE`` names a tree with a ``kernel`` package."""
    tree = _tree()
    if tree is None:
        return f"set {ENV} to a checkout to compare with (e.g. a git worktree of main)"
    if not (tree / "kernel" / "__init__.py").is_file():
        return f"{ENV}={tree} has no kernel/__init__.py"
    return None


class BaselineKernelEngine(KernelEngine):
    """:class:`KernelEngine` running the baseline tree's ``kernel``."""

    def __init__(self, tb: TimeBase) -> None:
        tree = _tree()
        assert tree is not None, probe()
        # The add scenarios build a second instance (the memory pass): by then kernel is
        # the baseline's already, which the check below confirms.
        if "kernel" not in sys.modules:
            sys.path.insert(0, str(tree))
        super().__init__(tb)
        here = Path(sys.modules["kernel"].__file__ or "").resolve()
        if tree not in here.parents:
            raise RuntimeError(f"kernel came from {here}, not from {tree}")
