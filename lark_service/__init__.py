"""The seed's import paths, as a thin facade over :mod:`kernel` and :mod:`actors`.

Code written against the original Lark Service (``from lark_service.scheduler.scheduler
import scheduler_service``, ``from lark_service.scheduler.tasks import sync_user_info_task``)
runs unchanged; new code should use :mod:`kernel` (embedding) or the ``lark-scheduler``
command (the service) directly.
"""
