"""The health actor: probes the database, RabbitMQ and the Lark API, records and exports.

* ``database`` — a real query (:meth:`Store.ping`).
* ``rabbitmq`` — an aio-pika connection opened and closed, when a URL is configured; else
  ``not_configured``.
* ``lark`` — a fresh tenant-token request (:meth:`LarkClient.ping`) for the configured app
  (``health.lark_app_id``, else the first active app); ``not_configured`` without an app.

Results are recorded with :meth:`Store.record_health` (a database that is down cannot
record; the report says so) and exported as ``lark_health_status{component}``: 1 ok, 0 fail
(a component that is not configured gets no series). :class:`GetReadiness` (``/readyz``)
answers the newest results, this actor's or ones another process recorded (``run-task
health_check``), and checks again at once when Lark was not configured but an app has been
registered since (``apps add``), instead of waiting for the next scheduled check.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import anyio
from aioprometheus.collectors import Gauge, Registry

from actors.config import HealthConfig
from actors.jobs.clients import LarkClientPool
from actors.jobs.messages import CheckHealth, GetReadiness, HealthReport
from actors.runtime import Actor
from actors.store import HealthResult, HealthStatus, Store, StoreError
from kernel.clock import Clock

__all__ = ("COMPONENTS", "HealthActor", "HealthMetrics", "rabbitmq_probe")

logger = logging.getLogger("actors.jobs.health")

COMPONENTS = ("database", "rabbitmq", "lark")


class HealthMetrics:
    """The ``lark_health_status{component}`` gauge (kept across actor restarts)."""

    def __init__(self, registry: Registry) -> None:
        self.status = Gauge(
            "lark_health_status",
            "1 when the component's last health check passed, 0 when it failed.",
            registry=registry,
        )


def rabbitmq_probe(url: str) -> Callable[[], Awaitable[None]]:
    """Open and close one aio-pika connection to ``url``."""

    async def probe() -> None:
        import aio_pika

        connection = await aio_pika.connect(url)
        await connection.close()

    return probe


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class HealthActor(Actor[CheckHealth | GetReadiness]):
    """Answers :class:`CheckHealth` and :class:`GetReadiness` with a :class:`HealthReport`."""

    def __init__(
        self,
        store: Store,
        clients: LarkClientPool,
        clock: Clock,
        metrics: HealthMetrics,
        *,
        config: HealthConfig,
        rabbitmq_url: str | None,
    ) -> None:
        self._store = store
        self._clients = clients
        self._clock = clock
        self._metrics = metrics
        self._config = config
        self._rabbitmq_url = rabbitmq_url
        self._secrets = [urlsplit(rabbitmq_url).password or ""] if rabbitmq_url else []
        self._last: HealthReport | None = None

    async def receive(self, message: CheckHealth | GetReadiness) -> Any:
        if isinstance(message, GetReadiness) and self._last is not None:
            return await self._readiness(self._last)
        return await self._check()

    async def _readiness(self, last: HealthReport) -> HealthReport:
        """The newest report: this actor's last one, or newer results another process
        recorded (``run-task health_check``, another replica); checked again now when it
        says Lark is not configured but an app has been registered since."""
        report = last
        try:
            stored = await self._store.latest_health()
        except StoreError:
            stored = []
        if {r.component for r in stored} >= set(COMPONENTS) and min(
            r.checked_at for r in stored
        ) > last.checked_at:
            by_name = {r.component: r for r in stored}
            newest = tuple(by_name[name] for name in COMPONENTS)  # the order a check has
            report = _report(max(r.checked_at for r in newest), newest, recorded=True)
        lark = next(r for r in report.results if r.component == "lark")
        if lark.status == "not_configured" and await self._lark_app() is not None:
            return await self._check()
        return report

    async def _check(self) -> HealthReport:
        checked_at = self._clock.now()
        results = (
            await self._probe("database", self._store.ping, checked_at),
            await self._rabbitmq(checked_at),
            await self._lark(checked_at),
        )
        recorded = True
        try:
            await self._store.record_health(results)
        except StoreError as error:
            recorded = False
            logger.error("health results could not be recorded: %s", error)
        for result in results:
            labels = {"component": result.component}
            if result.status != "not_configured":
                self._metrics.status.set(labels, 1 if result.status == "ok" else 0)
        report = _report(checked_at, results, recorded=recorded)
        self._last = report
        return report

    async def _probe(
        self, component: str, probe: Callable[[], Awaitable[object]], checked_at: Any
    ) -> HealthResult:
        started = self._clock.monotonic()
        status: HealthStatus = "ok"
        detail = ""
        try:
            with anyio.fail_after(self._config.timeout):
                await probe()
        except TimeoutError:
            status, detail = "fail", f"no answer within {self._config.timeout:g}s"
        except Exception as error:
            status = "fail"
            detail = _scrub(f"{type(error).__name__}: {error}", self._secrets)[:500]
        latency = self._clock.monotonic() - started
        if status == "fail":
            logger.warning("health: %s failed: %s", component, detail)
        return HealthResult(
            checked_at=checked_at,
            component=component,
            status=status,
            latency=latency,
            detail=detail,
        )

    async def _rabbitmq(self, checked_at: Any) -> HealthResult:
        if not self._rabbitmq_url:
            return HealthResult(
                checked_at=checked_at, component="rabbitmq", status="not_configured"
            )
        return await self._probe("rabbitmq", rabbitmq_probe(self._rabbitmq_url), checked_at)

    async def _lark_app(self) -> str | None:
        """The app whose credentials probe Lark: configured, else the first active one."""
        if self._config.lark_app_id is not None:
            return self._config.lark_app_id
        try:
            apps = await self._store.list_apps(active_only=True)
        except StoreError:
            return None
        return apps[0].app_id if apps else None

    async def _lark(self, checked_at: Any) -> HealthResult:
        app_id = await self._lark_app()
        if app_id is None:
            return HealthResult(
                checked_at=checked_at,
                component="lark",
                status="not_configured",
                detail="no active app to probe with",
            )
        chosen = app_id

        async def probe() -> None:
            client = await self._clients.get(chosen)
            await client.ping()

        return await self._probe("lark", probe, checked_at)


def _report(
    checked_at: datetime, results: tuple[HealthResult, ...], *, recorded: bool
) -> HealthReport:
    by_name = {result.component: result.status for result in results}
    ready = by_name.get("database") == "ok" and by_name.get("rabbitmq") != "fail"
    return HealthReport(checked_at=checked_at, results=results, ready=ready, recorded=recorded)
