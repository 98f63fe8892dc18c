"""A running actor: its mailbox, its current instance and its supervision loop.

Only the cell's own task calls ``run``; ``put``/``put_nowait``/``stop`` are called by senders
on the same event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from actors._actor import Actor, ActorRestarted, ActorStoppedError, M, MailboxFullError
from actors._mailbox import Envelope
from kernel.clock import Clock

__all__ = ()

logger = logging.getLogger("actors.runtime")


class Supervising(Protocol):
    """What a cell needs from its supervisor."""

    clock: Clock

    def backoff(self, attempt: int) -> float: ...

    def report(self, event: ActorRestarted, error: BaseException) -> None: ...


class Cell(Generic[M]):
    """A running actor: its mailbox, its current instance and its supervision loop."""

    def __init__(
        self, name: str, factory: Callable[[], Actor[M]], capacity: int, supervisor: Supervising
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
                actor = None
                try:
                    # Inside the try: a factory that fails (a dependency not ready yet) is a
                    # crash like any other, retried after the backoff.
                    actor = self.factory()
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
                if reply is not None:
                    reply.handling(scope.cancel)  # the asker may give up meanwhile
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
                    if reply is not None:
                        reply.handling(None)
            if scope.cancelled_caught:
                if reply is not None and reply.abandoned:
                    logger.debug("actor %r: the asker of %s gave up; its work was cancelled",
                                 self.name, type(envelope.message).__name__)
                elif reply is not None:
                    reply.set_error(self._stopped_error(envelope.message, "while"))
                continue
            self.crashes = 0
            if reply is not None:
                reply.set_result(result)

    async def _crashed(self, actor: Actor[M] | None, error: Exception) -> None:
        try:
            if actor is not None:
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
