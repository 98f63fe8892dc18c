"""Scaling past one process: PostgreSQL (shared jobs, exactly-once claims) and RabbitMQ
(workers). Import the submodules you need; this package imports no driver by itself.

* :mod:`kernel.distributed.postgres` - the claims coordinator, the failure store and
  the job store (asyncpg).
* :mod:`kernel.distributed.persistent` - :class:`PersistentKernel`, a kernel whose jobs
  live in PostgreSQL and whose changes reach every replica through LISTEN/NOTIFY.
* :mod:`kernel.distributed.state_pg` - :class:`PostgresScheduleStore`, the schedule state
  of one kernel (``Kernel(schedule_store=...)``) in the same tables (claims).
* :mod:`kernel.distributed.rabbitmq` - the ``rabbitmq`` executor;
  :mod:`kernel.distributed.worker` - :func:`run_worker` and its command line.

How to scale out
----------------
Run the same code in N replicas against one database; each declares its jobs before
``start()`` (declarations that match the stored job keep its state)::

    from kernel.distributed.persistent import PersistentKernel

    kernel = PersistentKernel("postgresql://scheduler@db/scheduler", lease=15)
    kernel.add_interval_job(sync_user_info, hours=6, job_id="sync_user_info")
    async with kernel:
        ...

Every scheduled time of every job then runs on exactly one replica; a replica that
dies is noticed when its lease expires (``lease`` seconds), its running claims are
recorded as interrupted failures, and the others carry on. Job functions must be
importable (``package.module:function``) and their arguments JSON.

To spread heavy runs over machines, add RabbitMQ and workers::

    from kernel.distributed.postgres import Database
    from kernel.distributed.rabbitmq import RabbitExecutor

    db = Database("postgresql://scheduler@db/scheduler")
    rabbit = RabbitExecutor("amqp://guest:guest@mq/", db=db)
    kernel = PersistentKernel(db=db, executors={"rabbitmq": rabbit})
    kernel.add_interval_job(build_report, hours=1, job_id="report", executor="rabbitmq")

and on each worker machine (same code deployed, same schema)::

    python -m kernel.distributed.worker --amqp amqp://guest:guest@mq/ \\
        --dsn postgresql://scheduler@db/scheduler --prefetch 4

``PersistentKernel.health()`` reports PostgreSQL, the change listener and each executor.
"""

from __future__ import annotations

__all__ = ()
