"""How :func:`actors.config.load_config` reads, merges, decodes and checks a configuration.

Values are merged as plain dicts first (TOML, then environment), remembering where each came
from, so that an error can name the environment variable that set a bad value.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from actors._config_checks import check_config, cluster_database_url, fernet_key_problem
from actors._config_values import ConfigError, Secret, fail, redact_url, show, where

if TYPE_CHECKING:
    from actors.config import Config

__all__ = ("ConfigError", "Secret", "load_config", "redact_url")

ENV_PREFIX = "LARK_SCHEDULER_"
_SHORTCUTS = {
    "LARK_SCHEDULER_ADMIN_TOKEN": ("http", "admin_token"),
    "LARK_SCHEDULER_SECRET_KEY": ("store", "secret_key"),
    "DATABASE_URL": ("store", "url"),
}
_SCHEDULE_KEYS = ("cron", "weeks", "days", "hours", "minutes", "seconds")


# -- reading --------------------------------------------------------------------------------


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path!r}: is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
            f"offset {exc.start}); TOML files are UTF-8, save it as UTF-8"
        ) from None
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r}: not found") from None
    except OSError as exc:
        raise ConfigError(f"config file {path!r}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path!r}: invalid TOML ({exc})") from None


def _set(raw: dict[str, Any], keys: tuple[str, ...], value: str, source: str) -> None:
    node = raw
    for depth, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            path = ".".join(keys[: depth + 1])
            raise ConfigError(f"{path} (overridden by {source}): is not a table in the file")
        node = child
    if value == "":
        node.pop(keys[-1], None)  # an empty variable unsets the key: the default applies
    else:
        node[keys[-1]] = value


def _apply_env(raw: dict[str, Any], env: Mapping[str, str], sources: dict[str, str]) -> None:
    # Shortcuts first, so that the explicit LARK_SCHEDULER_<SECTION>__<KEY> form wins.
    for name, keys in _SHORTCUTS.items():
        if name in env:
            _set(raw, keys, env[name], name)
            sources[".".join(keys)] = name
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue  # e.g. LARK_SCHEDULER_CONFIG, or a shortcut handled above
        parts = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        if any(not part for part in parts):
            raise ConfigError(
                f"{name}: empty key part; write LARK_SCHEDULER_<SECTION>__<KEY>, "
                "e.g. LARK_SCHEDULER_HTTP__PORT"
            )
        _set(raw, parts, env[name], name)
        sources[".".join(parts)] = name


def _fill_job_defaults(raw: dict[str, Any], defaults: Any) -> None:
    # A job table without any schedule key keeps the built-in schedule, so that
    # ``[jobs.health_check] enabled = false`` does not also erase "every 5 minutes"; the same
    # for the job's default timeout.
    jobs = raw.get("jobs")
    if not isinstance(jobs, dict):
        return
    for name, table in jobs.items():
        default = getattr(defaults, name, None)
        if not isinstance(table, dict) or default is None:
            continue
        keys = () if any(key in table for key in _SCHEDULE_KEYS) else _SCHEDULE_KEYS
        if "timeout" not in table:
            keys = (*keys, "timeout")
        for key in keys:
            value = getattr(default, key)
            if value is not None:
                table[key] = value


# -- decoding -------------------------------------------------------------------------------


def _dec_hook(kind: type, obj: Any) -> Any:
    if kind is Secret:
        if not isinstance(obj, str):
            raise TypeError("Expected `str`")
        return Secret(obj)
    raise NotImplementedError


def _lookup(raw: Mapping[str, Any], path: str) -> Any:
    node: Any = raw
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "str | null": "a string",
    "float | null": "a number",
    "object": "a table",
}
_TYPE_ERROR = re.compile(r"Expected `([^`]+)`, got `[^`]+`(?: - at `\$\.?([^`]*)`)?")
_UNKNOWN = re.compile(r"Object contains unknown field `([^`]+)`(?: - at `\$\.?([^`]*)`)?")


def _allowed_keys(defaults: Any, path: str) -> str:
    node = defaults
    for key in filter(None, path.split(".")):
        node = getattr(node, key, None)
    fields = getattr(node, "__struct_fields__", ())
    return ", ".join(fields)


def _translate(
    exc: msgspec.ValidationError, raw: Mapping[str, Any], sources: Mapping[str, str], defaults: Any
) -> ConfigError:
    text = str(exc)
    unknown = _UNKNOWN.fullmatch(text)
    if unknown:
        parent = unknown.group(2) or ""
        path = f"{parent}.{unknown.group(1)}" if parent else unknown.group(1)
        return ConfigError(
            f"{path}{where(path, sources)}: unknown key; allowed keys: "
            f"{_allowed_keys(defaults, parent)}"
        )
    wrong = _TYPE_ERROR.fullmatch(text)
    if wrong:
        path = wrong.group(2) or ""
        expected = _EXPECTED.get(wrong.group(1), wrong.group(1))
        value = show(path, _lookup(raw, path))
        return ConfigError(f"{path} = {value}{where(path, sources)}: must be {expected}")
    return ConfigError(f"configuration: {text}")


def _read_secret_file(path: str, key: str, sources: Mapping[str, str]) -> Secret:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise fail(key, path, sources, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(key, path, sources, f"cannot be read ({exc})") from None
    if not text:
        raise fail(key, path, sources, "file is empty")
    return Secret(text)


def load_config(path: str | None, env: Mapping[str, str]) -> Config:
    """The configuration in the TOML file ``path`` (none when ``None``) with ``env``'s
    overrides, checked; :class:`ConfigError` (one line) names the first bad value."""
    from actors.config import Config

    raw: dict[str, Any] = _read_file(path) if path else {}
    sources: dict[str, str] = {}
    _apply_env(raw, env, sources)
    defaults = Config()
    _fill_job_defaults(raw, defaults.jobs)
    if isinstance(raw.get("logging"), dict) and isinstance(raw["logging"].get("level"), str):
        raw["logging"]["level"] = raw["logging"]["level"].upper()
    try:
        config = msgspec.convert(raw, Config, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise _translate(exc, raw, sources, defaults) from None
    check_config(config, sources)
    http, store = config.http, config.store
    if http.admin_token is None and http.admin_token_file:
        token = _read_secret_file(http.admin_token_file, "http.admin_token_file", sources)
        http = msgspec.structs.replace(http, admin_token=token)
    if store.secret_key is None and store.secret_key_file:
        key_path = Path(store.secret_key_file)
        if key_path.exists():
            key = _read_secret_file(store.secret_key_file, "store.secret_key_file", sources)
            why = fernet_key_problem(key)
            if why is not None:
                raise fail("store.secret_key_file", store.secret_key_file, sources, why)
    store = msgspec.structs.replace(store, url=store.resolved_url)
    cluster = config.cluster
    if cluster.enabled:
        cluster = msgspec.structs.replace(cluster, database_url=cluster_database_url(config))
    return msgspec.structs.replace(config, http=http, store=store, cluster=cluster)
