"""The job actor: one per job, owning the job's record and deciding each of its fires.

Messages (:mod:`.messages`), handled strictly in the order they arrive, one at a time:

* :class:`Fire` - the dispatcher's timer reached the job's deadline: every scheduled time
  now due is decided (:mod:`kernel.schedule.policy`), and the next one is scheduled;
* :class:`Change` - the job was added, replaced, paused, resumed, rescheduled, removed;
* :class:`RunFinished` - one of its runs ended (the running count drops);
* :class:`Retry` - a failed attempt's retry is due (the runner asked the policy when);
* :class:`CatchUp` - scheduled times that fell while no process ran (``kernel.distributed``).

**Parked.** With a gate (replicas), a job another live replica fires is not kept in the
timer wheel: its first fire after it moved away parks it (no time is decided, no timer
is set), and the ``unparked`` change (the live replicas changed) schedules it again from
now; the times in between are the new owner's, or, if it is this replica again, caught
up from the stored last decided time (``kernel.distributed``).

**Virtual.** An idle job is only this object: its definition, its fire times
(:class:`~kernel.schedule.fire_times.FireTimes`, the base class), its wheel entry and
its running count. A message to an idle actor is handled at once by whoever delivers it
(the dispatcher's tick, the facade's change) without any task or mailbox; when the
handling must wait for something (a :class:`~.gate.Gate`: claims across replicas), the
actor activates: a mailbox takes the messages that arrive meanwhile and a task works
through them in order, and the actor goes back to idle once the mailbox is empty.
Its runs are tasks of the runner, which tell the actor when they end.

Concurrency contract: messages are delivered on the loop thread. The definition
fields (trigger, options, ``paused``, ``removed``) are written by the public API under
the registry lock (possibly from another thread) before the matching Change is
delivered; everything else belongs to the actor.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Literal

from ..clock import Clock
from ..errors import JobBusyError
from ..job import JobOptions
from ..observe.events import JobAdded, JobModified, JobRemoved, RunMissed, RunSkipped
from ..retry import RetryPolicy
from ..schedule.fire_times import NO_INTERVAL, FireTimes
from ..schedule.policy import decide, decide_one
from ..schedule.triggers import IntervalTrigger, Trigger
from .dispatcher import EPSILON, Dispatcher
from .event_bus import EventBus
from .gate import Gate, Lease, Plan, Verdict
from .messages import CatchUp, Change, ChangeKind, Fire, Message, Retry, RunFinished
from .registry import Registry
from .runner import Runner
from .wheel import WheelEntry

__all__ = ("JobActor", "JobServices")

log = logging.getLogger("scheduler")

class JobServices:
    """What the job actors of one kernel share (built by the facade)."""

    __slots__ = ("bus", "clock", "dispatcher", "gate", "loop", "registry", "rng", "runner",
                 "tasks")

    def __init__(
        self, clock: Clock, dispatcher: Dispatcher, runner: Runner, bus: EventBus,
        rng: random.Random, tasks: set[asyncio.Task[Any]], registry: Registry[JobActor],
        gate: Gate | None,
    ) -> None:
        self.clock = clock
        self.dispatcher = dispatcher
        self.runner = runner
        self.bus = bus
        self.rng = rng
        self.tasks = tasks
        self.registry = registry  # a job whose trigger has no more times leaves it
        self.gate = gate
        self.loop: asyncio.AbstractEventLoop | None = None


class JobActor(FireTimes):
    """One job: its definition, its fire times and its runs (see the module doc)."""

    __slots__ = ("args", "ctx", "entry", "func", "id", "is_coro", "kwargs", "mailbox", "name",
                 "opts", "parked", "paused", "removed", "retry", "running")

    def __init__(
        self, ctx: JobServices, job_id: str, name: str, func: Callable[..., Any],
        args: tuple[Any, ...], kwargs: Mapping[str, Any] | None, is_coro: bool,
        trigger: Trigger, opts: JobOptions, retry: RetryPolicy | None,
    ) -> None:
        # FireTimes.__init__ inlined: one actor per add, and the call is a tenth of it.
        self.deadline = math.inf
        self.sched = None
        self.k = 0
        self.anchor_mono = 0.0
        self.anchor_wall = None
        self.interval = 0.0
        self.interval_td = NO_INTERVAL
        self.trigger = trigger
        self.wall_based = not isinstance(trigger, IntervalTrigger)
        self.ctx = ctx
        self.id = job_id
        self.name = name
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.is_coro = is_coro
        self.opts = opts
        self.retry = retry
        self.paused = False
        self.removed = False
        self.parked = False  # out of the wheel: another replica fires it (module doc)
        self.running = 0
        self.entry: WheelEntry[Any] | None = None
        self.mailbox: deque[Message] | None = None  # only while active

    def __repr__(self) -> str:
        return f"JobActor({self.id!r})"

    # -- messages (loop thread) --------------------------------------------------------
    def fire(self, now: float) -> None:
        """Fire: the job's deadline is due (monotonic ``now``)."""
        if self.mailbox is not None:
            self.mailbox.append(Fire(now))
            return
        pending = self._on_fire(now)
        if pending is not None:
            self._activate(pending)

    def change(self, kind: ChangeKind) -> None:
        if self.mailbox is not None:
            self.mailbox.append(Change(kind))
        else:
            self._on_change(kind)  # changes never wait: nothing to activate for

    def added(self) -> None:
        """``change("added")`` for a job just registered on the loop thread (its actor is
        idle: nothing can be in a mailbox yet); the same effects as :meth:`_on_change`."""
        if self.removed:
            return
        self._rearm()
        bus = self.ctx.bus
        if bus.observed:
            bus.emit(JobAdded(job_id=self.id, scheduled_at=self.sched))

    def run_finished(self) -> None:
        if self.mailbox is not None:
            self.mailbox.append(RunFinished())
        else:
            self.running -= 1

    def retry_due(self, scheduled_at: datetime | None, attempt: int, retry_of: str) -> None:
        self._deliver(Retry(scheduled_at, attempt, retry_of))

    def catch_up(self, times: tuple[datetime, ...]) -> None:
        self._deliver(CatchUp(times))

    def retire(self) -> None:
        """Leave for good (restored state says a one-shot job's time was decided)."""
        self._leave()

    def run_now(self, *, attempt: int = 1, retry_of: str | None = None) -> str:
        """Start a manual run at once (not a scheduled time, so outside the message
        order); ``JobBusyError`` when ``max_instances`` runs are going."""
        opts = self.opts
        if decide_one(0.0, grace=None, max_instances=opts.max_instances,
                      running=self.running) != "run":
            raise JobBusyError(self.id, opts.max_instances)
        self.running += 1
        return self.ctx.runner.start(self, None, 0.0, manual=True, attempt=attempt,
                                     retry_of=retry_of)

    # -- the mailbox -------------------------------------------------------------------
    def _deliver(self, message: Message) -> None:
        if self.mailbox is not None:
            self.mailbox.append(message)
            return
        pending = self._handle(message)
        if pending is not None:
            self._activate(pending)

    def _activate(self, pending: Awaitable[None]) -> None:
        loop = self.ctx.loop
        assert loop is not None
        self.mailbox = deque()
        task = loop.create_task(self._work(pending))
        self.ctx.tasks.add(task)
        task.add_done_callback(self.ctx.tasks.discard)

    async def _work(self, pending: Awaitable[None] | None) -> None:
        mailbox = self.mailbox
        assert mailbox is not None
        try:
            while True:
                if pending is not None:
                    try:
                        await pending
                    except Exception:
                        log.exception("job %s: deciding its scheduled times failed", self.id)
                if not mailbox:
                    return
                pending = self._handle(mailbox.popleft())
        finally:
            self.mailbox = None
            while mailbox:  # stopped (cancelled at shutdown): the rest needs no waiting
                message = mailbox.popleft()
                if isinstance(message, RunFinished):
                    self.running -= 1

    def _handle(self, message: Message) -> Awaitable[None] | None:
        if isinstance(message, Fire):
            return self._on_fire(message.now)
        if isinstance(message, Change):
            self._on_change(message.kind)
        elif isinstance(message, RunFinished):
            self.running -= 1
        elif isinstance(message, Retry):
            return self._on_retry(message)
        else:
            return self._on_catch_up(message.times)
        return None

    # -- Fire ----------------------------------------------------------------------------
    def _on_fire(self, now: float) -> Awaitable[None] | None:
        if self.removed or self.paused:
            return None
        ctx = self.ctx
        gate = ctx.gate
        if gate is not None and not gate.owns(self.id):
            self.parked = True  # out of the wheel until the replicas change
            return None
        if self.wall_based and self.sched is not None:
            # Against the wall clock itself, not the offset recorded at the last step: a
            # drift or a step below the step tolerance can wake the kernel a little early.
            # (With a gate's lead, fired up to lead early on purpose: the gate waits.)
            early = self.sched.timestamp() - ctx.dispatcher.wall_now().timestamp()
            if early > ctx.dispatcher.lead + EPSILON:
                # Woken before the wall clock reached the fire time: wait the rest.
                self.deadline = now + early
                ctx.dispatcher.schedule(self)
                return None
        offset = ctx.dispatcher.offset
        rng = ctx.rng
        sched = self.sched
        assert sched is not None
        late = now - self.deadline
        self.advance(offset, rng)
        pending: Awaitable[None] | None = None
        if self.deadline > now + EPSILON and ctx.gate is None:
            # The common case: one scheduled time is due, and nothing stands between the
            # decision and the run.
            opts = self.opts
            action = decide_one(late, grace=opts.misfire_grace_time,
                                max_instances=opts.max_instances, running=self.running)
            if action == "run":
                self.running += 1
                ctx.runner.start_due(self, sched, late, ctx.dispatcher.wall_now())
            elif action == "missed":
                self._report_missed(sched, late)
            else:
                self._report_skipped(sched, action)
        else:
            # The fired time (with a gate's lead, possibly not due yet: the gate starts its
            # run at the time) and every later one already past (a blocked loop, a step).
            due = [(sched, late)]
            while self.sched is not None and self.deadline <= now + EPSILON:
                due.append((self.sched, now - self.deadline))
                self.advance(offset, rng)
            pending = self._decide(due, now)
        if self.sched is None:
            self._leave()
        elif self.entry is None and not self.removed:
            ctx.dispatcher.schedule(self)
        return pending

    def _on_catch_up(self, times: tuple[datetime, ...]) -> Awaitable[None] | None:
        if self.removed or self.paused or not times:
            return None
        clock = self.ctx.clock
        wall = clock.now()
        return self._decide([(t, (wall - t).total_seconds()) for t in times],
                            clock.monotonic())

    def _decide(self, due: list[tuple[datetime, float]], now: float) -> Awaitable[None] | None:
        """Decide several due times (oldest first) and apply or gate the decisions."""
        opts = self.opts
        gate = self.ctx.gate
        limit = None if gate is not None and gate.max_instances_across_replicas \
            else opts.max_instances
        actions = decide([late for _, late in due], coalesce=opts.coalesce,
                         grace=opts.misfire_grace_time, max_instances=limit,
                         running=self.running)
        plans = [Plan(action, when, late, now)
                 for (when, late), action in zip(due, actions, strict=True)]
        if gate is not None:
            return gate.admit(self, plans)
        for plan in plans:
            self.apply_verdict(plan, plan.action, plan.lateness, None)
        return None

    def apply_verdict(
        self, plan: Plan, verdict: Verdict, lateness: float, lease: Lease | None
    ) -> None:
        """Carry out one decision (see :class:`.gate.GatedJob`)."""
        if verdict == "run":
            self.running += 1
            self.ctx.runner.start(self, plan.scheduled_at, lateness, lease=lease)
        elif verdict == "missed":
            self._report_missed(plan.scheduled_at, lateness)
        elif verdict == "elsewhere":
            log.debug("Scheduled time %s of job %s was decided by another replica",
                      plan.scheduled_at, self.id)
        else:
            self._report_skipped(plan.scheduled_at, verdict)

    def _report_missed(self, sched: datetime, late: float) -> None:
        log.warning(
            "Run of job %s scheduled at %s was missed by %.3f s (misfire_grace_time=%s)",
            self.id, sched, late, self.opts.misfire_grace_time,
        )
        self.ctx.runner.journal.decided(self.id, sched, "missed")
        bus = self.ctx.bus
        if bus.observed:
            bus.emit(RunMissed(job_id=self.id, scheduled_at=sched, lateness=late))

    def _report_skipped(self, sched: datetime | None, reason: Literal[
            "coalesced", "max_instances"]) -> None:
        if reason == "max_instances":
            log.warning(
                "Run of job %s scheduled at %s skipped: maximum number of running instances "
                "reached (%d)", self.id, sched, self.opts.max_instances,
            )
        elif log.isEnabledFor(logging.INFO):
            log.info("Run of job %s scheduled at %s skipped: coalesced", self.id, sched)
        if sched is not None:
            self.ctx.runner.journal.decided(self.id, sched, reason)
        bus = self.ctx.bus
        if bus.observed:
            bus.emit(RunSkipped(job_id=self.id, scheduled_at=sched, reason=reason))

    # -- Retry ---------------------------------------------------------------------------
    def _on_retry(self, message: Retry) -> Awaitable[None] | None:
        ctx = self.ctx
        if self.removed or not ctx.runner.accepting:
            return None
        gate = ctx.gate
        if gate is not None and message.scheduled_at is not None:
            # Across replicas a retry takes a claim of its own (kernel/engine/claims.py).
            return gate.retry(self, message.scheduled_at, message.attempt, message.retry_of)
        action = decide_one(0.0, grace=None, max_instances=self.opts.max_instances,
                            running=self.running)
        if action != "run":
            self._report_skipped(message.scheduled_at, "max_instances")
            return None
        self.running += 1
        ctx.runner.start(self, message.scheduled_at, 0.0, attempt=message.attempt,
                         retry_of=message.retry_of)
        return None

    def start_retry(self, scheduled_at: datetime, attempt: int, retry_of: str,
                    lease: Lease) -> None:
        """Start a retry whose claim a gate won."""
        if self.removed:
            return  # its claim's lease expires and a reaper records it
        self.running += 1
        self.ctx.runner.start(self, scheduled_at, 0.0, attempt=attempt, retry_of=retry_of,
                              lease=lease)

    def report_retry_skipped(self, scheduled_at: datetime) -> None:
        self._report_skipped(scheduled_at, "max_instances")

    # -- Change --------------------------------------------------------------------------
    def _on_change(self, kind: ChangeKind) -> None:
        ctx = self.ctx
        dispatcher = ctx.dispatcher
        if kind == "removed" or kind == "superseded":
            dispatcher.unschedule(self)
            if kind == "removed" and ctx.bus.observed:
                ctx.bus.emit(JobRemoved(job_id=self.id, scheduled_at=None))
            return
        if kind == "paused":
            dispatcher.unschedule(self)
            self._modified(kind)
            return
        if self.removed:
            return
        if kind == "unparked":
            if not self.parked or self.paused or self.entry is not None:
                return
            clock = ctx.clock
            mono = clock.monotonic()
            self.resume(clock.now(), mono, dispatcher.current_offset(mono), ctx.rng)
            self._rearm()
            return
        if kind == "resumed" or kind == "rescheduled":
            dispatcher.unschedule(self)
            clock = ctx.clock
            mono = clock.monotonic()
            point = self.resume if kind == "resumed" else self.start
            point(clock.now(), mono, dispatcher.current_offset(mono), ctx.rng)
        self._rearm()
        if kind == "added" or kind == "started":
            # "started" too: nothing was sent when it was added to the stopped kernel
            # (listeners run on the loop); a job whose trigger had no time left is gone.
            if ctx.bus.observed and not (kind == "started" and self.removed):
                ctx.bus.emit(JobAdded(job_id=self.id, scheduled_at=self.sched))
        else:
            self._modified(kind)

    def _modified(self, change: Literal["paused", "resumed", "rescheduled", "replaced"]) -> None:
        bus = self.ctx.bus
        if bus.observed:
            bus.emit(JobModified(job_id=self.id, change=change,
                                 scheduled_at=None if self.paused else self.sched))

    def _rearm(self) -> None:
        """Into the wheel at the next fire time; leave when there is none."""
        if self.paused or self.removed or self.entry is not None:
            return
        self.parked = False
        if self.sched is None:
            self._leave()
        else:
            self.ctx.dispatcher.schedule(self)

    def _leave(self) -> None:
        """The trigger has no more fire times: the job leaves the registry."""
        if self.removed:
            return
        self.removed = True
        ctx = self.ctx
        ctx.registry.discard(self.id, self)
        if ctx.bus.observed:
            ctx.bus.emit(JobRemoved(job_id=self.id, scheduled_at=None))
