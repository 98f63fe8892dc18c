"""Scaling past one process: PostgreSQL (shared jobs, exactly-once claims) and RabbitMQ
(workers). Import the submodules you need; this package imports no driver by itself.

* :mod:`kernel.distributed.postgres` - the claims coordinator, the failure store, the
  job store (asyncpg).
* :mod:`kernel.distributed.persistent` - :class:`PersistentKernel`, a kernel whose jobs
  live in PostgreSQL and whose changes reach every replica through LISTEN/NOTIFY.
* :mod:`kernel.distributed.rabbitmq` - the ``rabbitmq`` executor and :func:`run_worker`.
"""

from __future__ import annotations

__all__ = ()
