"""The Lark service: the store, per-app Lark clients and the built-in jobs' actors, wired.

::

    async with LarkService(config) as service:
        kernel = make_kernel(config, failure_store=service.store)
        service.register_jobs(kernel)
        async with kernel:
            ...

The four jobs (``sync_user_info``, ``check_token_expiry``, ``cleanup_expired_tokens``,
``health_check``) are thin methods that ask their actor and return its report, so the
kernel measures and records each run; an actor error raises in the job and the run is
recorded failed. A sync in which some app failed, and an expiry check in which some notice
failed to send, raise :class:`JobIncompleteError` after doing all they could.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from aioprometheus.collectors import Registry

from actors import builtin
from actors.config import Config
from actors.console_pages import add_service_pages
from actors.jobs import (
    CheckExpiry,
    CheckHealth,
    CleanupActor,
    CleanupReport,
    CleanupTokens,
    ExpiryReport,
    GetReadiness,
    HealthActor,
    HealthMetrics,
    HealthReport,
    LarkClientFactory,
    LarkClientPool,
    NotifierActor,
    NotifierClient,
    SendNotice,
    SyncMetrics,
    SyncReport,
    SyncUsers,
    TokenExpiryActor,
    TokenExpiryMonitor,
    UserSyncActor,
)
from actors.jobs.clients import default_client_factory
from actors.jobs.token_states import TokenReport, token_report
from actors.oauth import AuthorizationFlow, TokenBroker, add_oauth_routes
from actors.runtime import ActorRef, ActorRestarted, Supervisor
from actors.store import Store, make_store, secure_data_dir
from kernel import JobDefaults, Kernel, __version__
from kernel.clock import Clock, RealClock
from kernel.coordination import current_run
from kernel.errors import InvalidJobError
from kernel.failures import FailureStore
from kernel.job import Job
from kernel.openapi import api_contract
from kernel.state import ScheduleStore
from kernel.triggers import resolve_timezone

__all__ = (
    "JOB_IDS", "JobIncompleteError", "LarkService", "make_kernel", "make_schedule_store",
)

logger = logging.getLogger("actors.service")

JOB_IDS = ("sync_user_info", "check_token_expiry", "cleanup_expired_tokens", "health_check")


class JobIncompleteError(RuntimeError):
    """A job did what it could but part of it failed; ``report`` says what."""

    def __init__(self, message: str, report: SyncReport | ExpiryReport) -> None:
        super().__init__(message)
        self.report = report


def schedule_state_place(config: Config) -> str:
    """Where one process keeps its schedule state (see :func:`make_schedule_store`):
    ``"memory"`` for ``sqlite:///:memory:``, ``"sqlite"`` or ``"postgresql"``."""
    url = config.store.resolved_url
    if not url.startswith("sqlite:///"):
        return "postgresql"
    return "memory" if url == "sqlite:///:memory:" else "sqlite"


def make_schedule_store(config: Config, *, clock: Clock | None = None) -> ScheduleStore | None:
    """Where one process keeps its schedule state: in the store's database. On SQLite, the
    same file (``kernel.state.sqlite``); on PostgreSQL, the cluster tables of
    ``cluster.schema`` (``kernel.distributed.state_pg``); None (memory) for
    ``sqlite:///:memory:``."""
    place = schedule_state_place(config)
    if place == "memory":
        return None
    url = config.store.resolved_url
    if place == "sqlite":
        from kernel.state.sqlite import SqliteScheduleStore

        return SqliteScheduleStore(url[len("sqlite:///"):])
    from kernel.distributed._pg import Database
    from kernel.distributed.state_pg import PostgresScheduleStore

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return PostgresScheduleStore(Database(dsn, schema=config.cluster.schema, pool_size=2,
                                          clock=clock))


def make_kernel(
    config: Config,
    *,
    clock: Clock | None = None,
    failure_store: FailureStore | None = None,
    schedule_store: ScheduleStore | None = None,
) -> Kernel:
    """A kernel with the configured timezone and job defaults (and ``schedule_store``:
    :func:`make_schedule_store` for a service; None keeps it in memory)."""
    scheduler = config.scheduler
    return Kernel(
        timezone=scheduler.timezone,
        job_defaults=JobDefaults(
            coalesce=scheduler.coalesce,
            max_instances=scheduler.max_instances,
            misfire_grace_time=scheduler.misfire_grace_time,
        ),
        clock=clock,
        failure_store=failure_store,
        failure_outbox_size=config.failures.outbox_size,
        failure_flush_timeout=config.failures.flush_timeout,
        schedule_store=schedule_store,
    )


class LarkService:
    """Opens the store (migrating it), runs the actors under a supervisor; see the module
    docstring. ``lark_client_factory`` builds each app's client (tests point it at a fake).
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        registry: Registry | None = None,
        lark_client_factory: LarkClientFactory | None = None,
        on_restart: Callable[[ActorRestarted], None] | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock if clock is not None else RealClock()
        self.registry = registry if registry is not None else Registry()
        self._factory = lark_client_factory or default_client_factory
        self._on_restart = on_restart
        self._stack: contextlib.AsyncExitStack | None = None
        self._store: Store | None = None
        self._refs: dict[str, ActorRef[Any]] = {}
        self.restarts: list[ActorRestarted] = []
        self.clients: LarkClientPool | None = None
        self.monitor: TokenExpiryMonitor | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def _make_store(self) -> Store:
        store = self.config.store
        secure_data_dir(store.data_dir)
        return make_store(store.resolved_url, clock=self.clock.now, **store.store_options())

    async def __aenter__(self) -> Self:
        config = self.config
        async with contextlib.AsyncExitStack() as stack:
            store = self._make_store()
            await store.open()
            stack.push_async_callback(store.close)
            self._store = store
            self.clients = LarkClientPool(store, config.lark, self.clock, self._factory)
            stack.push_async_callback(self.clients.aclose)
            supervisor = Supervisor(
                clock=self.clock,
                registry=self.registry,
                stop_grace=config.scheduler.shutdown_grace,
                on_restart=self._restarted,
            )
            await stack.enter_async_context(supervisor)
            self._spawn(supervisor, store, self.clients)
            self._stack = stack.pop_all()
        logger.info("Lark service started (store %s)", type(store).__name__)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        builtin.unbind(self)
        if stack is not None:
            await stack.aclose()
        self._refs.clear()

    def _restarted(self, event: ActorRestarted) -> None:
        self.restarts.append(event)
        if self._on_restart is not None:
            self._on_restart(event)

    def _spawn(self, supervisor: Supervisor, store: Store, clients: LarkClientPool) -> None:
        config, clock = self.config, self.clock
        zone = resolve_timezone(config.scheduler.timezone)
        notifier: ActorRef[SendNotice] = supervisor.spawn(
            "notifier", lambda: NotifierActor(clients, config.expiry.notice_format)
        )
        monitor = TokenExpiryMonitor(
            NotifierClient(notifier),
            config.expiry.warning_days,
            config.expiry.critical_days,
            store=store,
            clock=clock,
            timezone=zone,
            registry=self.registry,
            reauthorize_url=config.oauth.authorize_url,
        )
        self.monitor = monitor
        metrics = HealthMetrics(self.registry)
        sync_metrics = SyncMetrics(self.registry)
        self._refs = {
            "notifier": notifier,
            "user_sync": supervisor.spawn(
                "user_sync", lambda: UserSyncActor(store, clients, clock, sync_metrics)
            ),
            "token_expiry": supervisor.spawn("token_expiry", lambda: TokenExpiryActor(monitor)),
            "cleanup": supervisor.spawn(
                "cleanup",
                lambda: CleanupActor(
                    store,
                    clock,
                    retention_days=config.cleanup.retention_days,
                    failure_retention_days=config.failures.retention_days,
                    batch_size=config.cleanup.batch_size,
                    timezone=zone,
                ),
            ),
            "health": supervisor.spawn(
                "health",
                lambda: HealthActor(
                    store,
                    clients,
                    clock,
                    metrics,
                    config=config.health,
                    rabbitmq_url=config.rabbitmq.url,
                ),
            ),
        }

    @property
    def store(self) -> Store:
        """The open store; only while the service runs."""
        if self._store is None or self._stack is None:
            raise RuntimeError("LarkService is not running; use `async with LarkService(...)`")
        return self._store

    def schedule_store(self) -> ScheduleStore | None:
        """Where ``serve`` keeps the kernel's schedule state: in the store's database
        (:func:`make_schedule_store`). Only while running (the database's directory exists)."""
        if self._stack is None:
            raise RuntimeError("LarkService is not running; use `async with LarkService(...)`")
        return make_schedule_store(self.config, clock=self.clock)

    def actor(self, name: str) -> ActorRef[Any]:
        """The actor ``notifier``, ``user_sync``, ``token_expiry``, ``cleanup`` or ``health``."""
        try:
            return self._refs[name]
        except KeyError:
            raise LookupError(
                f"no actor {name!r}; the service runs {', '.join(sorted(self._refs)) or 'none'}"
            ) from None

    # -- the jobs -----------------------------------------------------------------------

    async def sync_user_info(self) -> SyncReport:
        """Sync every active app's users; :class:`JobIncompleteError` when an app failed.

        An app synced ``partial`` (a department skipped) does not fail the run: its result,
        a warning line and ``lark_sync_departments_failed_total`` say so.
        """
        report: SyncReport = await self.actor("user_sync").ask(SyncUsers())
        if report.failed:
            failed = "; ".join(f"{app.app_id} ({app.error})" for app in report.failed)
            raise JobIncompleteError(
                f"sync_user_info: {len(report.failed)} of {len(report.apps)} apps failed and "
                f"were left unchanged: {failed}",
                report,
            )
        return report

    async def check_token_expiry(self) -> ExpiryReport:
        """Send the due expiry notices; :class:`JobIncompleteError` when one failed to send
        (it is retried on the next run)."""
        run = current_run.get()  # set in a claimed run (cluster mode): its notices' uuid
        message = CheckExpiry() if run is None else \
            CheckExpiry(job_id=run.job_id, scheduled_at=run.scheduled_at)
        report: ExpiryReport = await self.actor("token_expiry").ask(message)
        failed = report.count("failed")
        if failed:
            raise JobIncompleteError(
                f"check_token_expiry: {failed} of {len(report.notices)} due notices failed to "
                "send; they will be retried on the next run",
                report,
            )
        return report

    async def cleanup_expired_tokens(self) -> CleanupReport:
        """Delete what is past its retention."""
        report: CleanupReport = await self.actor("cleanup").ask(CleanupTokens())
        return report

    async def health_check(self) -> HealthReport:
        """Probe every component now; record and export the results."""
        report: HealthReport = await self.actor("health").ask(CheckHealth())
        return report

    async def readiness(self) -> HealthReport:
        """The latest health report (what ``/readyz`` answers)."""
        report: HealthReport = await self.actor("health").ask(GetReadiness())
        return report

    def add_routes(self, app: web.Application, *, admin_token: str | None) -> None:
        """Mount users' authorization (``/oauth/...``) and the token API (``/tokens...``) on
        ``app`` before it starts (see :mod:`actors.oauth.routes`; both are in its
        ``/openapi.json``), and add the tokens and health pages to its console
        (:mod:`actors.console_pages`). Only while running."""
        config, store, monitor = self.config, self.store, self.monitor
        clients = self.clients
        assert clients is not None, "set while running"
        assert monitor is not None, "set while running"
        zone = resolve_timezone(config.scheduler.timezone)
        link_for = config.oauth.authorize_url
        flow = AuthorizationFlow(
            store,
            clients,
            self.clock,
            config.oauth,
            lark_base_url=config.lark.base_url,
            timezone=zone,
            on_change=monitor.publish_states,
        )
        broker = TokenBroker(
            store, clients, self.clock, authorize_url=link_for,
            on_change=monitor.publish_states,
        )

        async def report(app_id: str | None, expiring_days: float | None) -> TokenReport:
            return await token_report(
                store,
                now=self.clock.now(),
                warning_days=config.expiry.warning_days,
                critical_days=config.expiry.critical_days,
                app_id=app_id,
                expiring_days=expiring_days,
                link_for=link_for,
            )

        add_oauth_routes(app, flow=flow, broker=broker, report=report, admin_token=admin_token)
        add_service_pages(
            app, report=report, readiness=self.readiness,
            warning_days=config.expiry.warning_days,
        )
        contract = api_contract(app)
        contract.title, contract.version = "lark-scheduler admin API", __version__
        base = config.oauth.redirect_base_url
        if base is None:
            logger.info(
                "OAuth: not configured (set oauth.redirect_base_url to let users authorise "
                "the apps; expiry notices carry no link until then)"
            )
        else:
            logger.info(
                "OAuth: users authorise an app at %s/oauth/<app_id>/authorize; register %s as "
                "a redirect URL of every app in the Lark developer console",
                base.rstrip("/"),
                config.oauth.redirect_uri,
            )

    def register_jobs(self, kernel: Kernel) -> list[Job]:
        """Add the enabled built-in jobs to ``kernel`` with their configured schedules.

        A kernel that stores its jobs (:class:`~kernel.distributed.persistent.
        PersistentKernel`) gets them as import references (:mod:`actors.builtin`, bound to
        this service) on ``cluster.executor``; any other kernel gets the bound methods.
        A schedule or option the kernel refuses raises :class:`InvalidJobError` naming the
        job (``jobs.<id>: ...``).
        """
        from kernel.distributed.persistent import PersistentKernel

        stored = isinstance(kernel, PersistentKernel)
        if stored:
            builtin.bind(self)
        jobs: list[Job] = []
        for job_id in JOB_IDS:
            job_config = getattr(self.config.jobs, job_id)
            if not job_config.enabled:
                logger.info("job %s is disabled in the configuration", job_id)
                continue
            func = getattr(builtin if stored else self, job_id)
            options: dict[str, Any] = {"job_id": job_id, "name": job_id}
            if stored:
                options["executor"] = self.config.cluster.executor
            if job_config.timeout is not None:
                options["timeout"] = job_config.timeout
            try:
                if job_config.cron is not None:
                    jobs.append(kernel.add_cron_job(func, job_config.cron, **options))
                else:
                    jobs.append(
                        kernel.add_interval_job(func, **job_config.interval_kwargs(), **options)
                    )
            except InvalidJobError as exc:
                raise InvalidJobError(f"jobs.{job_id}: {exc}") from None
        return jobs
