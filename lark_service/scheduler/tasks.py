"""The seed's four task functions, for manual runs and for ``scheduler_service``::

    from lark_service.scheduler.tasks import sync_user_info_task

    sync_user_info_task()                 # in plain code: runs now, answers the report
    asyncio.run(sync_user_info_task())    # the same, async style
    await sync_user_info_task()           # inside a running loop

Each builds what it needs from the configuration (the file named by
``LARK_SCHEDULER_CONFIG`` and the ``LARK_SCHEDULER_*`` environment), like
``lark-scheduler run-task``. They are :mod:`actors.tasks`'s coroutine functions, made
callable from synchronous code (:func:`lark_service.scheduler._dual.dual`).
"""

from __future__ import annotations

from actors import tasks as _tasks
from lark_service.scheduler._dual import dual

__all__ = (
    "check_token_expiry_task",
    "cleanup_expired_tokens_task",
    "health_check_task",
    "sync_user_info_task",
)

sync_user_info_task = dual(_tasks.sync_user_info_task)
check_token_expiry_task = dual(_tasks.check_token_expiry_task)
cleanup_expired_tokens_task = dual(_tasks.cleanup_expired_tokens_task)
health_check_task = dual(_tasks.health_check_task)
