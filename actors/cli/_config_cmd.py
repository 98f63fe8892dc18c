"""``config check``: load and check the configuration the service would start with."""

from __future__ import annotations

import argparse

from actors._config_load import redact_url
from actors.config import Config

from ._settings import config_path, load

__all__ = ("describe", "register")


def describe(config: Config) -> list[str]:
    """The settings that matter at start-up, one per line; secrets only as set or not."""
    jobs = []
    for name in config.jobs.__struct_fields__:
        job = getattr(config.jobs, name)
        if not job.enabled:
            jobs.append(f"{name}=disabled")
        elif job.cron is not None:
            jobs.append(f"{name}=cron '{job.cron}'")
        else:
            every = " ".join(f"{v:g}{k[0] if k != 'minutes' else 'min'}"
                             for k, v in job.interval_kwargs().items())
            jobs.append(f"{name}=every {every}")
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
    ]


def config_check(args: argparse.Namespace) -> int:
    config = load(args.config)
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
            "Load the configuration the service would start with and check every value; "
            "exit 2 with one line naming the key, the value and what is allowed when one "
            "is wrong."
        ),
    )
    check.add_argument(
        "--config", metavar="FILE", help="the TOML file (default: LARK_SCHEDULER_CONFIG)"
    )
    check.set_defaults(func=config_check)
