"""``lark-scheduler``: run the service, and operate it from the command line.

Every command has ``--help``. Commands that talk to a running service (``jobs``,
``failures``) use its admin HTTP API; ``migrate``, ``apps`` and ``run-task`` work on the
store directly; ``cron explain`` and ``config check`` need nothing running.

Exit codes: 0 success; 1 the command failed (the API or the store refused); 2 what was
asked for is wrong (usage, configuration, cron expression); 130/143 stopped by a second
SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kernel import __version__

from . import _apps, _bench, _config_cmd, _cron, _jobs, _serve, _tasks
from ._errors import CliError

__all__ = ("build_parser", "main")

PROG = "lark-scheduler"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "The Lark (Feishu) service's scheduler: the four built-in jobs on an asyncio "
            "kernel, with metrics, an admin API and this command line."
        ),
        epilog=f"'{PROG} COMMAND --help' explains a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (_serve, _jobs, _cron, _config_cmd, _apps, _tasks, _bench):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; answer its exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except CliError as exc:
        print(f"{PROG}: error: {exc.message}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `lark-scheduler jobs list | head -1`
        return 0
    sys.stdout.flush()
    return code
