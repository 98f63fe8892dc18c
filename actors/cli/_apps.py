"""``migrate`` and ``apps ...``: the store's schema, and the Lark apps the service manages.

An app's secret is read from a prompt (not echoed), from stdin (``--secret-stdin``) or from
``LARK_APP_SECRET``; it is never a command-line argument (those show in ``ps`` and shell
history) and never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from actors.config import Config
from actors.store import (
    AppExistsError,
    AppNotFoundError,
    AppRecord,
    InvalidAppIdError,
    Store,
    StoreError,
    check_app_id,
)

from ._errors import EXIT_ERROR, EXIT_USAGE, CliError
from ._settings import load, make_configured_store
from ._table import table

__all__ = ("SECRET_ENV", "read_secret", "register")

SECRET_ENV = "LARK_APP_SECRET"
_T = TypeVar("_T")


def read_secret(app_id: str, from_stdin: bool) -> str:
    """The app secret: stdin when asked, else ``$LARK_APP_SECRET``, else a silent prompt."""
    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
        source = "stdin"
    elif os.environ.get(SECRET_ENV):
        secret, source = os.environ[SECRET_ENV], SECRET_ENV
    elif sys.stdin.isatty():
        try:
            secret = getpass.getpass(f"App secret for {app_id} (not shown): ")
        except EOFError:  # Ctrl-D at the prompt
            print(file=sys.stderr)  # end the prompt's line
            raise CliError(
                f"no app secret for {app_id}: the prompt was closed (Ctrl-D); nothing was "
                f"changed. Type the secret at the prompt, pipe it in with --secret-stdin or "
                f"set {SECRET_ENV}",
                EXIT_USAGE,
            ) from None
        source = "the prompt"
    else:
        raise CliError(
            f"no app secret for {app_id}: stdin is not a terminal, so there is no prompt; "
            f"pipe it in with --secret-stdin or set {SECRET_ENV}",
            EXIT_USAGE,
        )
    if not secret.strip():
        raise CliError(f"the app secret from {source} is empty; give the app's secret", EXIT_USAGE)
    return secret.strip()


def _with_store(
    config: Config, work: Callable[[Store], Awaitable[_T]], *, migrate: bool = True
) -> _T:
    async def run() -> _T:
        store = make_configured_store(config, migrate_on_open=migrate)
        try:
            await store.open()
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except AppExistsError as exc:
        raise CliError(
            f"app {exc.app_id} is already registered; change it with "
            f"'lark-scheduler apps update {exc.app_id}'",
            EXIT_ERROR,
        ) from None
    except AppNotFoundError as exc:
        raise CliError(
            f"no app {exc.app_id} is registered; 'lark-scheduler apps list --all' shows them",
            EXIT_ERROR,
        ) from None
    except StoreError as exc:
        raise CliError(f"store: {exc}", EXIT_ERROR) from None


def _print_app(app: AppRecord, as_json: bool, verb: str) -> None:
    if as_json:
        print(msgspec.json.encode(app).decode())
    else:
        state = "active" if app.active else "disabled"
        print(f"app {app.app_id} ({app.name}) {verb}: {state}, administrator {app.admin_open_id}")


def migrate(args: argparse.Namespace) -> int:
    config = load(args.config)

    async def work(store: Store) -> tuple[list[int], list[int]]:
        applied = await store.migrate()
        return applied, await store.applied_migrations()

    applied, now = _with_store(config, work, migrate=False)
    if applied:
        print(f"applied migration(s) {', '.join(map(str, applied))}; schema at version {now[-1]}")
    else:
        print(f"nothing to apply; schema at version {now[-1] if now else 0}")
    return 0


def _checked_app_id(app_id: str) -> str:
    try:
        return check_app_id(app_id)
    except InvalidAppIdError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def apps_add(args: argparse.Namespace) -> int:
    config = load(args.config)
    _checked_app_id(args.app_id)  # before asking for the secret
    secret = read_secret(args.app_id, args.secret_stdin)

    async def work(store: Store) -> AppRecord:
        return await store.add_app(
            args.app_id,
            args.name or args.app_id,
            secret=secret,
            admin_open_id=args.admin,
            active=not args.disabled,
        )

    _print_app(_with_store(config, work), args.json, "registered")
    return 0


def apps_list(args: argparse.Namespace) -> int:
    config = load(args.config)

    async def work(store: Store) -> list[AppRecord]:
        return await store.list_apps(active_only=not args.all)

    apps = _with_store(config, work)
    if args.json:
        print(json.dumps(msgspec.to_builtins(apps), indent=2, ensure_ascii=False))
    elif not apps:
        print("no apps are registered" if args.all else "no active apps ('--all' shows disabled)")
    else:
        rows = [(a.app_id, a.name, a.active, a.admin_open_id, a.updated_at) for a in apps]
        print(table(("APP ID", "NAME", "ACTIVE", "ADMINISTRATOR", "UPDATED (UTC)"), rows))
    return 0


def apps_update(args: argparse.Namespace) -> int:
    config = load(args.config)
    _checked_app_id(args.app_id)
    changes: dict[str, Any] = {}
    if args.name is not None:
        changes["name"] = args.name
    if args.admin is not None:
        changes["admin_open_id"] = args.admin
    if args.clear_admin:
        changes["admin_open_id"] = None
    if args.enable:
        changes["active"] = True
    new_secret = args.new_secret or args.secret_stdin
    if not changes and not new_secret:
        raise CliError(
            "nothing to change; give --name, --admin, --clear-admin, --enable, --new-secret "
            "or --secret-stdin",
            EXIT_USAGE,
        )
    secret = read_secret(args.app_id, args.secret_stdin) if new_secret else None

    async def work(store: Store) -> AppRecord:
        if await store.get_app(args.app_id) is None:
            raise AppNotFoundError(args.app_id)
        if secret is not None:
            await store.set_app_secret(args.app_id, secret)
        if changes:
            return await store.update_app(args.app_id, **changes)
        app = await store.get_app(args.app_id)
        assert app is not None
        return app

    _print_app(_with_store(config, work), args.json, "updated")
    return 0


def apps_disable(args: argparse.Namespace) -> int:
    config = load(args.config)
    _checked_app_id(args.app_id)

    async def work(store: Store) -> AppRecord:
        return await store.disable_app(args.app_id)

    _print_app(_with_store(config, work), args.json, "disabled")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``migrate`` and ``apps`` to the top-level parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE",
        help="the service's config file, for its store (default: LARK_SCHEDULER_CONFIG)",
    )
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print JSON")
    secret_help = (
        f"read the secret from stdin instead of {SECRET_ENV} or the prompt "
        "(the secret is never a command-line argument and never shown)"
    )

    cmd = commands.add_parser(
        "migrate", parents=[common], help="apply pending database migrations",
        description="Apply the store's pending schema migrations (serve applies them too).",
    )
    cmd.set_defaults(func=migrate)

    apps = commands.add_parser(
        "apps", help="register and manage Lark apps",
        description="The Lark apps the service manages, in its store.",
    )
    verbs = apps.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    add = verbs.add_parser(
        "add", parents=[common, output], help="register an app and its administrator",
        description=(
            "Register a Lark app. The secret is read from a prompt, from stdin "
            f"(--secret-stdin) or from {SECRET_ENV}; it is stored encrypted."
        ),
    )
    add.add_argument(
        "app_id", metavar="APP_ID", help="the app's id: cli_ and up to 60 letters, digits, _ or -"
    )
    add.add_argument("--name", help="a name for people (default: the app id)")
    add.add_argument("--admin", metavar="OPEN_ID", help="the administrator who gets notices")
    add.add_argument("--disabled", action="store_true", help="register it inactive")
    add.add_argument("--secret-stdin", action="store_true", help=secret_help)
    add.set_defaults(func=apps_add)

    listing = verbs.add_parser("list", parents=[common, output], help="the registered apps")
    listing.add_argument("--all", action="store_true", help="include disabled apps")
    listing.set_defaults(func=apps_list)

    update = verbs.add_parser(
        "update", parents=[common, output], help="change an app's name, admin, state or secret"
    )
    update.add_argument("app_id", metavar="APP_ID")
    update.add_argument("--name")
    admin = update.add_mutually_exclusive_group()
    admin.add_argument("--admin", metavar="OPEN_ID", help="a new administrator")
    admin.add_argument("--clear-admin", action="store_true", help="no administrator")
    update.add_argument("--enable", action="store_true", help="make a disabled app active")
    secret = update.add_mutually_exclusive_group()
    secret.add_argument(
        "--new-secret", action="store_true",
        help=f"set a new secret, from {SECRET_ENV} or a prompt",
    )
    secret.add_argument("--secret-stdin", action="store_true", help="set a new secret, from stdin")
    update.set_defaults(func=apps_update)

    disable = verbs.add_parser(
        "disable", parents=[common, output], help="stop syncing and checking an app (rows stay)"
    )
    disable.add_argument("app_id", metavar="APP_ID")
    disable.set_defaults(func=apps_disable)
