"""Configuration values and messages: secrets, URL redaction, and the one-line error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ("SECRET_PATHS", "ConfigError", "Secret", "fail", "redact_url", "show", "where")

SECRET_PATHS = {"http.admin_token", "store.secret_key"}


class ConfigError(ValueError):
    """A configuration value that cannot work; the message is one line naming the key."""


class Secret:
    """A secret string whose ``repr`` and ``str`` never show it; :meth:`reveal` does."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself; pass it on, never log it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:***@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return "<unparsable url>"


def show(path: str, value: Any) -> str:
    if path in SECRET_PATHS or isinstance(value, Secret):
        return "<redacted>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(redact_url(value) if "://" in value else value)
    if isinstance(value, dict):
        return "{...}"
    return repr(value)


def where(path: str, sources: Mapping[str, str]) -> str:
    if path in sources:
        return f" (from {sources[path]})"
    below = sorted(name for key, name in sources.items() if key.startswith(f"{path}."))
    return f" (from {below[0]})" if below else ""


def fail(path: str, value: Any, sources: Mapping[str, str], why: str) -> ConfigError:
    return ConfigError(f"{path} = {show(path, value)}{where(path, sources)}: {why}")
