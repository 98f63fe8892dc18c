"""A small actor runtime: actors with bounded mailboxes, tell and ask, and a supervisor.

An :class:`Actor` owns its state; nothing else touches it. Others talk to it only through
its :class:`ActorRef`, with messages that are frozen :class:`msgspec.Struct` values:

* ``await ref.tell(msg)`` — fire and forget. When the mailbox is full, ``tell`` *waits* for
  room (backpressure on the sender); ``ref.tell_nowait(msg)`` raises
  :class:`MailboxFullError` instead.
* ``await ref.ask(msg, timeout=...)`` — send and wait for the reply (``receive``'s return
  value, or the exception it raised). The timeout covers waiting for room and for the
  reply, on the supervisor's clock; when it passes, :class:`AskTimeoutError` is raised.
  An asker that gives up, by its timeout or by being cancelled (a job's timeout, a
  shutdown), abandons the message: still queued, it is skipped; already in hand, its
  handler is cancelled. No work goes on that nobody waits for.

Concurrency contract: one task per actor handles its messages one at a time, in mailbox
order, so ``receive`` never runs concurrently with itself.

Failure: an exception escaping ``on_start`` or ``receive`` crashes the actor, unless
:meth:`Actor.crashes_on` says the error leaves the actor intact. The asker of the failing
message gets that exception either way; on a crash the :class:`Supervisor` calls ``on_failure``,
reports the crash (a log line, an :class:`ActorRestarted` callback and the counter
``actor_restarts_total{actor}``), waits an exponential backoff (capped) and starts a *fresh*
instance from the actor's factory. The mailbox survives the restart: queued messages wait.

Stop: the mailbox closes (new tells and asks raise :class:`ActorStoppedError`), the message
in hand may finish within the grace period (else it is cancelled and its asker gets
:class:`ActorStoppedError`), every message still queued is drained and each pending ask
fails with :class:`ActorStoppedError`, and ``on_stop`` runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Self

import anyio
from aioprometheus.collectors import Counter, Registry
from anyio.abc import TaskGroup

from actors._actor import (
    Actor,
    ActorError,
    ActorRestarted,
    ActorStoppedError,
    AskTimeoutError,
    M,
    MailboxFullError,
    check_message,
)
from actors._cell import Cell
from actors._mailbox import Envelope, Reply
from kernel.clock import Clock, RealClock

__all__ = (
    "Actor",
    "ActorError",
    "ActorRef",
    "ActorRestarted",
    "ActorStoppedError",
    "AskTimeoutError",
    "MailboxFullError",
    "Supervisor",
)

logger = logging.getLogger("actors.runtime")


class ActorRef(Generic[M]):
    """The address of a running actor: the only way to reach it."""

    def __init__(self, cell: Cell[M]) -> None:
        self._cell = cell

    def __repr__(self) -> str:
        return f"ActorRef({self.name!r})"

    @property
    def name(self) -> str:
        return self._cell.name

    @property
    def running(self) -> bool:
        """``True`` until the actor was asked to stop."""
        return not self._cell.stopping

    @property
    def queued(self) -> int:
        """Messages waiting in the mailbox (not counting the one in hand)."""
        return self._cell.send.statistics().current_buffer_used

    async def tell(self, message: M) -> None:
        """Queue ``message``; waits while the mailbox is full."""
        check_message(self.name, message)
        await self._cell.put(Envelope(message, None))

    def tell_nowait(self, message: M) -> None:
        """Queue ``message`` or raise :class:`MailboxFullError` at once."""
        check_message(self.name, message)
        self._cell.put_nowait(Envelope(message, None))

    # The timeout runs on the supervisor's clock (virtual in tests), so anyio.fail_after,
    # which reads the event loop's clock, would not do.
    async def ask(self, message: M, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Send ``message`` and answer the actor's reply; raises what ``receive`` raised,
        :class:`AskTimeoutError` after ``timeout`` seconds, :class:`ActorStoppedError`."""
        check_message(self.name, message)
        reply = Reply()
        clock = self._cell.clock
        if timeout is None:
            try:
                await self._cell.put(Envelope(message, reply))
                return await reply.wait()
            finally:
                # Cancelled from outside (a job's timeout, a shutdown): the work is dropped.
                reply.abandon()
        with anyio.CancelScope() as scope:
            timer = clock.call_at(clock.monotonic() + timeout, scope.cancel)
            try:
                await self._cell.put(Envelope(message, reply))
                return await reply.wait()
            finally:
                timer.cancel()
                reply.abandon()
        raise AskTimeoutError(
            f"actor {self.name!r} did not answer {type(message).__name__} within {timeout:g}s"
        )

    async def stop(self, grace: float | None = None) -> None:
        """Stop this actor (see the module docstring) and wait until it has stopped."""
        await self._cell.stop(grace)


class Supervisor:
    """Runs actors in its task group and restarts the ones that crash.

    Use as ``async with Supervisor(...) as sup:``; leaving the block stops every actor
    (newest first) with ``stop_grace`` seconds for the message in hand. Restart delays are
    ``backoff_base * 2 ** (attempt - 1)`` seconds, at most ``backoff_max``.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        registry: Registry | None = None,
        backoff_base: float = 0.1,
        backoff_max: float = 30.0,
        stop_grace: float | None = 10.0,
        on_restart: Callable[[ActorRestarted], None] | None = None,
    ) -> None:
        if not 0 < backoff_base <= backoff_max:
            raise ValueError(
                f"backoff_base {backoff_base!r} and backoff_max {backoff_max!r} must satisfy "
                "0 < backoff_base <= backoff_max"
            )
        self.clock: Clock = clock if clock is not None else RealClock()
        self.registry = registry if registry is not None else Registry()
        self.restarts = Counter(
            "actor_restarts_total",
            "Restarts of crashed actors by their supervisor.",
            registry=self.registry,
        )
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._stop_grace = stop_grace
        self._on_restart = on_restart
        self._cells: dict[str, Cell[Any]] = {}
        self._task_group: TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        try:
            with anyio.CancelScope(shield=True):
                await self.stop()
        finally:
            task_group, self._task_group = self._task_group, None
        return await task_group.__aexit__(exc_type, exc, tb)

    def spawn(
        self, name: str, factory: Callable[[], Actor[M]], *, mailbox_size: int = 16
    ) -> ActorRef[M]:
        """Start an actor made by ``factory`` (called again on each restart)."""
        if self._task_group is None:
            raise ActorStoppedError(
                f"cannot spawn actor {name!r}: the supervisor is not running; "
                "use it as `async with Supervisor() as sup:`"
            )
        if name in self._cells:
            raise ValueError(f"an actor named {name!r} is already running; pick another name")
        if mailbox_size < 1:
            raise ValueError(f"mailbox_size {mailbox_size} must be >= 1")
        cell = Cell(name, factory, mailbox_size, self)
        self._cells[name] = cell
        self._task_group.start_soon(cell.run, name=f"actor:{name}")
        return ActorRef(cell)

    def backoff(self, attempt: int) -> float:
        """The delay before restart number ``attempt`` (1-based) of one crash streak."""
        return float(min(self._backoff_base * 2 ** (attempt - 1), self._backoff_max))

    def report(self, event: ActorRestarted, error: BaseException) -> None:
        """Log, count and call back for one restart."""
        logger.warning(
            "actor %r crashed (%s); restarting in %.3gs (attempt %d)",
            event.actor,
            event.error,
            event.delay,
            event.attempt,
            exc_info=error,
        )
        self.restarts.inc({"actor": event.actor})
        if self._on_restart is not None:
            try:
                self._on_restart(event)
            except Exception:
                logger.exception("on_restart callback failed for actor %r", event.actor)

    async def stop(self) -> None:
        """Stop every actor, newest first."""
        for cell in reversed(list(self._cells.values())):
            await cell.stop(self._stop_grace)
