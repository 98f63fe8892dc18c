"""``cron explain``: what a cron expression means, its next fires, and DST warnings."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import msgspec

from kernel.cron_explain import explain
from kernel.errors import InvalidJobError
from kernel.triggers import resolve_timezone

from ._errors import EXIT_USAGE, CliError

__all__ = ("DEFAULT_TIMEZONE", "register")

DEFAULT_TIMEZONE = "Asia/Shanghai"
"""The kernel's default zone (the seed's), used when ``--tz`` is not given."""


_FROM_HINT = (
    "write an ISO 8601 date or time, e.g. 2027-03-13, 2027-03-13T02:00 (a local time in "
    "--tz) or 2027-03-13T07:00Z"
)


def _start(text: str | None, tz: str) -> datetime:
    """The moment fires are listed from: ``--from`` (naive means local in ``tz``), or now."""
    if text is None:
        return datetime.now(UTC)
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--from {text!r} is not a date or time; {_FROM_HINT}", EXIT_USAGE) from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=resolve_timezone(tz, "--tz"))
    return start


def cron_explain(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise CliError(f"-n {args.n}: give a whole number of fires >= 0", EXIT_USAGE)
    try:
        start = _start(args.start, args.tz)
        # Fire instants are whole seconds, so a microsecond earlier lists one at `start` too.
        explanation = explain(
            args.expression, args.tz, args.n, after=start - timedelta(microseconds=1)
        )
    except InvalidJobError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except OverflowError:
        raise CliError(
            f"--from {args.start!r} is too near the ends of the calendar (years 1-9999); "
            f"{_FROM_HINT}",
            EXIT_USAGE,
        ) from None
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
            "in a zone, say how it runs across daylight-saving changes, and warn when a fire "
            "falls in a daylight-saving gap or overlap."
        ),
        epilog=(
            "example: lark-scheduler cron explain '30 2 * * *' --tz America/New_York -n 2 "
            "--from 2027-03-13"
        ),
    )
    explain_cmd.add_argument("expression", metavar="EXPR", help="e.g. '0 9,18 * * *' (quote it)")
    explain_cmd.add_argument(
        "--tz", default=DEFAULT_TIMEZONE, metavar="ZONE",
        help=f"IANA time zone (default {DEFAULT_TIMEZONE})",
    )
    explain_cmd.add_argument(
        "-n", type=int, default=5, metavar="N", help="how many fire times to list (default 5)"
    )
    explain_cmd.add_argument(
        "--from", dest="start", metavar="DATETIME",
        help="list fires at or after this moment instead of now: ISO 8601, e.g. 2027-03-13, "
        "2027-03-13T02:00 (a local time in --tz) or 2027-03-13T07:00Z",
    )
    explain_cmd.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain_cmd.set_defaults(func=cron_explain)
