"""``bench``: the scheduling-latency benchmark (the ``bench`` package; its competitors come
with the ``bench`` extra)."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from ._errors import EXIT_ERROR, CliError

__all__ = ("register", "run_bench")

_MISSING = (
    "the benchmark could not be imported: install the project with its bench extra "
    "(pip install -e '.[bench]': APScheduler, aiocron, uvloop, matplotlib), or run tox -e bench"
)


def _import_bench() -> object:
    try:
        return importlib.import_module("bench")
    except ImportError:
        # An older install without the package: in a checkout it sits in the root.
        root = Path.cwd()
        if not (root / "bench" / "__init__.py").is_file() or str(root) in sys.path:
            raise
        sys.path.insert(0, str(root))
        return importlib.import_module("bench")


def run_bench(argv: list[str]) -> int:
    """Hand ``argv`` to ``bench.main``; a clear error when the package is not importable."""
    try:
        bench = _import_bench()
    except ImportError:
        raise CliError(_MISSING, EXIT_ERROR) from None
    main = getattr(bench, "main", None)
    if main is None:
        raise CliError(_MISSING, EXIT_ERROR)
    result = main(argv)
    return int(result or 0)


def _bench(args: argparse.Namespace) -> int:
    rest: list[str] = list(args.bench_args)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return run_bench(rest)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bench`` to the top-level parser."""
    bench = commands.add_parser(
        "bench",
        help="run the scheduling-latency benchmark (needs the bench extra)",
        description=(
            "Run the scheduling-latency benchmark; every argument after 'bench' goes to it "
            "('lark-scheduler bench -- --help' shows its own options)."
        ),
    )
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, metavar="ARGS")
    bench.set_defaults(func=_bench)
