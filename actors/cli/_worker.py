"""``worker``: run the built-in jobs that replicas publish to RabbitMQ
(``cluster.executor = "rabbitmq"``).

The worker opens the same store and Lark clients as ``serve`` (the jobs need them), binds
them for :mod:`actors.builtin`, and consumes ``cluster.queue`` with
:func:`kernel.distributed.worker.run_worker`, taking each run's claim in
``cluster.database_url`` so that a run is completed once even when a worker dies.

SIGTERM/SIGINT: stop taking runs, let the runs in hand finish for up to
``scheduler.shutdown_grace`` seconds, then cancel them (RabbitMQ gives their messages to
another worker once the claim's lease is over) and exit 0. A second signal exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import msgspec

from actors import builtin
from actors._config_load import redact_url
from actors.config import Config
from actors.service import LarkService
from actors.store import StoreError
from kernel.distributed._pg import UNAVAILABLE
from kernel.distributed.worker import run_worker
from kernel.logs import configure_logging

from ._errors import EXIT_ERROR, EXIT_USAGE, CliError
from ._lifecycle import _Signals
from ._settings import load

__all__ = ("register",)

log = logging.getLogger("scheduler.worker")

# After the grace, cancelled runs get this long to unwind before the worker gives up on them.
_UNWIND = 5.0


def _check(config: Config) -> tuple[str, str]:
    if not config.rabbitmq.url:
        raise CliError(
            "worker: rabbitmq.url is not configured; set rabbitmq.url (or "
            "LARK_SCHEDULER_RABBITMQ__URL) to the broker the replicas publish runs to",
            EXIT_USAGE,
        )
    if not config.cluster.enabled or not config.cluster.database_url:
        raise CliError(
            "worker: cluster.enabled is false; workers take each run's claim in the "
            "replicas' database: set cluster.enabled = true (and the same [cluster] and "
            "[store] settings as the replicas)",
            EXIT_USAGE,
        )
    return config.rabbitmq.url, config.cluster.database_url


async def _work(config: Config, amqp: str, dsn: str, worker_id: str, prefetch: int) -> int:
    cluster = config.cluster
    configure_logging(config.logging.level, "json" if config.logging.format == "json" else "text")
    log.info(
        "Mode: worker %s for queue %s on %s (claims in PostgreSQL %s, schema %s; prefetch %d)",
        worker_id, cluster.queue, redact_url(amqp), redact_url(dsn), cluster.schema, prefetch,
    )
    signals = _Signals(asyncio.get_running_loop())
    signals.install()
    try:
        # The actors get no stop grace of their own: the runs had theirs (see _serve.py).
        scheduler = msgspec.structs.replace(config.scheduler, shutdown_grace=0.0)
        service_config = msgspec.structs.replace(config, scheduler=scheduler)
        async with LarkService(service_config) as service:
            with builtin.bound(service):
                await _consume(config, amqp, dsn, worker_id, prefetch, signals)
    finally:
        signals.remove()
    log.info("Stopped cleanly")
    return 0


async def _consume(config: Config, amqp: str, dsn: str, worker_id: str, prefetch: int,
                   signals: _Signals) -> None:
    cluster, grace = config.cluster, config.scheduler.shutdown_grace
    task = asyncio.create_task(run_worker(
        amqp, dsn, schema=cluster.schema, queue=cluster.queue, prefetch=prefetch,
        lease=cluster.lease_seconds, worker_id=worker_id, stop=signals.stop,
    ))
    stopping = asyncio.create_task(signals.stop.wait())
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not task.done():
        name = signals.received.name if signals.received else "stop"
        log.info("Received %s: taking no new runs; waiting up to %g s for the runs in hand "
                 "(send it again to exit at once)", name, grace)
        await _finish(task, grace)
    await task  # raises what stopped the worker, if anything did


async def _finish(task: asyncio.Task[None], grace: float) -> None:
    done, _ = await asyncio.wait({task}, timeout=grace)
    if done:
        return
    cancelled = builtin.cancel_running()
    log.warning("Shutdown grace of %g s is over: cancelled %d run(s); RabbitMQ hands them "
                "to another worker once their claim's lease is over", grace, cancelled)
    done, _ = await asyncio.wait({task}, timeout=_UNWIND)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def worker(args: argparse.Namespace) -> int:
    config = load(args.config)
    amqp, dsn = _check(config)
    worker_id = args.worker_id or f"worker-{config.cluster.resolved_replica_id}"
    prefetch = args.prefetch or config.cluster.worker_prefetch
    try:
        return asyncio.run(_work(config, amqp, dsn, worker_id, prefetch))
    except StoreError as exc:
        raise CliError(f"cannot start: store: {exc}", EXIT_ERROR) from None
    except UNAVAILABLE as exc:
        raise CliError(
            f"cannot start: cluster.database_url {redact_url(dsn)} is unavailable: "
            f"{type(exc).__name__}: {exc}",
            EXIT_ERROR,
        ) from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``worker`` to the top-level parser."""
    cmd = commands.add_parser(
        "worker",
        help="run jobs the replicas publish to RabbitMQ",
        description=(
            "Consume cluster.queue on rabbitmq.url and run the built-in jobs the replicas "
            "publish there (cluster.executor = 'rabbitmq'). Needs the replicas' [store], "
            "[cluster] and [rabbitmq] settings. SIGTERM or SIGINT stops it gracefully (runs "
            "in hand get scheduler.shutdown_grace seconds); a second signal exits at once."
        ),
    )
    cmd.add_argument(
        "--config", metavar="FILE",
        help="a TOML file; LARK_SCHEDULER_* environment variables override it "
        "(default: LARK_SCHEDULER_CONFIG, else defaults)",
    )
    cmd.add_argument("--prefetch", type=_positive, metavar="N",
                     help="runs taken at once (default: cluster.worker_prefetch)")
    cmd.add_argument("--id", dest="worker_id", metavar="ID",
                     help="this worker's name in the claims table "
                     "(default: worker-<hostname>-<pid>, or worker-<cluster.replica_id>)")
    cmd.set_defaults(func=worker)
