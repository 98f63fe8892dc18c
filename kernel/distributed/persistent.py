"""A kernel whose jobs live in PostgreSQL and which runs as one of several replicas.

``PersistentKernel`` is a :class:`kernel.Kernel` with the same public API plus
``executor=`` on ``add_*`` and ``await flush()``. What it adds:

* **Write-through.** ``add_*``, ``remove_job``, ``pause_job``, ``resume_job`` and
  ``reschedule_job`` change the local registry at once (as in one process) and queue the
  row change (``_writes.py``); one writer task applies the queue in order, retrying while
  the database is down, and each write sends a NOTIFY. ``await flush()`` waits until the
  queue is written.
* **Propagation.** A dedicated LISTEN connection receives every other replica's change
  (typically within tens of milliseconds), fetches that row and applies it locally
  without writing back. After a (re)connect it resynchronises from the table, since
  notifications sent while it was away are lost. Nothing polls the table.
* **Declarations.** Jobs added before ``start()`` are the code's declarations: at start
  each is compared with its stored row; an unchanged one keeps the stored state (the
  interval grid's anchor, paused, last fire time), a changed one overwrites the row.
  Jobs other replicas added at run time are loaded from the table.
* **One grid for all replicas.** An interval trigger without ``start_date`` gets one
  (now + interval) when stored, so all replicas compute the same scheduled times and
  claims (:mod:`kernel.coordination`) can be keyed by them. Interval ``jitter`` would
  give each replica a different time and is refused.
* **Downtime.** At start, the scheduled times between a job's stored ``last_fire`` (the
  latest time any replica decided) and now are handed to the job's actor through the
  kernel's port and decided like a late fire in one process (``_catchup.py``).
* **Unimportable callables.** A stored job whose import reference no longer resolves is
  logged, recorded as a failure (``exc_type="ImportError"``) and left out; the other
  jobs run. It is listed in :attr:`PersistentKernel.unresolved` and in ``health()``, and
  ``remove_job`` removes it from the store.

* **One replica fires each job.** Only the job's owner among the live replicas
  (rendezvous hashing over the ``replicas`` table's heartbeats,
  :func:`~kernel.distributed.postgres.owner_of`) claims its times; on the others the job
  is parked out of the timer wheel at its first fire (``kernel/engine/job_actor.py``).
  When the live set changes (a replica joins, leaves or stops heartbeating for two
  renewal periods) parked jobs are timed again from now, and the jobs a replica gains
  are caught up from their stored last decided time. The claims still make each time
  run once while replicas disagree on the set.
* **Start-up in bulk.** The declarations not stored yet are inserted in one transaction,
  and the catch-up's claims and marks go in one statement per turn of the loop.

Known limits: manual runs (``run_job``) are not claimed (they run where asked); a
remote change replaces the local job, so a run in progress there is no longer
counted locally (the claims still hold ``max_instances`` across replicas); arguments
come back as JSON types (a tuple becomes a list, a datetime a string).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from .. import Kernel
from ..admin.api_models import ReadyReport
from ..errors import InvalidJobError, JobLookupError
from ..job import Job
from ..schedule.triggers import IntervalTrigger, Trigger, trigger_from_spec
from ._catchup import catch_up
from ._health import health, readiness, report_unresolvable
from ._listener import Listener
from ._pg import Database
from ._pgstore import ChangeNote, PostgresJobStore, StoredJob, stored_from_job
from ._refs import anchored, check_json, import_ref, storable_ref, unanchored
from ._writes import WriteThrough
from .postgres import PostgresCoordinator, PostgresFailureStore, owner_of

__all__ = ("PersistentKernel",)

log = logging.getLogger("scheduler.store")
# (job id, import reference, function) -> what the kernel calls instead of the function.
Executor = Callable[[str, str, Callable[..., Any]], Callable[..., Any]]


class PersistentKernel(Kernel):
    """A kernel replica on a shared PostgreSQL schema (see the module doc).

    ``dsn`` or ``db`` names the database; ``lease`` is the claim lease in seconds;
    ``executors`` maps executor names other than ``"local"`` to a factory that wraps a
    job's function (``kernel.distributed.rabbitmq.RabbitExecutor`` is one). Other
    keyword arguments go to :class:`kernel.Kernel`.

    It is a :class:`kernel.Kernel` configured with this package's plug-ins (the claims
    coordinator, the failure store) and uses only the kernel's public API and its port:
    its own overrides write changes through; a change that came from another replica is
    applied with the base class's method, which does not write it back.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        db: Database | None = None,
        schema: str = "lark_scheduler",
        replica_id: str | None = None,
        lease: float = 15.0,
        executors: dict[str, Executor] | None = None,
        **kernel_options: Any,
    ) -> None:
        if db is None:
            if dsn is None:
                raise ValueError("pass dsn='postgresql://...' or db=Database(...)")
            db = Database(dsn, schema=schema, clock=kernel_options.get("clock"))
        self.db = db
        self.store = PostgresJobStore(db)
        coordinator = PostgresCoordinator(db, replica_id=replica_id, lease=lease)
        self.coordinator = coordinator
        self.replica_id = coordinator.replica_id
        kernel_options.setdefault("failure_store", PostgresFailureStore(db))
        super().__init__(coordinator=coordinator, **kernel_options)
        self.executors: dict[str, Executor] = dict(executors or {})
        self.unresolved: dict[str, str] = {}
        self._declared: dict[str, tuple[StoredJob, bool]] = {}
        self._executor_of: dict[str, str] = {}
        self._writes = WriteThrough(self.clock)
        self._versions = self._writes.versions
        self._notes: asyncio.Queue[str] | None = None
        self._bg: list[asyncio.Task[None]] = []
        self.listener = Listener(db, self._on_note, self._resync, name=self.replica_id)
        coordinator.on_rebalance = self._rebalanced  # the kernel's, and catch-up

    # -- the public API, written through ----------------------------------------------
    def add_job(self, func: Callable[..., Any], trigger: Trigger, *,
                executor: str = "local", **options: Any) -> Job:
        if executor != "local" and executor not in self.executors:
            raise InvalidJobError(
                f"executor={executor!r} is not configured; use 'local' or one of "
                f"{sorted(self.executors)} (PersistentKernel(executors=...))"
            )
        ref = storable_ref(func)
        check_json("args", list(options.get("args", ())))
        check_json("kwargs", dict(options.get("kwargs") or {}))
        if isinstance(trigger, IntervalTrigger) and trigger.jitter:
            raise InvalidJobError(
                f"jitter={trigger.jitter:g} cannot be used with replicas: each would compute "
                "a different scheduled time; drop jitter or use a plain Kernel"
            )
        fixed = anchored(trigger, self.clock.now())
        if options.get("job_id") is None:
            options["job_id"] = uuid.uuid4().hex
        runner = func if executor == "local" else \
            self.executors[executor](options["job_id"], ref, func)
        job = super().add_job(runner, fixed, **options)
        self._executor_of[job.id] = executor
        self.unresolved.pop(job.id, None)  # a new definition replaces an unloadable one
        stored = stored_from_job(job, ref, executor, options.get("retry"))
        if self.running:
            self._write(job.id, lambda: self.store.upsert(stored, self.replica_id))
        else:
            self._declared[job.id] = (stored, fixed is not trigger)
        return job

    def remove_job(self, job_id: str) -> None:
        if job_id in self.unresolved and self.running:
            # Stored but not loadable (its function is gone): removing it is the fix.
            del self.unresolved[job_id]
            self._write(job_id, lambda: self.store.delete(job_id, self.replica_id))
            return
        super().remove_job(job_id)
        self._executor_of.pop(job_id, None)
        if self.running:
            self._write(job_id, lambda: self.store.delete(job_id, self.replica_id))
        else:
            self._declared.pop(job_id, None)

    def pause_job(self, job_id: str) -> Job:
        return self._paused_change(super().pause_job(job_id))

    def resume_job(self, job_id: str) -> Job:
        return self._paused_change(super().resume_job(job_id))

    def reschedule_job(self, job_id: str, trigger: Trigger) -> Job:
        if isinstance(trigger, IntervalTrigger) and trigger.jitter:
            raise InvalidJobError(f"jitter={trigger.jitter:g} cannot be used with replicas")
        job = super().reschedule_job(job_id, anchored(trigger, self.clock.now()))
        spec = job.trigger.to_spec()
        if self.running:
            self._write(job_id, lambda: self.store.set_trigger(job_id, spec, self.replica_id))
        elif job_id in self._declared:
            decl, _ = self._declared[job_id]
            self._declared[job_id] = (msgspec.structs.replace(decl, trigger=spec), False)
        return job

    def _paused_change(self, job: Job) -> Job:
        if self.running:
            self._write(job.id, lambda: self.store.set_paused(job.id, job.paused,
                                                              self.replica_id))
        elif job.id in self._declared:
            decl, anchor = self._declared[job.id]
            self._declared[job.id] = (msgspec.structs.replace(decl, paused=job.paused), anchor)
        return job

    def health(self) -> dict[str, Any]:
        """The outside world as this replica sees it (see :func:`._health.health`)."""
        return health(self)

    async def readiness(self) -> ReadyReport:
        """A readiness report for the admin API: ``create_admin_app(kernel,
        readiness=kernel.readiness)`` answers 503 while PostgreSQL or an executor's
        broker is unreachable."""
        return readiness(self)

    async def flush(self) -> None:
        """Wait until every change made here so far is written (and notified)."""
        await self._writes.flush()

    def _write(self, job_id: str, op: Callable[[], Awaitable[int]]) -> None:
        self._writes.write(job_id, op)

    # -- reading and applying ------------------------------------------------------------
    def _current(self, job_id: str) -> Job | None:
        try:
            return self.get_job(job_id)
        except JobLookupError:
            return None

    def _on_note(self, payload: str) -> None:
        if self._notes is not None:
            self._notes.put_nowait(payload)

    async def _applier(self) -> None:
        assert self._notes is not None
        while True:
            payload = await self._notes.get()
            try:
                note = msgspec.json.decode(payload, type=ChangeNote)
                if note.origin == self.replica_id:
                    continue
                if note.op == "delete":
                    self._apply_delete(note.id, note.version)
                else:
                    row = await self.store.get(note.id)
                    if row is not None:
                        await self._apply(row)
            except Exception:
                log.exception("could not apply the job change %s", payload[:200])

    async def _resync(self) -> None:
        rows = {row.id: row for row in await self.store.load()}
        for row in rows.values():
            await self._apply(row)
        for job in self.get_jobs():
            if job.id not in rows and not self._writes.pending(job.id):
                self._apply_delete(job.id, None)

    def _apply_delete(self, job_id: str, version: int | None) -> None:
        if version is not None and version <= self._versions.get(job_id, 0):
            return
        self._versions.pop(job_id, None)
        self._executor_of.pop(job_id, None)
        self.unresolved.pop(job_id, None)
        if self._current(job_id) is not None:
            Kernel.remove_job(self, job_id)

    async def _apply(self, row: StoredJob) -> None:
        """Make the local registry match a stored row that changed elsewhere."""
        if row.version <= self._versions.get(row.id, 0) or self._writes.pending(row.id):
            return
        self._versions[row.id] = row.version
        job = self._current(row.id)
        if job is not None and self._executor_of.get(row.id) == row.executor:
            current = stored_from_job(job, row.func_ref, row.executor, job.retry)
            if current.definition() == row.definition():
                if current.paused != row.paused:
                    (Kernel.pause_job if row.paused else Kernel.resume_job)(self, row.id)
                return
            if msgspec.structs.replace(current, trigger=row.trigger).definition() == \
                    row.definition():
                Kernel.reschedule_job(self, row.id, trigger_from_spec(row.trigger))
                if current.paused != row.paused:
                    (Kernel.pause_job if row.paused else Kernel.resume_job)(self, row.id)
                return
        await self._install_row(row, replace=True)

    async def _install_row(self, row: StoredJob, *, replace: bool) -> bool:
        """Register a stored job locally; False (reported) if its callable is gone."""
        try:
            func = import_ref(row.func_ref)
            trigger = trigger_from_spec(row.trigger)
            runner = func if row.executor == "local" else \
                self.executors[row.executor](row.id, row.func_ref, func)
        except Exception as exc:
            await report_unresolvable(self, row, exc)
            if self._current(row.id) is not None:
                Kernel.remove_job(self, row.id)
            return False
        self.unresolved.pop(row.id, None)
        Kernel.add_job(
            self, runner, trigger, job_id=row.id, name=row.name, args=row.args,
            kwargs=row.kwargs, coalesce=row.coalesce, max_instances=row.max_instances,
            misfire_grace_time=row.misfire_grace_time, timeout=row.timeout, retry=row.retry,
            replace_existing=replace,
        )
        self._executor_of[row.id] = row.executor
        if row.paused:
            Kernel.pause_job(self, row.id)
        return True

    # -- partitioning -----------------------------------------------------------------------
    def _rebalanced(self, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        """The live replicas changed: the jobs this replica now fires and did not before
        catch up from their stored last decided time (the times a replica that died or
        left did not decide, or decided nothing for, are decided here like after
        downtime)."""
        if not self.running:
            return
        self._replicas_changed()  # parked jobs are timed again (they re-park if not ours)
        me = self.replica_id
        gained = [job.id for job in self.get_jobs()
                  if owner_of(new, job.id) == me and owner_of(old, job.id) != me]
        if gained:
            log.info("Replica %s now fires %d more job(s)", me, len(gained))
            task = asyncio.get_running_loop().create_task(self._catch_up_gained(set(gained)))
            self._bg.append(task)

    async def _catch_up_gained(self, gained: set[str]) -> None:
        try:
            rows = [row for row in await self.store.load() if row.id in gained]
        except Exception as exc:
            log.error("could not load the jobs this replica took over (%s: %s); their "
                      "missed times are decided at the next change", type(exc).__name__, exc)
            return
        now = self.clock.now()
        for row in rows:
            current = self._current(row.id)
            if current is not None and self.coordinator.owns(row.id):
                catch_up(self.port, current, row, now)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self.running:
            return
        await self.db.open()
        stored = {row.id: row for row in await self.store.load()}
        # The declarations not stored yet, in one transaction (a first deployment of
        # thousands of jobs is not thousands of round trips).
        inserted = await self.store.insert_many(
            [decl for job_id, (decl, _) in self._declared.items() if job_id not in stored],
            self.replica_id)
        for job_id, (decl, was_anchored) in self._declared.items():
            old = stored.get(job_id)
            if old is None:
                if job_id in inserted:
                    continue
                # Another replica declared it a moment ago: compare with its row.
                old = await self.store.get(job_id)
            if old is not None and _same(old, decl, was_anchored):
                continue
            keep_paused = old.paused if old is not None else decl.paused
            await self.store.upsert(msgspec.structs.replace(decl, paused=keep_paused),
                                    self.replica_id)
        self._declared.clear()
        rows = await self.store.load()
        for job in self.get_jobs():
            Kernel.remove_job(self, job.id)
        installed: list[StoredJob] = []
        for row in rows:
            trigger = row.trigger
            if trigger.get("kind") == "date" and row.last_fire is not None:
                # A one-shot job whose time was decided already: it is done.
                await self.store.delete(row.id, self.replica_id)
                continue
            self._versions[row.id] = row.version
            if await self._install_row(row, replace=False):
                installed.append(row)
        self._writes.open()
        self._notes = asyncio.Queue()
        await super().start()
        loop = asyncio.get_running_loop()
        self._bg = [loop.create_task(self._writes.run()), loop.create_task(self._applier()),
                    loop.create_task(self.listener.run())]
        for executor in self.executors.values():
            connect = getattr(executor, "connect", None)
            if connect is not None:
                # In the background: a broker that is down must not stop the scheduler.
                self._bg.append(loop.create_task(connect()))
        now = self.clock.now()
        for row in installed:
            current = self._current(row.id)
            if current is not None:
                catch_up(self.port, current, row, now)

    async def shutdown(self, wait: bool = True, grace: float | None = None) -> None:
        if not self.running:
            return
        await self._writes.drain(10.0)
        for task in self._bg:
            task.cancel()
        await asyncio.gather(*self._bg, return_exceptions=True)
        self._bg = []
        await super().shutdown(wait=wait, grace=grace)
        self._writes.close()
        for executor in self.executors.values():
            close = getattr(executor, "close", None)
            if close is not None:
                await close()
        await self.db.close()


def _same(old: StoredJob, new: StoredJob, new_was_anchored: bool) -> bool:
    if not new_was_anchored:
        return old.definition() == new.definition()
    a = msgspec.structs.replace(old, trigger=unanchored(old.trigger))
    b = msgspec.structs.replace(new, trigger=unanchored(new.trigger))
    return a.definition() == b.definition()

