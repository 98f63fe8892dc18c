"""``tokens list`` and ``tokens revoke``: users' authorizations in the store.

Neither ever prints a token: ``list`` shows states and expiry times (the same report as the
admin API's ``GET /tokens``), ``revoke`` deletes what the service holds for one user.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, datetime

import msgspec

from actors.jobs.token_states import TOKEN_STATES, TokenReport, token_report
from actors.store import AppNotFoundError, Store

from ._apps import _with_store
from ._errors import EXIT_ERROR, CliError
from ._settings import load
from ._table import table

__all__ = ("register",)


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days >= 0 (e.g. 7)")
    return value


def tokens_list(args: argparse.Namespace) -> int:
    config = load(args.config)

    async def work(store: Store) -> TokenReport:
        if args.app is not None and await store.get_app(args.app) is None:
            raise AppNotFoundError(args.app)
        return await token_report(
            store,
            now=datetime.now(UTC),
            warning_days=config.expiry.warning_days,
            critical_days=config.expiry.critical_days,
            app_id=args.app,
            expiring_days=args.expiring,
            active_only=False,
            link_for=config.oauth.authorize_url,
        )

    report = _with_store(config, work)
    if args.json:
        print(json.dumps(msgspec.to_builtins(report), indent=2, ensure_ascii=False))
        return 0
    if report.tokens:
        rows = [
            (
                t.app_id,
                t.open_id,
                t.name,
                f"{t.state} ({t.invalid_reason})" if t.invalid_reason else t.state,
                t.refresh_expires_at,
                t.days_to_expiry,
                t.access_expires_at,
                t.authorized_at,
            )
            for t in report.tokens
        ]
        print(table(
            ("APP ID", "OPEN ID", "NAME", "STATE", "REFRESH EXPIRES (UTC)", "DAYS LEFT",
             "ACCESS EXPIRES (UTC)", "AUTHORISED (UTC)"),
            rows,
        ))
    elif args.expiring is not None:
        print(f"no user's authorization expires within {args.expiring:g} days")
    else:
        print("no user has authorised an app")
    for app in report.apps:
        counts = ", ".join(f"{app.counts[state]} {state}" for state in TOKEN_STATES)
        print(f"{app.app_id}: {counts}")
    return 0


def tokens_revoke(args: argparse.Namespace) -> int:
    config = load(args.config)

    async def work(store: Store) -> bool:
        if await store.get_app(args.app_id) is None:
            raise AppNotFoundError(args.app_id)
        return await store.delete_user_token(args.app_id, args.open_id)

    if not _with_store(config, work):
        raise CliError(
            f"no authorization of user {args.open_id} for app {args.app_id} is stored; "
            f"'lark-scheduler tokens list --app {args.app_id}' lists them",
            EXIT_ERROR,
        )
    link = config.oauth.authorize_url(args.app_id)
    again = f"; they can authorise the app again at {link}" if link else ""
    print(
        f"revoked: the tokens of user {args.open_id} for app {args.app_id} are deleted and no "
        f"longer served{again}"
    )
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tokens`` to the top-level parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE",
        help="the service's config file, for its store (default: LARK_SCHEDULER_CONFIG)",
    )
    tokens = commands.add_parser(
        "tokens", help="users' authorizations of the apps (never shows a token)",
        description=(
            "Users' OAuth authorizations of the apps, in the store: their state (valid, "
            "warning, critical, expired, invalid) and expiry. No token is ever printed."
        ),
    )
    verbs = tokens.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    listing = verbs.add_parser(
        "list", parents=[common], help="who authorised which app, and until when",
        description=(
            "One line per user and app, then the count of users in each state per app. "
            "States use expiry.warning_days and expiry.critical_days."
        ),
    )
    listing.add_argument("--app", metavar="APP_ID", help="only this app")
    listing.add_argument(
        "--expiring", metavar="DAYS", type=_days,
        help="only users whose authorization expires within DAYS days (expired ones too) "
        "or was refused by Lark",
    )
    listing.add_argument("--json", action="store_true", help="print the report as JSON")
    listing.set_defaults(func=tokens_list)
    revoke = verbs.add_parser(
        "revoke", parents=[common], help="delete a user's stored tokens",
        description=(
            "Delete the tokens the service holds for one user of one app: the token API no "
            "longer serves them and no expiry notice follows. Lark is not told (a token it "
            "issued works at Lark until it expires); the user can authorise again."
        ),
    )
    revoke.add_argument("app_id", metavar="APP_ID")
    revoke.add_argument("open_id", metavar="OPEN_ID")
    revoke.set_defaults(func=tokens_revoke)

