"""``lark-scheduler``: run the service, and operate it from the command line.

Every command has ``--help``. Commands that talk to a running service (``jobs``,
``failures``) use its admin HTTP API; ``migrate``, ``apps``, ``tokens`` and ``run-task``
work on the store directly; ``cron explain`` and ``config check`` need nothing running.

Exit codes: 0 success; 1 the command failed (the API or the store refused); 2 what was
asked for is wrong (usage, configuration, cron expression); 130/143 stopped by a second
SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from kernel import __version__

from . import _apps, _bench, _config_cmd, _cron, _jobs, _serve, _tasks, _tokens, _worker
from ._errors import CliError

__all__ = ("build_parser", "main")

PROG = "lark-scheduler"


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage error never repeats a value given after ``--secret``
    (there is no such option: secrets are read from a prompt, stdin or the environment)."""

    def error(self, message: str) -> NoReturn:
        super().error(re.sub(r"(--\w*secret\w*)([= ])\S+", r"\1\2***", message))


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = _Parser(
        prog=PROG,
        description=(
            "The Lark (Feishu) service's scheduler: the four built-in jobs on an asyncio "
            "kernel, with metrics, an admin API and this command line."
        ),
        epilog=f"'{PROG} COMMAND --help' explains a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (_serve, _worker, _jobs, _cron, _config_cmd, _apps, _tokens, _tasks, _bench):
        module.register(commands)
    _no_abbreviations(parser)
    return parser


def _no_abbreviations(parser: argparse.ArgumentParser) -> None:
    # "--secret" must not silently mean "--secret-stdin", nor "--tok" "--token".
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action.choices, dict):
            for sub in action.choices.values():
                if isinstance(sub, argparse.ArgumentParser):
                    _no_abbreviations(sub)


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
