"""The service as one of several replicas (``[cluster] enabled = true``).

``serve`` builds its kernel here instead of :func:`actors.service.make_kernel`: a
:class:`~kernel.distributed.persistent.PersistentKernel` whose jobs live in
``cluster.database_url`` under ``cluster.schema``, with the
:class:`~kernel.distributed.postgres.PostgresCoordinator` claiming each scheduled time for
exactly one replica, and the RabbitMQ executor when ``cluster.executor = "rabbitmq"``.
Everything else (the Lark service, metrics, the admin API) is the same as in one process.
"""

from __future__ import annotations

import logging

from actors._config_load import redact_url
from actors.config import Config
from actors.service import JOB_IDS, schedule_state_place
from kernel import JobDefaults, Kernel
from kernel.api_models import ReadyReport
from kernel.clock import Clock
from kernel.distributed.persistent import Executor, PersistentKernel
from kernel.distributed.postgres import Database
from kernel.failures import FailureStore

__all__ = ("describe_mode", "make_cluster_kernel", "merge_ready", "prune_disabled_jobs")

log = logging.getLogger("scheduler.service")


def describe_mode(config: Config) -> str:
    """The log line that says how this process schedules."""
    cluster = config.cluster
    if not cluster.enabled:
        state = {
            "memory": "schedule state in memory, lost at exit",
            "sqlite": "schedule state kept in the store's SQLite file across restarts",
            "postgresql": f"schedule state kept in PostgreSQL, schema {cluster.schema}, "
                          "across restarts",
        }[schedule_state_place(config)]
        return f"Mode: single process ({state}; set cluster.enabled = true for replicas)"
    where = (
        f"on RabbitMQ workers (queue {cluster.queue})"
        if cluster.executor == "rabbitmq"
        else "in the replica that claims them"
    )
    url = redact_url(cluster.database_url or "")
    return (
        f"Mode: cluster replica {cluster.resolved_replica_id} (jobs and claims in PostgreSQL "
        f"{url}, schema {cluster.schema}; lease {cluster.lease_seconds:g} s; built-in jobs "
        f"run {where})"
    )


def make_cluster_kernel(
    config: Config, *, failure_store: FailureStore, clock: Clock | None = None
) -> PersistentKernel:
    """A replica's kernel for ``config`` (``cluster.enabled`` must be true)."""
    cluster, scheduler = config.cluster, config.scheduler
    if not cluster.enabled or not cluster.database_url:
        raise ValueError("make_cluster_kernel needs cluster.enabled = true with a database")
    db = Database(cluster.database_url, schema=cluster.schema)
    executors: dict[str, Executor] = {}
    if cluster.executor == "rabbitmq":
        from kernel.distributed.rabbitmq import RabbitExecutor

        if not config.rabbitmq.url:
            raise ValueError("cluster.executor = 'rabbitmq' needs rabbitmq.url")
        executors["rabbitmq"] = RabbitExecutor(config.rabbitmq.url, queue=cluster.queue, db=db)
    return PersistentKernel(
        db=db,
        replica_id=cluster.resolved_replica_id,
        lease=cluster.lease_seconds,
        executors=executors,
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
    )


def prune_disabled_jobs(kernel: Kernel, config: Config) -> list[str]:
    """Remove the built-in jobs this configuration disables from the stored jobs (an
    earlier start, or another replica, may have stored them); answer their ids."""
    removed = []
    present = {job.id for job in kernel.get_jobs()}
    for job_id in JOB_IDS:
        if getattr(config.jobs, job_id).enabled or job_id not in present:
            continue
        kernel.remove_job(job_id)
        log.info("job %s is disabled in the configuration: removed from the stored jobs",
                 job_id)
        removed.append(job_id)
    return removed


def merge_ready(*reports: ReadyReport) -> ReadyReport:
    """One readiness report holding every check; ready when all are."""
    checks = tuple(check for report in reports for check in report.checks)
    return ReadyReport(ready=all(report.ready for report in reports), checks=checks)
