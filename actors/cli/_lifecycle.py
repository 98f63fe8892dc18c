"""The service's life: start the kernel, the Lark actors, metrics, logs and the admin API;
stop on SIGTERM/SIGINT with a grace period for running jobs; a second signal exits at once.

Order at start: logging, a few lines saying what is and is not configured, the service
(store, Lark client, actors), its jobs on the kernel, the kernel (``Scheduler started``),
then the admin API. At stop the reverse: no new fires, running jobs get
``scheduler.shutdown_grace`` seconds and are then cancelled, the API closes, the service
closes its pools and connections.

With ``cluster.enabled`` the kernel is a replica's
(:func:`actors.cluster.make_cluster_kernel`): jobs stored in PostgreSQL, each scheduled
time claimed by one replica; the built-in jobs disabled in the configuration are removed
from the store once it has started, and ``/readyz`` adds the replica's own checks.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from aiohttp import web

from actors._config_load import redact_url
from actors.cluster import describe_mode, make_cluster_kernel, merge_ready, prune_disabled_jobs
from actors.config import Config
from actors.jobs import HealthReport
from actors.service import make_kernel
from kernel import Kernel
from kernel.api_models import ReadyCheck, ReadyReport
from kernel.console import ConsoleOptions
from kernel.distributed._pg import UNAVAILABLE
from kernel.distributed.persistent import PersistentKernel
from kernel.failures import FailureStore
from kernel.http import AdminServer
from kernel.logs import configure_logging
from kernel.metrics import SchedulerMetrics
from kernel.state import ScheduleStore

from ._errors import EXIT_ERROR, CliError

__all__ = (
    "DurableSchedule",
    "HttpRoutes",
    "Service",
    "ServiceFactory",
    "describe_start",
    "ready_report",
    "run_service",
)

log = logging.getLogger("scheduler.service")

TOKEN_HINT = (
    "set LARK_SCHEDULER_ADMIN_TOKEN (or http.admin_token_file) to a token of at least 16 "
    "characters (python3 -c 'import secrets; print(secrets.token_urlsafe(32))') and restart "
    "'lark-scheduler serve'; give the CLI the same one (LARK_SCHEDULER_ADMIN_TOKEN or --token)"
)


class Service(AbstractAsyncContextManager["Service"], Protocol):
    """What ``serve`` needs of the Lark service (:class:`actors.service.LarkService`)."""

    @property
    def store(self) -> FailureStore:
        """Where the kernel records failed runs (the service's database)."""
        ...

    def register_jobs(self, kernel: Kernel) -> object:
        """Add the built-in jobs the configuration enables."""
        ...

    async def health_check(self) -> HealthReport:
        """Probe every component now."""
        ...

    async def readiness(self) -> HealthReport:
        """The last health-check result."""
        ...


@runtime_checkable
class HttpRoutes(Protocol):
    """A service that serves routes of its own on the admin server (the Lark service: users'
    authorization and the token API)."""

    def add_routes(self, app: web.Application, *, admin_token: str | None) -> None:
        """Add them to ``app``, which has not started yet."""
        ...


@runtime_checkable
class DurableSchedule(Protocol):
    """A service whose database keeps the kernel's schedule state (the Lark service: in its
    store's database), so that a restart, a crash included, loses nothing."""

    def schedule_store(self) -> ScheduleStore | None:
        """The store for ``Kernel(schedule_store=...)`` (None: in memory)."""
        ...


ServiceFactory = Callable[[Config, SchedulerMetrics], Service]


def describe_start(config: Config, config_file: str | None) -> list[str]:
    """The first log lines: where the configuration came from and what is not configured."""
    url = config.store.resolved_url
    if url.startswith("sqlite:"):
        store = f"embedded SQLite database {url[len('sqlite:///'):]} (no server needed)"
    else:
        store = f"PostgreSQL {redact_url(url)} (schema {config.store.schema})"
    rabbit = (
        f"RabbitMQ: {redact_url(config.rabbitmq.url)}"
        if config.rabbitmq.url
        else "RabbitMQ: not configured (set rabbitmq.url to enable its health check)"
    )
    source = f"file {config_file}" if config_file else "no file: defaults"
    return [
        f"Configuration: {source} + environment",
        describe_mode(config),
        f"Store: {store}",
        rabbit,
        f"Lark API: {config.lark.base_url}",
    ]


class _Signals:
    """First SIGTERM/SIGINT: set ``stop``. Second: exit at once with 128 + signal number."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.stop = asyncio.Event()
        self.received: signal.Signals | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._on_signal, sig)

    def remove(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.received is not None:
            log.warning("Second %s: exiting at once, without waiting for running jobs", sig.name)
            logging.shutdown()
            sys.stdout.flush()
            os._exit(128 + sig.value)
        self.received = sig
        self.stop.set()


async def run_service(
    config: Config,
    service_factory: ServiceFactory,
    *,
    config_file: str | None = None,
    started: Callable[[AdminServer], None] | None = None,
    freeze_gc: bool = False,
) -> int:
    """Run until SIGTERM/SIGINT; answer the exit code (0 after a clean stop).

    ``freeze_gc``: once started, collect and then ``gc.freeze()`` what start-up built (the
    modules, the kernel, its jobs, the HTTP server: ~62,000 tracked objects), so that the
    cyclic collector's full passes only walk what was made since; unfrozen at the end.
    The process-wide setting is the ``serve`` command's choice (it owns the process), not
    the default: a caller embedding the service keeps its own GC settings.
    """
    configure_logging(config.logging.level, "json" if config.logging.format == "json" else "text")
    for line in describe_start(config, config_file):
        log.info("%s", line)
    signals = _Signals(asyncio.get_running_loop())
    signals.install()
    metrics = SchedulerMetrics(per_job_histograms=config.metrics.per_job_histograms)
    try:
        async with service_factory(config, metrics) as service:
            await _log_health(service)
            kernel = _make_kernel(config, service)
            metrics.attach(kernel)
            # No kernel.logs.RunLogger: the kernel already logs every run, miss and skip
            # with its job id ("Failed scheduled task <id>" with the traceback); a second
            # listener would print each line twice.
            service.register_jobs(kernel)
            await _start_kernel(kernel, config)
            try:
                admin = await _start_admin(config, kernel, metrics, service)
            except BaseException:
                await kernel.shutdown(wait=False)
                raise
            if freeze_gc:
                _freeze_start_up()
            if started is not None:
                started(admin)
            try:
                await signals.stop.wait()
                await _stop_kernel(kernel, config.scheduler.shutdown_grace, signals.received)
            finally:
                await admin.stop()
                await kernel.shutdown(wait=False)
    finally:
        signals.remove()
        if freeze_gc:
            gc.unfreeze()
    log.info("Stopped cleanly")
    return 0


def _freeze_start_up() -> None:
    """Move everything start-up left into the collector's permanent generation.

    Garbage first (a cycle frozen would never be freed); what is frozen and later dropped
    is still freed by reference counting. Measured on the default serve (SQLite store):
    62,000 tracked objects after start-up, a full pass 37 ms of CPU under load before
    the freeze, well under 1 ms after (bench/latest/hot-path.md).
    """
    gc.collect()
    gc.freeze()
    log.debug("Froze %d start-up objects out of the garbage collector's scans",
              gc.get_freeze_count())


def ready_report(report: HealthReport) -> ReadyReport:
    """A health report as ``/readyz`` checks: one per component, named after it."""
    checks = []
    for result in report.results:
        detail = result.status.replace("_", " ")
        if result.detail:
            detail = f"{detail}: {result.detail}"
        checks.append(ReadyCheck(
            name=result.component, ok=result.status != "fail",
            detail=f"{detail} (checked {result.checked_at:%Y-%m-%dT%H:%M:%SZ})",
        ))
    return ReadyReport(ready=report.ready, checks=tuple(checks))


async def _log_health(service: Service) -> None:
    # One health check before the first fire, so the first lines say what works and what
    # is not configured (Lark has nothing to probe until an app is registered).
    try:
        report = await service.health_check()
    except Exception as exc:
        log.warning("Health check at start-up failed: %s: %s", type(exc).__name__, exc)
        return
    for result in report.results:
        status = result.status.replace("_", " ")
        detail = f" ({result.detail})" if result.detail else ""
        if result.status == "fail":
            log.warning("Health: %s %s%s", result.component, status, detail)
        else:
            log.info("Health: %s %s%s", result.component, status, detail)


def _make_kernel(config: Config, service: Service) -> Kernel:
    if config.cluster.enabled:
        return make_cluster_kernel(config, failure_store=service.store)
    # One process: the schedule state lives in the store's database, so a restart (a
    # crash included) decides the times that fell while down and reports runs it cut.
    schedule = service.schedule_store() if isinstance(service, DurableSchedule) else None
    return make_kernel(config, failure_store=service.store, schedule_store=schedule)


async def _start_kernel(kernel: Kernel, config: Config) -> None:
    if not isinstance(kernel, PersistentKernel):
        try:
            await kernel.start()  # reads the schedule state from the store's database
        except UNAVAILABLE as exc:
            url = redact_url(config.store.resolved_url)
            raise CliError(
                f"cannot start: the schedule state in store.url {url} (schema "
                f"{config.cluster.schema}) is unavailable: {type(exc).__name__}: {exc}",
                EXIT_ERROR,
            ) from None
        return
    try:
        await kernel.start()
    except UNAVAILABLE as exc:
        url = redact_url(config.cluster.database_url or "")
        raise CliError(
            f"cannot start: cluster.database_url {url} (schema {config.cluster.schema}) is "
            f"unavailable: {type(exc).__name__}: {exc}",
            EXIT_ERROR,
        ) from None
    prune_disabled_jobs(kernel, config)


async def _start_admin(
    config: Config, kernel: Kernel, metrics: SchedulerMetrics, service: Service
) -> AdminServer:
    http = config.http
    token = http.admin_token.reveal() if http.admin_token is not None else None
    if token is None:
        log.warning(
            "Admin token not set: the admin API refuses run/pause/resume/remove and failure "
            "records (set LARK_SCHEDULER_ADMIN_TOKEN or http.admin_token_file)"
        )
    async def readiness() -> ReadyReport:
        report = ready_report(await service.readiness())
        if isinstance(kernel, PersistentKernel):
            # The replica's own view: PostgreSQL (claims, jobs), job changes, RabbitMQ.
            return merge_ready(report, await kernel.readiness())
        return report

    admin = AdminServer(
        kernel, host=http.host, port=http.port, token=token, metrics=metrics,
        readiness=readiness, token_hint=TOKEN_HINT,
        console=ConsoleOptions(title="lark-scheduler"),
    )
    if isinstance(service, HttpRoutes):
        service.add_routes(admin.app, admin_token=token)
    try:
        await admin.start()
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CliError(
            f"http.port {http.port} on {http.host}: cannot listen ({why}); "
            "choose another with http.port or LARK_SCHEDULER_HTTP__PORT",
            EXIT_ERROR,
        ) from None
    return admin


async def _stop_kernel(kernel: Kernel, grace: float, sig: signal.Signals | None) -> None:
    running = sum(job.running for job in kernel.get_jobs())
    name = sig.name if sig is not None else "stop"
    if running:
        log.info(
            "Received %s: no new runs; waiting up to %g s for %d running job(s), then "
            "cancelling them (send it again to exit at once)", name, grace, running,
        )
    else:
        log.info("Received %s: stopping (no job is running)", name)
    # The kernel logs each run it has to cancel when the grace is over.
    await kernel.shutdown(wait=True, grace=grace)
