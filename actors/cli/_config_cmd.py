"""``config check``: load, check and build (without starting) what the service would start with."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from actors._config_load import redact_url
from actors.cluster import make_cluster_kernel
from actors.config import Config
from actors.lark._config import check_client_config
from actors.service import LarkService, make_kernel
from actors.store import StoreError, make_store
from kernel.errors import InvalidJobError
from kernel.failures import MemoryFailureStore
from kernel.http import create_admin_app
from kernel.metrics import SchedulerMetrics

from ._errors import EXIT_USAGE, CliError
from ._settings import check_admin_token, config_path, load

__all__ = ("build_as_serve", "describe", "register")


def describe(config: Config) -> list[str]:
    """The settings that matter at start-up, one per line; secrets only as set or not."""
    jobs = []
    for name in config.jobs.__struct_fields__:
        job = getattr(config.jobs, name)
        if not job.enabled:
            jobs.append(f"{name}=disabled")
            continue
        if job.cron is not None:
            when = f"cron '{job.cron}'"
        else:
            when = "every " + " ".join(f"{v:g}{k[0] if k != 'minutes' else 'min'}"
                                       for k, v in job.interval_kwargs().items())
        limit = "no timeout" if job.timeout is None else f"timeout {job.timeout:g} s"
        jobs.append(f"{name}={when} ({limit})")
    s, http = config.scheduler, config.http
    return [
        f"store: {redact_url(config.store.resolved_url)}",
        f"lark: {config.lark.base_url} (timeout {config.lark.timeout:g} s)",
        "rabbitmq: " + (redact_url(config.rabbitmq.url) if config.rabbitmq.url
                        else "not configured"),
        f"http: {http.host}:{http.port}, admin token "
        + ("set" if http.admin_token is not None else "not set (admin endpoints refuse)"),
        f"scheduler: timezone {s.timezone}, coalesce={s.coalesce}, max_instances="
        f"{s.max_instances}, misfire_grace_time={s.misfire_grace_time:g} s, "
        f"shutdown_grace={s.shutdown_grace:g} s",
        "jobs: " + ", ".join(jobs),
        f"logging: {config.logging.level} {config.logging.format}",
        _cluster(config),
    ]


def _cluster(config: Config) -> str:
    cluster = config.cluster
    if not cluster.enabled:
        return "cluster: disabled (one process)"
    return (
        f"cluster: replica {cluster.resolved_replica_id} on "
        f"{redact_url(cluster.database_url or '')} schema {cluster.schema}, lease "
        f"{cluster.lease_seconds:g} s, built-in jobs on executor {cluster.executor}"
        + (f" (queue {cluster.queue})" if cluster.executor == "rabbitmq" else "")
    )


def build_as_serve(config: Config) -> None:
    """Build what ``serve`` builds (store, kernel, job triggers, admin API, Lark client
    settings) without opening or starting anything; :class:`CliError` (exit 2) naming the
    part that cannot be built."""
    check_admin_token(config)
    store = config.store
    try:
        make_store(store.resolved_url, **store.store_options())
    except (ValueError, StoreError) as exc:
        raise CliError(f"configuration: store: {exc}", EXIT_USAGE) from None
    parts: list[tuple[str, Callable[[], object]]] = [
        ("scheduler", lambda: make_kernel(config)),
        ("lark", lambda: check_client_config(
            "cli_config_check", "secret", config.lark.base_url, config.lark.timeout,
            config.lark.max_retries, 0.5, 30.0,
        )),
    ]  # fmt: skip
    if config.cluster.enabled:
        parts.append(
            ("cluster", lambda: make_cluster_kernel(config, failure_store=MemoryFailureStore()))
        )
    for part, build in parts:
        try:
            build()
        except (ValueError, TypeError) as exc:
            raise CliError(f"configuration: {part}: {exc}", EXIT_USAGE) from None
    kernel = make_kernel(config)
    try:
        LarkService(config).register_jobs(kernel)
    except InvalidJobError as exc:
        raise CliError(f"configuration: {exc}", EXIT_USAGE) from None
    token = config.http.admin_token
    create_admin_app(
        kernel, token=None if token is None else token.reveal(), metrics=SchedulerMetrics()
    )


def config_check(args: argparse.Namespace) -> int:
    config = load(args.config)
    build_as_serve(config)
    path = config_path(args.config)
    source = f"file {path} + environment" if path else "no file: defaults + environment"
    print(f"configuration OK ({source})")
    for line in describe(config):
        print(f"  {line}")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``config check`` to the top-level parser."""
    config = commands.add_parser(
        "config", help="check the configuration",
        description="The configuration: a TOML file plus LARK_SCHEDULER_* environment variables.",
    )
    verbs = config.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    check = verbs.add_parser(
        "check",
        help="load and check it; one line naming the bad key, or a summary",
        description=(
            "Load the configuration the service would start with, check every value and "
            "build what serve builds (store, kernel, job triggers, admin API) without "
            "opening or starting anything; exit 2 with one line naming the key, the value "
            "and what is allowed when one is wrong."
        ),
    )
    check.add_argument(
        "--config", metavar="FILE", help="the TOML file (default: LARK_SCHEDULER_CONFIG)"
    )
    check.set_defaults(func=config_check)
