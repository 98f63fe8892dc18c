"""``cron explain``: what a cron expression means, its next fires, and DST warnings."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import msgspec

from kernel.cron_explain import explain
from kernel.errors import InvalidJobError

from ._errors import EXIT_USAGE, CliError

__all__ = ("DEFAULT_TIMEZONE", "register")

DEFAULT_TIMEZONE = "Asia/Shanghai"
"""The kernel's default zone (the seed's), used when ``--tz`` is not given."""


def cron_explain(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise CliError(f"-n {args.n}: give a whole number of fires >= 0", EXIT_USAGE)
    try:
        explanation = explain(args.expression, args.tz, args.n, after=datetime.now(UTC))
    except InvalidJobError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(explanation), indent=2).decode())
    else:
        print(explanation.format())
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cron explain`` to the top-level parser."""
    cron = commands.add_parser(
        "cron", help="explain cron expressions",
        description="Cron expressions: minute hour day month day_of_week (0 or 7 = Sunday).",
    )
    verbs = cron.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    explain_cmd = verbs.add_parser(
        "explain",
        help="describe an expression and list its next fire times",
        description=(
            "Describe a five-field cron expression in plain words, list its next fire times "
            "in a zone, and warn when one falls in a daylight-saving gap or overlap."
        ),
        epilog="example: lark-scheduler cron explain '0 9,18 * * *' --tz Asia/Shanghai -n 3",
    )
    explain_cmd.add_argument("expression", metavar="EXPR", help="e.g. '0 9,18 * * *' (quote it)")
    explain_cmd.add_argument(
        "--tz", default=DEFAULT_TIMEZONE, metavar="ZONE",
        help=f"IANA time zone (default {DEFAULT_TIMEZONE})",
    )
    explain_cmd.add_argument(
        "-n", type=int, default=5, metavar="N", help="how many fire times to list (default 5)"
    )
    explain_cmd.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain_cmd.set_defaults(func=cron_explain)
