"""The rules every configuration value must follow, each with the message naming the fix."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from actors._config_values import ConfigError, fail, redact_url
from kernel.errors import InvalidJobError
from kernel.triggers import CronTrigger, IntervalTrigger, resolve_timezone

if TYPE_CHECKING:
    from actors.config import Config

__all__ = (
    "check_config",
    "cluster_database_url",
    "fernet_key_problem",
    "redirect_base_url_problem",
)

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_UNIT_SECONDS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
_MIN_INTERVAL = 1.0
_MAX_INTERVAL = 36525 * 86400.0

# -- rules -------------------------------------------------------------------------------


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


def fernet_key_problem(value: Any) -> str | None:
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


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def redirect_base_url_problem(value: Any) -> str | None:
    """Why ``oauth.redirect_base_url`` cannot work, or ``None``.

    The authorization code travels in the redirect's query string, so plain ``http`` is
    allowed only on the machine itself (tests, a local try-out).
    """
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
    except ValueError:
        return "must be a URL such as https://lark-scheduler.example.com"
    if parts.scheme not in ("http", "https") or not host:
        return "must be a URL such as https://lark-scheduler.example.com"
    if parts.query or parts.fragment:
        return (
            "must have no ?query or #fragment (the callback is "
            "<redirect_base_url>/oauth/callback)"
        )
    if parts.scheme == "http" and host not in _LOOPBACK:
        return (
            "must use https:// (the authorization code travels in the redirect URL); "
            "http:// only for localhost or 127.0.0.1"
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
    ("store.secret_key", fernet_key_problem),
    ("lark.base_url", _url("http", "https")),
    ("lark.timeout", _range(0, strict_low=True)),
    ("lark.max_retries", _range(0, 20)),
    ("rabbitmq.url", _url("amqp", "amqps")),
    ("http.host", _non_empty),
    ("http.port", _range(1, 65535)),
    ("metrics.per_job_histograms", _range(0)),
    ("scheduler.timezone", _timezone),
    ("scheduler.max_instances", _range(1, 1000)),
    ("scheduler.misfire_grace_time", _range(0)),
    ("scheduler.shutdown_grace", _range(0)),
    ("expiry.warning_days", _range(1, 365)),
    ("expiry.critical_days", _range(1, 365)),
    ("expiry.notice_format", _one_of("text", "card")),
    ("cleanup.retention_days", _range(0, 3650)),
    ("cleanup.batch_size", _range(1, 100_000)),
    ("failures.retention_days", _range(1, 3650)),
    ("failures.outbox_size", _range(1, 1_000_000)),
    ("failures.flush_timeout", _range(0, 3600)),
    ("health.timeout", _range(0, strict_low=True)),
    ("oauth.redirect_base_url", redirect_base_url_problem),
    ("logging.level", _one_of(*_LOG_LEVELS)),
    ("logging.format", _one_of("text", "json")),
    ("cluster.database_url", _url("postgresql", "postgres")),
    ("cluster.lease_seconds", _range(1, 3600)),
    ("cluster.replica_id", lambda value: None if value is None else _non_empty(value)),
    ("cluster.executor", _one_of("local", "rabbitmq")),
    ("cluster.queue", _non_empty),
    ("cluster.worker_prefetch", _range(1, 1000)),
)

# The scheduler's schema is created as an unquoted identifier (kernel/distributed/_pg.py).
_CLUSTER_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
_POSTGRES = ("postgresql://", "postgres://")


def cluster_database_url(config: Config) -> str | None:
    """Where replicas coordinate: ``cluster.database_url``, else ``store.url`` when it is
    PostgreSQL, else None."""
    if config.cluster.database_url:
        return config.cluster.database_url
    url = config.store.url or ""
    return url if url.startswith(_POSTGRES) else None


def _check_cluster(config: Config, sources: Mapping[str, str]) -> None:
    cluster = config.cluster
    if not _CLUSTER_SCHEMA.fullmatch(cluster.schema):
        raise fail("cluster.schema", cluster.schema, sources,
                   "must be 1-41 lowercase letters, digits or _, not starting with a digit")
    if not cluster.enabled:
        return
    store_url = config.store.url or ""
    if not store_url.startswith(_POSTGRES):
        now = repr(redact_url(store_url)) if store_url else "unset (embedded SQLite)"
        raise fail(
            "cluster.enabled", True, sources,
            f"replicas share their store, and store.url is {now}, which each replica would "
            "keep to itself; set store.url (or DATABASE_URL) to a postgresql:// URL",
        )
    url = cluster_database_url(config)
    if url == store_url and cluster.schema == config.store.schema:
        raise fail(
            "cluster.schema", cluster.schema, sources,
            "is also store.schema; the scheduler's tables need a schema of their own "
            "(default lark_scheduler)",
        )
    if cluster.executor == "rabbitmq" and not config.rabbitmq.url:
        raise fail("cluster.executor", cluster.executor, sources,
                   "needs rabbitmq.url (amqp://...) for the workers' queue")



def _check_job(name: str, job: Any, sources: Mapping[str, str]) -> None:
    prefix = f"jobs.{name}"
    interval = job.interval_kwargs()
    if job.cron is not None and interval:
        path = f"{prefix}.{next(iter(interval))}"
        raise fail(
            path,
            interval[path.rsplit(".", 1)[1]],
            sources,
            f"{prefix} has a cron expression; give either cron or an interval, not both",
        )
    if job.cron is not None:
        try:
            CronTrigger(job.cron)
        except InvalidJobError as exc:
            raise fail(f"{prefix}.cron", job.cron, sources, str(exc).split("': ", 1)[-1]) from None
    else:
        for unit, value in interval.items():
            if not (math.isfinite(value) and value >= 0):
                raise fail(f"{prefix}.{unit}", value, sources, "must be a number >= 0")
        if sum(interval.values()) <= 0:
            raise ConfigError(
                f'{prefix}: no schedule; set cron = "..." or an interval such as hours = 6'
            )
        _check_interval(prefix, interval, sources)
    if job.timeout is not None and not (math.isfinite(job.timeout) and job.timeout > 0):
        raise fail(f"{prefix}.timeout", job.timeout, sources, "must be greater than 0 seconds")


def _check_interval(prefix: str, interval: dict[str, float], sources: Mapping[str, str]) -> None:
    unit, value = max(interval.items(), key=lambda item: _UNIT_SECONDS[item[0]] * item[1])
    seconds = math.fsum(_UNIT_SECONDS[name] * amount for name, amount in interval.items())
    if seconds < _MIN_INTERVAL:
        why = "the interval is shorter than 1 second; a built-in job runs at most once a second"
        raise fail(f"{prefix}.{unit}", value, sources, why)
    if seconds > _MAX_INTERVAL:
        why = "the interval is longer than 100 years (36525 days), so the job would never run"
        raise fail(f"{prefix}.{unit}", value, sources, why)
    try:  # built here as serve builds it, so that config check finds what would stop serve
        IntervalTrigger(
            weeks=interval.get("weeks", 0), days=interval.get("days", 0),
            hours=interval.get("hours", 0), minutes=interval.get("minutes", 0),
            seconds=interval.get("seconds", 0),
        )
    except InvalidJobError as exc:
        raise fail(f"{prefix}.{unit}", value, sources, str(exc)) from None


def check_config(config: Config, sources: Mapping[str, str]) -> None:
    for path, check in _CHECKS:
        section, key = path.split(".")
        value = getattr(getattr(config, section), key)
        why = check(value)
        if why is not None:
            raise fail(path, value, sources, why)
    expiry = config.expiry
    if expiry.critical_days >= expiry.warning_days:
        raise fail(
            "expiry.critical_days",
            expiry.critical_days,
            sources,
            f"must be less than expiry.warning_days ({expiry.warning_days})",
        )
    for name in config.jobs.__struct_fields__:
        _check_job(name, getattr(config.jobs, name), sources)
    _check_cluster(config, sources)
