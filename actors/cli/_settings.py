"""The configuration as the commands see it: the file from ``--config`` or
``LARK_SCHEDULER_CONFIG``, the environment on top, errors turned into one-line exits."""

from __future__ import annotations

import os
from typing import Any

from actors.config import Config, ConfigError, load_config
from actors.store import Store, make_store, secure_data_dir

from ._errors import EXIT_USAGE, CliError

__all__ = (
    "CONFIG_ENV",
    "admin_endpoint",
    "check_admin_token",
    "config_path",
    "load",
    "make_configured_store",
)

CONFIG_ENV = "LARK_SCHEDULER_CONFIG"
"""The environment variable naming the config file when ``--config`` is not given."""

_ANY_ADDRESS = {"", "0.0.0.0", "::"}


def config_path(path: str | None) -> str | None:
    """``--config``, else ``$LARK_SCHEDULER_CONFIG``, else no file."""
    return path or os.environ.get(CONFIG_ENV) or None


# kernel.http's AdminServer refuses shorter tokens; check before anything starts.
_MIN_TOKEN_LENGTH = 16


def load(path: str | None, *, admin_token: bool = False) -> Config:
    """The checked configuration; :class:`CliError` (exit 2) with the loader's one line.

    ``admin_token``: also check ``http.admin_token`` (for the commands that serve the admin
    API; the others never use it, so a short one must not stop them).
    """
    try:
        config = load_config(config_path(path), os.environ)
    except ConfigError as exc:
        raise CliError(f"configuration: {exc}", EXIT_USAGE) from None
    if admin_token:
        check_admin_token(config)
    return config


def check_admin_token(config: Config) -> None:
    """:class:`CliError` (exit 2) when ``http.admin_token`` is set but too weak to serve."""
    token = config.http.admin_token
    if token is None:
        return
    value = token.reveal()
    if len(value) < _MIN_TOKEN_LENGTH or value != value.strip():
        raise CliError(
            f"configuration: http.admin_token = {token!r}: must be at least "
            f"{_MIN_TOKEN_LENGTH} characters without surrounding spaces; make one with "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'",
            EXIT_USAGE,
        )


def admin_endpoint(path: str | None) -> tuple[str, str | None]:
    """The admin API's URL and token as the service configured by ``path`` serves them."""
    http = load(path).http
    host = "127.0.0.1" if http.host in _ANY_ADDRESS else http.host
    if ":" in host:
        host = f"[{host}]"
    token = http.admin_token.reveal() if http.admin_token is not None else None
    return f"http://{host}:{http.port}", token


def make_configured_store(config: Config, **kw: Any) -> Store:
    """An unopened store for ``config.store``, with its secret key or key file."""
    store = config.store
    secure_data_dir(store.data_dir)
    try:
        return make_store(store.resolved_url, **store.store_options(), **kw)
    except ValueError as exc:
        raise CliError(f"configuration: store.url: {exc}", EXIT_USAGE) from None
