"""``run-task NAME``: run one built-in task by hand, outside the service."""

from __future__ import annotations

import argparse

__all__ = ("TASKS", "register")

TASKS = ("sync_user_info", "check_token_expiry", "cleanup_expired_tokens", "health_check")


def run_task(args: argparse.Namespace) -> int:
    raise NotImplementedError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run-task`` to the top-level parser."""
    cmd = commands.add_parser(
        "run-task",
        help="run one built-in task now, outside the service",
        description=(
            "Run one built-in task by hand, outside the service, with the configuration "
            "the service would use, and print its result."
        ),
    )
    cmd.add_argument("name", metavar="NAME", choices=TASKS, help=", ".join(TASKS))
    cmd.add_argument("--config", metavar="FILE", help="default: LARK_SCHEDULER_CONFIG")
    cmd.set_defaults(func=run_task)
