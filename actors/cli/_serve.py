"""``serve``: run the service (kernel, built-in jobs, metrics, logs, admin API)."""

from __future__ import annotations

import argparse
import asyncio

import msgspec

from actors.config import Config
from actors.service import LarkService
from actors.store import StoreError
from kernel.metrics import SchedulerMetrics

from ._config_cmd import build_as_serve
from ._errors import EXIT_ERROR, CliError
from ._lifecycle import Service, run_service
from ._settings import config_path, load

__all__ = ("lark_service", "register")


def lark_service(config: Config, metrics: SchedulerMetrics) -> Service:
    """The Lark service for ``config``, its metrics in the scheduler's registry.

    Its actors get no stop grace of their own: the kernel has already given running jobs
    the whole ``scheduler.shutdown_grace`` when the service closes, so an actor still busy
    then works for a job that was cancelled, and waiting again would double the shutdown.
    """
    scheduler = msgspec.structs.replace(config.scheduler, shutdown_grace=0.0)
    service_config = msgspec.structs.replace(config, scheduler=scheduler)
    return LarkService(service_config, registry=metrics.registry)


def serve(args: argparse.Namespace) -> int:
    config = load(args.config, admin_token=True)
    build_as_serve(config)  # a setting serve could not use stops it here, in one line
    try:
        return asyncio.run(
            run_service(config, lark_service, config_file=config_path(args.config),
                        freeze_gc=True)
        )
    except StoreError as exc:
        raise CliError(f"cannot start: store: {exc}", EXIT_ERROR) from None


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the top-level parser."""
    cmd = commands.add_parser(
        "serve",
        help="run the scheduler service",
        description=(
            "Run the service: the four built-in jobs on the kernel, metrics, logs and the "
            "admin HTTP API. With no configuration it uses an embedded SQLite store in "
            "./data. SIGTERM or SIGINT stops it gracefully (running jobs get "
            "scheduler.shutdown_grace seconds); a second signal exits at once."
        ),
    )
    cmd.add_argument(
        "--config", metavar="FILE",
        help="a TOML file; LARK_SCHEDULER_* environment variables override it "
        "(default: LARK_SCHEDULER_CONFIG, else defaults)",
    )
    cmd.set_defaults(func=serve)
