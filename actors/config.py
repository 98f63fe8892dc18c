"""The service's configuration: frozen structs, read from a TOML file plus the environment.

``load_config(path, env)`` reads the TOML file (when given), lays environment overrides on top,
decodes the result into :class:`Config` and checks every value. A wrong value raises
:class:`ConfigError` with one line naming the key, the value and what is allowed::

    http.port = 99999: must be between 1 and 65535

Precedence, highest first:

1. ``LARK_SCHEDULER_<SECTION>__<KEY>`` (``LARK_SCHEDULER_HTTP__PORT=9000``; a job's key has
   three parts: ``LARK_SCHEDULER_JOBS__SYNC_USER_INFO__HOURS=3``). An empty value unsets the key.
2. The shortcuts ``LARK_SCHEDULER_ADMIN_TOKEN`` (``http.admin_token``),
   ``LARK_SCHEDULER_SECRET_KEY`` (``store.secret_key``) and ``DATABASE_URL`` (``store.url``).
3. The TOML file.
4. The defaults below.

Secrets (``http.admin_token``, ``store.secret_key``) need never be in the TOML file: set them
in the environment or point ``*_file`` at a file holding them. A direct value wins over its
file. Secrets are :class:`Secret` values whose ``repr`` and ``str`` are redacted, and URLs
show no password in a ``repr``; call :meth:`Secret.reveal` where the value is really needed.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from actors._config_load import ConfigError, Secret, load_config, redact_url
from kernel.metrics import DEFAULT_PER_JOB_HISTOGRAMS

__all__ = (
    "CleanupConfig",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "ExpiryConfig",
    "FailuresConfig",
    "HealthConfig",
    "HttpConfig",
    "JobConfig",
    "JobsConfig",
    "LarkConfig",
    "LoggingConfig",
    "MetricsConfig",
    "OAuthConfig",
    "RabbitMQConfig",
    "SchedulerConfig",
    "Secret",
    "StoreConfig",
    "load_config",
)

DEFAULT_DB_NAME = "lark-scheduler.db"


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every section: immutable, keyword-only, unknown keys refused."""


class StoreConfig(_Section, frozen=True, kw_only=True):
    """Where the service persists apps, users, tokens, notices, health and failures.

    ``url`` is ``sqlite:///<data_dir>/lark-scheduler.db`` unless given; ``schema`` is the
    PostgreSQL schema. ``secret_key`` is the Fernet key that encrypts app secrets at rest;
    ``secret_key_file`` names a file holding it (created with mode 0600 when absent). With
    neither, SQLite keeps its key in ``<database>.key`` and PostgreSQL in
    ``<data_dir>/lark-scheduler.key``.
    """

    url: str | None = None
    data_dir: str = "./data"
    schema: str = "public"
    secret_key: Secret | None = None
    secret_key_file: str | None = None

    @property
    def resolved_url(self) -> str:
        """``url``, or the default SQLite database inside ``data_dir``."""
        if self.url:
            return self.url
        return f"sqlite:///{self.data_dir.rstrip('/')}/{DEFAULT_DB_NAME}"

    def store_options(self) -> dict[str, Any]:
        """What ``actors.store.make_store(resolved_url, ...)`` needs besides the URL: the
        secret key or key file, and the schema for PostgreSQL."""
        options: dict[str, Any] = {}
        sqlite = self.resolved_url.startswith("sqlite:")
        if self.secret_key is not None:
            options["secret_key"] = self.secret_key.reveal().encode("ascii")
        elif self.secret_key_file:
            options["key_file"] = self.secret_key_file
        elif not sqlite:
            options["key_file"] = str(Path(self.data_dir) / "lark-scheduler.key")
        if not sqlite:
            options["schema"] = self.schema
        return options

    def __repr__(self) -> str:
        url = redact_url(self.url) if self.url else None
        return (
            f"StoreConfig(url={url!r}, data_dir={self.data_dir!r}, schema={self.schema!r}, "
            f"secret_key={self.secret_key!r}, secret_key_file={self.secret_key_file!r})"
        )


class LarkConfig(_Section, frozen=True, kw_only=True):
    """The Lark Open API: host, per-request timeout (seconds) and retries per call."""

    base_url: str = "https://open.feishu.cn"
    timeout: float = 10.0
    max_retries: int = 3


class RabbitMQConfig(_Section, frozen=True, kw_only=True):
    """RabbitMQ; ``url=None`` means not configured (health reports ``not_configured``)."""

    url: str | None = None

    def __repr__(self) -> str:
        return f"RabbitMQConfig(url={redact_url(self.url) if self.url else None!r})"


class HttpConfig(_Section, frozen=True, kw_only=True):
    """The HTTP surface (health, metrics, admin API). Admin calls need ``admin_token``."""

    host: str = "127.0.0.1"
    port: int = 8080
    admin_token: Secret | None = None
    admin_token_file: str | None = None


class MetricsConfig(_Section, frozen=True, kw_only=True):
    """``GET /metrics``: the duration and lateness histograms have a series per job while
    the service has at most ``per_job_histograms`` jobs, one series of all jobs together
    beyond (0: always together)."""

    per_job_histograms: int = DEFAULT_PER_JOB_HISTOGRAMS


class SchedulerConfig(_Section, frozen=True, kw_only=True):
    """The kernel's defaults; ``misfire_grace_time`` and ``shutdown_grace`` in seconds."""

    timezone: str = "Asia/Shanghai"
    coalesce: bool = True
    max_instances: int = 1
    misfire_grace_time: float = 60.0
    shutdown_grace: float = 30.0


class JobConfig(_Section, frozen=True, kw_only=True):
    """One built-in job: whether it is scheduled, and either a ``cron`` expression or an
    interval (``weeks``/``days``/``hours``/``minutes``/``seconds``, summed, from 1 second to
    100 years); ``timeout`` in seconds bounds one run (``None``: unbounded; the built-in
    jobs have a default, see :class:`JobsConfig`)."""

    enabled: bool = True
    cron: str | None = None
    weeks: float | None = None
    days: float | None = None
    hours: float | None = None
    minutes: float | None = None
    seconds: float | None = None
    timeout: float | None = None

    @property
    def kind(self) -> Literal["cron", "interval"]:
        """``"cron"`` when a cron expression is set, else ``"interval"``."""
        return "cron" if self.cron is not None else "interval"

    def interval_kwargs(self) -> dict[str, float]:
        """The interval's non-empty units, as ``Kernel.add_interval_job`` takes them."""
        units = {
            "weeks": self.weeks,
            "days": self.days,
            "hours": self.hours,
            "minutes": self.minutes,
            "seconds": self.seconds,
        }
        return {name: value for name, value in units.items() if value is not None}


class JobsConfig(_Section, frozen=True, kw_only=True):
    """The four built-in jobs with the seed's schedules, and a timeout each, so that a run
    stuck on a network call ends (recorded as failed) instead of blocking the next ones."""

    sync_user_info: JobConfig = JobConfig(hours=6, timeout=3600.0)
    check_token_expiry: JobConfig = JobConfig(cron="0 9,18 * * *", timeout=600.0)
    cleanup_expired_tokens: JobConfig = JobConfig(cron="0 3 * * *", timeout=1800.0)
    health_check: JobConfig = JobConfig(minutes=5, timeout=60.0)


class ExpiryConfig(_Section, frozen=True, kw_only=True):
    """Refresh-token expiry notices: warning within ``warning_days``, critical within
    ``critical_days``; ``notice_format`` is ``text`` or ``card``."""

    warning_days: int = 7
    critical_days: int = 3
    notice_format: str = "text"


class CleanupConfig(_Section, frozen=True, kw_only=True):
    """Tokens whose refresh expiry is older than ``retention_days`` go, ``batch_size`` rows
    per transaction."""

    retention_days: int = 7
    batch_size: int = 500


class FailuresConfig(_Section, frozen=True, kw_only=True):
    """Failure records: kept ``retention_days`` days (then the cleanup job deletes them),
    and while the store cannot take them (the database is down), up to ``outbox_size`` of
    them wait in memory and are written when it is back; at stop the service tries for at
    most ``flush_timeout`` seconds to write those still waiting."""

    retention_days: int = 30
    outbox_size: int = 10_000
    flush_timeout: float = 10.0


class HealthConfig(_Section, frozen=True, kw_only=True):
    """Health checks: ``lark_app_id`` is the app whose credentials probe the Lark API (the
    first active app when unset); ``timeout`` bounds each probe, in seconds."""

    lark_app_id: str | None = None
    timeout: float = 5.0


class OAuthConfig(_Section, frozen=True, kw_only=True):
    """Users' authorization of the apps (the OAuth code flow of Lark's authen v1).

    ``redirect_base_url`` is the service's address as people's browsers reach it
    (``https://lark-scheduler.example.com``); Lark sends them back to
    ``<redirect_base_url>/oauth/callback``, which must be registered as a redirect URL of
    every app in the Lark developer console. Unset: the OAuth pages say it is not
    configured and expiry notices carry no link. ``scope`` is added to the authorize page
    (space-separated Lark scopes; empty: the app's defaults).
    """

    redirect_base_url: str | None = None
    scope: str = ""

    @property
    def redirect_uri(self) -> str | None:
        """``<redirect_base_url>/oauth/callback``, or ``None`` when not configured."""
        if not self.redirect_base_url:
            return None
        return f"{self.redirect_base_url.rstrip('/')}/oauth/callback"

    def authorize_url(self, app_id: str) -> str | None:
        """Where a user of ``app_id`` (re-)authorises it, or ``None`` when not configured."""
        if not self.redirect_base_url:
            return None
        return f"{self.redirect_base_url.rstrip('/')}/oauth/{quote(app_id, safe='')}/authorize"


class LoggingConfig(_Section, frozen=True, kw_only=True):
    """Log ``level`` (DEBUG, INFO, WARNING, ERROR, CRITICAL) and ``format`` (text or json)."""

    level: str = "INFO"
    format: str = "text"


class ClusterConfig(_Section, frozen=True, kw_only=True):
    """Several replicas on one PostgreSQL database (``enabled = true``).

    Jobs are then stored in ``database_url`` (default: ``store.url``, which must be
    PostgreSQL too) under ``schema``, each scheduled time is claimed by exactly one replica,
    and a replica that dies loses its claims after ``lease_seconds``. ``replica_id`` names
    this process in the claims table (default ``<hostname>-<pid>``). ``executor`` says
    where the built-in jobs run: ``local`` (in the replica that claims the time) or
    ``rabbitmq`` (published to ``queue`` on ``rabbitmq.url`` and run by
    ``lark-scheduler worker``, which takes up to ``worker_prefetch`` runs at once).
    """

    enabled: bool = False
    database_url: str | None = None
    schema: str = "lark_scheduler"
    lease_seconds: float = 15.0
    replica_id: str | None = None
    executor: str = "local"
    queue: str = "lark_scheduler.runs"
    worker_prefetch: int = 4

    @property
    def resolved_replica_id(self) -> str:
        """``replica_id``, or ``<hostname>-<pid>``."""
        return self.replica_id or f"{socket.gethostname()}-{os.getpid()}"

    def __repr__(self) -> str:
        url = redact_url(self.database_url) if self.database_url else None
        return (
            f"ClusterConfig(enabled={self.enabled!r}, database_url={url!r}, "
            f"schema={self.schema!r}, lease_seconds={self.lease_seconds!r}, "
            f"replica_id={self.replica_id!r}, executor={self.executor!r}, "
            f"queue={self.queue!r}, worker_prefetch={self.worker_prefetch!r})"
        )


class Config(_Section, frozen=True, kw_only=True):
    """The whole service configuration; ``Config()`` is the all-defaults configuration."""

    store: StoreConfig = StoreConfig()
    lark: LarkConfig = LarkConfig()
    rabbitmq: RabbitMQConfig = RabbitMQConfig()
    http: HttpConfig = HttpConfig()
    metrics: MetricsConfig = MetricsConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    jobs: JobsConfig = JobsConfig()
    expiry: ExpiryConfig = ExpiryConfig()
    cleanup: CleanupConfig = CleanupConfig()
    failures: FailuresConfig = FailuresConfig()
    health: HealthConfig = HealthConfig()
    oauth: OAuthConfig = OAuthConfig()
    logging: LoggingConfig = LoggingConfig()
    cluster: ClusterConfig = ClusterConfig()
