"""How :func:`actors.config.load_config` reads, merges, decodes and checks a configuration.

Values are merged as plain dicts first (TOML, then environment), remembering where each came
from, so that an error can name the environment variable that set a bad value.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import msgspec

from kernel.errors import InvalidJobError
from kernel.triggers import CronTrigger, resolve_timezone

if TYPE_CHECKING:
    from actors.config import Config

__all__ = ("ConfigError", "Secret", "load_config", "redact_url")

ENV_PREFIX = "LARK_SCHEDULER_"
_SHORTCUTS = {
    "LARK_SCHEDULER_ADMIN_TOKEN": ("http", "admin_token"),
    "LARK_SCHEDULER_SECRET_KEY": ("store", "secret_key"),
    "DATABASE_URL": ("store", "url"),
}
_SECRET_PATHS = {"http.admin_token", "store.secret_key"}
_SCHEDULE_KEYS = ("cron", "weeks", "days", "hours", "minutes", "seconds")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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


# -- reading --------------------------------------------------------------------------------


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
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


def _fill_job_schedules(raw: dict[str, Any], defaults: Any) -> None:
    # A job table without any schedule key keeps the built-in schedule, so that
    # ``[jobs.health_check] enabled = false`` does not also erase "every 5 minutes".
    jobs = raw.get("jobs")
    if not isinstance(jobs, dict):
        return
    for name, table in jobs.items():
        default = getattr(defaults, name, None)
        if not isinstance(table, dict) or default is None:
            continue
        if not any(key in table for key in _SCHEDULE_KEYS):
            for key in _SCHEDULE_KEYS:
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


def _show(path: str, value: Any) -> str:
    if path in _SECRET_PATHS or isinstance(value, Secret):
        return "<redacted>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(redact_url(value) if "://" in value else value)
    if isinstance(value, dict):
        return "{...}"
    return repr(value)


def _where(path: str, sources: Mapping[str, str]) -> str:
    if path in sources:
        return f" (from {sources[path]})"
    below = sorted(name for key, name in sources.items() if key.startswith(f"{path}."))
    return f" (from {below[0]})" if below else ""


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
            f"{path}{_where(path, sources)}: unknown key; allowed keys: "
            f"{_allowed_keys(defaults, parent)}"
        )
    wrong = _TYPE_ERROR.fullmatch(text)
    if wrong:
        path = wrong.group(2) or ""
        expected = _EXPECTED.get(wrong.group(1), wrong.group(1))
        value = _show(path, _lookup(raw, path))
        return ConfigError(f"{path} = {value}{_where(path, sources)}: must be {expected}")
    return ConfigError(f"configuration: {text}")


# -- checking -------------------------------------------------------------------------------


Check = Callable[[Any], str | None]


def _range(low: float, high: float | None = None, *, strict_low: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if high is not None and not low <= value <= high:
            return f"must be between {low} and {high}"
        if strict_low and not value > low:
            return f"must be greater than {low}"
        if not value >= low:
            return f"must be at least {low}"
        return None

    return check


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _url(*schemes: str) -> Check:
    def check(value: Any) -> str | None:
        if value is None or value.startswith(tuple(f"{s}://" for s in schemes)):
            return None
        return f"must start with {' or '.join(f'{s}://' for s in schemes)}"

    return check


def _non_empty(value: Any) -> str | None:
    return "must not be empty" if value == "" else None


def _fernet_key(value: Any) -> str | None:
    if value is None:
        return None
    from cryptography.fernet import Fernet

    try:
        Fernet(value.reveal().encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError):
        return (
            "must be a Fernet key (44 url-safe base64 characters); make one with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())'"
        )
    return None


def _timezone(value: Any) -> str | None:
    try:
        resolve_timezone(value)
    except InvalidJobError as exc:
        return str(exc).split(" is ", 1)[-1]
    return None


_CHECKS: tuple[tuple[str, Check], ...] = (
    ("store.url", _url("sqlite", "postgresql", "postgres")),
    ("store.data_dir", _non_empty),
    ("store.schema", _non_empty),
    ("store.secret_key", _fernet_key),
    ("lark.base_url", _url("http", "https")),
    ("lark.timeout", _range(0, strict_low=True)),
    ("lark.max_retries", _range(0, 20)),
    ("rabbitmq.url", _url("amqp", "amqps")),
    ("http.host", _non_empty),
    ("http.port", _range(1, 65535)),
    ("scheduler.timezone", _timezone),
    ("scheduler.max_instances", _range(1, 1000)),
    ("scheduler.misfire_grace_time", _range(0)),
    ("scheduler.shutdown_grace", _range(0)),
    ("expiry.warning_days", _range(1, 365)),
    ("expiry.critical_days", _range(1, 365)),
    ("expiry.notice_format", _one_of("text", "card")),
    ("cleanup.retention_days", _range(0, 3650)),
    ("cleanup.batch_size", _range(1, 100_000)),
    ("health.timeout", _range(0, strict_low=True)),
    ("logging.level", _one_of(*_LOG_LEVELS)),
    ("logging.format", _one_of("text", "json")),
)


def _fail(path: str, value: Any, sources: Mapping[str, str], why: str) -> ConfigError:
    return ConfigError(f"{path} = {_show(path, value)}{_where(path, sources)}: {why}")


def _check_job(name: str, job: Any, sources: Mapping[str, str]) -> None:
    prefix = f"jobs.{name}"
    interval = job.interval_kwargs()
    if job.cron is not None and interval:
        path = f"{prefix}.{next(iter(interval))}"
        raise _fail(
            path,
            interval[path.rsplit(".", 1)[1]],
            sources,
            f"{prefix} has a cron expression; give either cron or an interval, not both",
        )
    if job.cron is not None:
        try:
            CronTrigger(job.cron)
        except InvalidJobError as exc:
            raise _fail(f"{prefix}.cron", job.cron, sources, str(exc).split("': ", 1)[-1]) from None
    else:
        for unit, value in interval.items():
            if not (math.isfinite(value) and value >= 0):
                raise _fail(f"{prefix}.{unit}", value, sources, "must be a number >= 0")
        if sum(interval.values()) <= 0:
            raise ConfigError(
                f'{prefix}: no schedule; set cron = "..." or an interval such as hours = 6'
            )
    if job.timeout is not None and not (math.isfinite(job.timeout) and job.timeout > 0):
        raise _fail(f"{prefix}.timeout", job.timeout, sources, "must be greater than 0 seconds")


def _check(config: Config, sources: Mapping[str, str]) -> None:
    for path, check in _CHECKS:
        section, key = path.split(".")
        value = getattr(getattr(config, section), key)
        why = check(value)
        if why is not None:
            raise _fail(path, value, sources, why)
    expiry = config.expiry
    if expiry.critical_days >= expiry.warning_days:
        raise _fail(
            "expiry.critical_days",
            expiry.critical_days,
            sources,
            f"must be less than expiry.warning_days ({expiry.warning_days})",
        )
    for name in config.jobs.__struct_fields__:
        _check_job(name, getattr(config.jobs, name), sources)


def _read_secret_file(path: str, key: str, sources: Mapping[str, str]) -> Secret:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise _fail(key, path, sources, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(key, path, sources, f"cannot be read ({exc})") from None
    if not text:
        raise _fail(key, path, sources, "file is empty")
    return Secret(text)


def load_config(path: str | None, env: Mapping[str, str]) -> Config:
    """The configuration in the TOML file ``path`` (none when ``None``) with ``env``'s
    overrides, checked; :class:`ConfigError` (one line) names the first bad value."""
    from actors.config import Config

    raw: dict[str, Any] = _read_file(path) if path else {}
    sources: dict[str, str] = {}
    _apply_env(raw, env, sources)
    defaults = Config()
    _fill_job_schedules(raw, defaults.jobs)
    if isinstance(raw.get("logging"), dict) and isinstance(raw["logging"].get("level"), str):
        raw["logging"]["level"] = raw["logging"]["level"].upper()
    try:
        config = msgspec.convert(raw, Config, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise _translate(exc, raw, sources, defaults) from None
    _check(config, sources)
    http, store = config.http, config.store
    if http.admin_token is None and http.admin_token_file:
        token = _read_secret_file(http.admin_token_file, "http.admin_token_file", sources)
        http = msgspec.structs.replace(http, admin_token=token)
    if store.secret_key is None and store.secret_key_file:
        key_path = Path(store.secret_key_file)
        if key_path.exists():
            key = _read_secret_file(store.secret_key_file, "store.secret_key_file", sources)
            why = _fernet_key(key)
            if why is not None:
                raise _fail("store.secret_key_file", store.secret_key_file, sources, why)
    store = msgspec.structs.replace(store, url=store.resolved_url)
    return msgspec.structs.replace(config, http=http, store=store)
