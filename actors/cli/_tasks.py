"""``run-task NAME``: run one built-in task by hand, outside the service."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec

from actors import tasks
from actors.config import Config
from actors.service import JobIncompleteError
from actors.store import StoreError
from kernel.logs import configure_logging

from ._errors import EXIT_ERROR, CliError
from ._settings import load

__all__ = ("TASKS", "register")

TASKS: dict[str, Callable[[Config], Coroutine[Any, Any, msgspec.Struct]]] = {
    "sync_user_info": tasks.sync_user_info_task,
    "check_token_expiry": tasks.check_token_expiry_task,
    "cleanup_expired_tokens": tasks.cleanup_expired_tokens_task,
    "health_check": tasks.health_check_task,
}


def _report(report: msgspec.Struct) -> str:
    return msgspec.json.format(msgspec.json.encode(report), indent=2).decode()


def run_task(args: argparse.Namespace) -> int:
    config = load(args.config)
    name = args.name.removesuffix("_task")
    # Warnings and errors of the run go to stderr; the report is the only thing on stdout.
    configure_logging("WARNING", "json" if config.logging.format == "json" else "text")
    try:
        report = asyncio.run(TASKS[name](config))
    except JobIncompleteError as exc:
        print(_report(exc.report))
        raise CliError(str(exc), EXIT_ERROR) from None
    except StoreError as exc:
        raise CliError(f"{name}: store: {exc}", EXIT_ERROR) from None
    finally:
        logging.shutdown()
    print(_report(report))
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run-task`` to the top-level parser."""
    cmd = commands.add_parser(
        "run-task",
        help="run one built-in task now, outside the service",
        description=(
            "Run one built-in task by hand, outside the service, with the configuration the "
            "service would use (its store and Lark apps), and print its report as JSON."
        ),
    )
    names = [*TASKS, *(f"{name}_task" for name in TASKS)]
    cmd.add_argument(
        "name", metavar="NAME", choices=names, help=", ".join(TASKS) + " (or NAME_task)"
    )
    cmd.add_argument("--config", metavar="FILE", help="default: LARK_SCHEDULER_CONFIG")
    cmd.set_defaults(func=run_task)
