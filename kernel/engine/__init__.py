"""The engine: the parts a :class:`kernel.Kernel` is composed of (loop thread only).

* :mod:`.wheel` - the hierarchical timer wheel (pure data structure).
* :mod:`.dispatcher` - one clock timer for the wheel's next deadline and the wall-clock
  watch; hands each due job a Fire.
* :mod:`.job_actor` - one virtual actor per job: owns its record, handles Fire, Change,
  RunFinished, Retry and CatchUp (:mod:`.messages`) in order through
  :mod:`kernel.schedule.policy`.
* :mod:`.gate` - the seam between a job actor's decisions and their effects (claims
  across replicas today; a schedule-state journal can join it).
* :mod:`.claims` - that seam for a :class:`kernel.coordination.Coordinator`.
* :mod:`.runner` - starts runs, executes them (:mod:`.invoke`), records outcomes and
  schedules retries: one path for every run.
* :mod:`.event_bus` - listeners and subscriber streams of :mod:`kernel.events`.
* :mod:`.registry` - the job ids, shared with other threads under a lock;
  :mod:`.definitions` - what ``add_job`` accepts; :mod:`.callables` - add-time caches.
* :mod:`.port` - what plug-ins (:mod:`kernel.distributed`) reach: :class:`kernel.port.KernelPort`.
* :mod:`.kernel` - :class:`~kernel.Kernel`, the facade: lifecycle and the public API.
"""

from __future__ import annotations

__all__ = ()
