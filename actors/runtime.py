"""A small actor runtime: actors with bounded mailboxes, tell and ask, and a supervisor.

An :class:`Actor` owns its state; nothing else touches it. Others talk to it only through
its :class:`ActorRef`, with messages that are frozen :class:`msgspec.Struct` values:

* ``await ref.tell(msg)`` — fire and forget. When the mailbox is full, ``tell`` *waits* for
  room (backpressure on the sender); ``ref.tell_nowait(msg)`` raises
  :class:`MailboxFullError` instead.
* ``await ref.ask(msg, timeout=...)`` — send and wait for the reply (``receive``'s return
  value, or the exception it raised). The timeout covers waiting for room and for the
  reply, on the supervisor's clock; when it passes, :class:`AskTimeoutError` is raised and
  the message, if still queued, is skipped.

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
from typing import Any, Generic, Self, TypeVar

import anyio
import msgspec
from aioprometheus.collectors import Counter, Registry
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

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

M = TypeVar("M", bound=msgspec.Struct)


class ActorError(Exception):
    """Base class of the runtime's own errors."""


class ActorStoppedError(ActorError, RuntimeError):
    """The actor stopped (or was never running) before it could answer."""


class AskTimeoutError(ActorError, TimeoutError):
    """No reply within the ask's timeout."""


class MailboxFullError(ActorError, RuntimeError):
    """``tell_nowait`` found the mailbox full."""


class ActorRestarted(msgspec.Struct, frozen=True, kw_only=True):
    """Reported each time the supervisor restarts a crashed actor.

    ``attempt`` counts consecutive crashes (reset once a message is handled); ``delay`` is
    the backoff in seconds before the new instance starts; ``error`` is the crash, as text.
    """

    actor: str
    attempt: int
    delay: float
    error: str


class Actor(Generic[M]):
    """Subclass and implement :meth:`receive`; the hooks are optional."""

    async def on_start(self) -> None:
        """Runs in the actor's task before the first message (and after each restart)."""

    async def on_stop(self) -> None:
        """Runs once after the mailbox was drained on stop."""

    async def on_failure(self, error: BaseException) -> None:
        """Runs when this instance crashed, before the supervisor replaces it."""

    def crashes_on(self, error: Exception) -> bool:
        """Whether ``error`` escaping :meth:`receive` crashes this actor (the default).

        Answer ``False`` for errors that leave the actor's state intact (a remote service
        refusing one request): the asker still gets the error, and the actor carries on.
        """
        return True

    async def receive(self, message: M) -> Any:
        """Handle one message; the return value is the reply to an ask."""
        raise NotImplementedError(f"{type(self).__name__}.receive is not implemented")


def _check_message(actor: str, message: object) -> None:
    if not isinstance(message, msgspec.Struct) or not type(message).__struct_config__.frozen:
        raise TypeError(
            f"message to actor {actor!r} must be a frozen msgspec.Struct, not "
            f"{type(message).__name__}; declare it as class X(msgspec.Struct, frozen=True)"
        )


class ActorRef(Generic[M]):
    """The address of a running actor: the only way to reach it."""

    def __init__(self, cell: _Cell[M]) -> None:
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
        _check_message(self.name, message)
        await self._cell.put(Envelope(message, None))

    def tell_nowait(self, message: M) -> None:
        """Queue ``message`` or raise :class:`MailboxFullError` at once."""
        _check_message(self.name, message)
        self._cell.put_nowait(Envelope(message, None))

    # The timeout runs on the supervisor's clock (virtual in tests), so anyio.fail_after,
    # which reads the event loop's clock, would not do.
    async def ask(self, message: M, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Send ``message`` and answer the actor's reply; raises what ``receive`` raised,
        :class:`AskTimeoutError` after ``timeout`` seconds, :class:`ActorStoppedError`."""
        _check_message(self.name, message)
        reply = Reply()
        clock = self._cell.clock
        if timeout is None:
            await self._cell.put(Envelope(message, reply))
            return await reply.wait()
        with anyio.CancelScope() as scope:
            timer = clock.call_at(clock.monotonic() + timeout, scope.cancel)
            try:
                await self._cell.put(Envelope(message, reply))
                return await reply.wait()
            finally:
                timer.cancel()
                reply.abandoned = not reply.done
        raise AskTimeoutError(
            f"actor {self.name!r} did not answer {type(message).__name__} within {timeout:g}s"
        )

    async def stop(self, grace: float | None = None) -> None:
        """Stop this actor (see the module docstring) and wait until it has stopped."""
        await self._cell.stop(grace)


class _Cell(Generic[M]):
    """A running actor: its mailbox, its current instance and its supervision loop."""

    def __init__(
        self, name: str, factory: Callable[[], Actor[M]], capacity: int, supervisor: Supervisor
    ) -> None:
        self.name = name
        self.factory = factory
        self.supervisor = supervisor
        self.clock = supervisor.clock
        self.send: MemoryObjectSendStream[Envelope]
        self.receive: MemoryObjectReceiveStream[Envelope]
        self.send, self.receive = anyio.create_memory_object_stream[Envelope](capacity)
        self.stopping = False
        self.crashes = 0
        self._handler_scope: anyio.CancelScope | None = None
        self._backoff_scope: anyio.CancelScope | None = None
        self._done = anyio.Event()

    def _stopped_error(self, message: object, when: str) -> ActorStoppedError:
        consequence = (
            "the message was not processed" if when == "before" else "its work was cancelled"
        )
        return ActorStoppedError(
            f"actor {self.name!r} stopped {when} handling {type(message).__name__}; {consequence}"
        )

    async def put(self, envelope: Envelope) -> None:
        try:
            await self.send.send(envelope)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise self._stopped_error(envelope.message, "before") from None

    def put_nowait(self, envelope: Envelope) -> None:
        try:
            self.send.send_nowait(envelope)
        except anyio.WouldBlock:
            raise MailboxFullError(
                f"mailbox of actor {self.name!r} is full "
                f"({self.send.statistics().max_buffer_size} messages); "
                "use await tell() to wait for room"
            ) from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise self._stopped_error(envelope.message, "before") from None

    async def run(self) -> None:
        actor: Actor[M] | None = None
        try:
            while not self.stopping:
                actor = self.factory()
                try:
                    await actor.on_start()
                    await self._serve(actor)
                except Exception as error:
                    await self._crashed(actor, error)
                    continue
                break
            self._drain()
            if actor is not None:
                try:
                    await actor.on_stop()
                except Exception:
                    logger.exception("actor %r: on_stop failed", self.name)
        finally:
            self.receive.close()
            self._done.set()

    async def _serve(self, actor: Actor[M]) -> None:
        async for envelope in self.receive:
            reply = envelope.reply
            if self.stopping:
                self._reject(envelope)
                continue
            if reply is not None and reply.abandoned:
                continue  # the asker gave up: nobody would see the answer
            with anyio.CancelScope() as scope:
                self._handler_scope = scope
                try:
                    result = await actor.receive(envelope.message)
                except Exception as error:
                    if reply is not None:
                        reply.set_error(error)
                    if actor.crashes_on(error):
                        raise
                    if reply is None:
                        logger.error(
                            "actor %r: %s failed: %r",
                            self.name,
                            type(envelope.message).__name__,
                            error,
                        )
                    continue
                finally:
                    self._handler_scope = None
            if scope.cancelled_caught:
                if reply is not None:
                    reply.set_error(self._stopped_error(envelope.message, "while"))
                continue
            self.crashes = 0
            if reply is not None:
                reply.set_result(result)

    async def _crashed(self, actor: Actor[M], error: Exception) -> None:
        try:
            await actor.on_failure(error)
        except Exception:
            logger.exception("actor %r: on_failure failed", self.name)
        if self.stopping:
            logger.error("actor %r crashed while stopping: %r", self.name, error)
            return
        self.crashes += 1
        delay = self.supervisor.backoff(self.crashes)
        self.supervisor.report(
            ActorRestarted(actor=self.name, attempt=self.crashes, delay=delay, error=repr(error)),
            error,
        )
        with anyio.CancelScope() as scope:
            self._backoff_scope = scope
            await self.clock.sleep(delay)
        self._backoff_scope = None

    def _reject(self, envelope: Envelope) -> None:
        if envelope.reply is not None:
            envelope.reply.set_error(self._stopped_error(envelope.message, "before"))

    def _drain(self) -> None:
        while True:
            try:
                self._reject(self.receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return

    async def stop(self, grace: float | None) -> None:
        if not self.stopping:
            self.stopping = True
            self.send.close()
            if self._backoff_scope is not None:
                self._backoff_scope.cancel()
        timer = None
        if grace is not None:
            # Cancel the message in hand once the grace period is over.
            timer = self.clock.call_at(self.clock.monotonic() + grace, self._cancel_handler)
        try:
            await self._done.wait()
        finally:
            if timer is not None:
                timer.cancel()

    def _cancel_handler(self) -> None:
        if self._handler_scope is not None:
            self._handler_scope.cancel()


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
        self._cells: dict[str, _Cell[Any]] = {}
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
        cell = _Cell(name, factory, mailbox_size, self)
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
