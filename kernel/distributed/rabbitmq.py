"""The ``rabbitmq`` executor: runs of a job published to a durable queue, run by workers.

A job added with ``executor="rabbitmq"`` (``PersistentKernel(executors={"rabbitmq":
RabbitExecutor(...)})``) is scheduled, claimed and reported like any other: the kernel
calls its function, which here is a :class:`RemoteCall`. The call publishes a
:class:`RunMessage` (persistent, to a durable queue, with publisher confirms) and waits
for the outcome; a failure comes back as an exception whose class is named after the
worker's exception, so ``RunFailed``, failure records, metrics and retry work as in one
process. ``max_instances`` holds across workers because it is enforced by the claims,
before anything is published.

Outcomes come back on a reply queue of this replica (fast) and are also stored by the
worker in the run's claim; while it waits, the replica looks at the claim every
``poll`` seconds, so a reply lost with a reconnect does not leave the run hanging.

Why a killed worker never completes a run twice: the worker takes the claim
(``worker``, ``worker_until``) before running and renews it while running, stores the
outcome in the claim *before* it acknowledges the message, and a redelivered message
whose claim holds an outcome is only answered again, not run. A redelivered message
whose claim another live worker holds is put back until that worker's lease expires.
Manual runs and retries carry no claim and are delivered at least once.

Connection loss: aio-pika's robust connection reconnects with backoff; a publish that
fails is retried with backoff for ``publish_patience`` seconds, then the run fails
(and its retry policy applies). :meth:`RabbitExecutor.health` reports the state. Every
wait of the executor (backoff, the claim poll) is on its ``clock``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aio_pika
import msgspec

from ..clock import Clock, RealClock, wait_at_most
from ..coordination import current_run
from ._pg import Database
from .postgres import WorkerOutcome

__all__ = ("RabbitExecutor", "RemoteCall", "RemoteJobError", "RunMessage", "remote_error")

log = logging.getLogger("scheduler.rabbitmq")

DEFAULT_QUEUE = "lark_scheduler.runs"


class RunMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One run for a worker. ``scheduled_at`` is None for manual runs and retries."""

    job_id: str
    run_id: str
    func_ref: str
    args: list[Any]
    kwargs: dict[str, Any]
    scheduled_at: datetime | None = None


class RemoteJobError(Exception):
    """A run failed on a worker; the subclass is named after the worker's exception."""

    remote_traceback = ""


_ERROR_CLASSES: dict[str, type[RemoteJobError]] = {}


def remote_error(outcome: WorkerOutcome) -> RemoteJobError:
    """An exception whose class name is the worker's exception type (for failure records)."""
    name = outcome.exc_type or "RemoteJobError"
    if not name.isidentifier():
        name = "RemoteJobError"
    cls = _ERROR_CLASSES.get(name)
    if cls is None:
        cls = type(name, (RemoteJobError,), {"__module__": __name__})
        _ERROR_CLASSES[name] = cls
    error = cls(f"{outcome.message} (on worker {outcome.worker})")
    error.remote_traceback = outcome.traceback
    return error


class RemoteCall:
    """Stands in for a job's function: calling it runs the function on a worker."""

    def __init__(self, executor: RabbitExecutor, job_id: str, ref: str,
                 func: Callable[..., Any]) -> None:
        self.executor = executor
        self.job_id = job_id
        self.ref = ref
        self.__module__ = getattr(func, "__module__", "?")
        self.__qualname__ = getattr(func, "__qualname__", ref.rpartition(":")[2])
        self.__wrapped_ref__ = ref

    async def __call__(self, *args: Any, **kwargs: Any) -> None:
        run = current_run.get()
        message = RunMessage(
            job_id=run.job_id if run else self.job_id, func_ref=self.ref,
            run_id=run.run_id if run else uuid.uuid4().hex,
            scheduled_at=run.scheduled_at if run else None, args=list(args), kwargs=kwargs,
        )
        outcome = await self.executor.run(message)
        if not outcome.ok:
            raise remote_error(outcome)


class RabbitExecutor:
    """Publishes runs to ``queue`` and collects their outcomes (see the module doc).

    ``db`` (the scheduler's :class:`Database`) enables the claim-based fallback for
    lost replies; workers must use the same schema.
    """

    def __init__(
        self,
        url: str,
        *,
        queue: str = DEFAULT_QUEUE,
        db: Database | None = None,
        poll: float = 5.0,
        publish_patience: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self.url = url
        self.clock: Clock = clock if clock is not None else RealClock()
        self.queue = queue
        self.db = db
        self.poll = poll
        self.publish_patience = publish_patience
        self.state = "down"
        self.error: str | None = None
        self.outages = 0  # connections lost since start (health shows it)
        self._conn: aio_pika.abc.AbstractRobustConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._reply_queue: str = f"{queue}.reply.{os.urandom(6).hex()}"
        self._waiting: dict[str, asyncio.Future[WorkerOutcome]] = {}
        self._connecting = asyncio.Lock()

    def __call__(self, job_id: str, ref: str, func: Callable[..., Any]) -> RemoteCall:
        return RemoteCall(self, job_id, ref, func)

    def health(self) -> dict[str, Any]:
        """``state`` up/down, the last ``error``, how many times the connection was lost,
        and how many runs await an outcome."""
        return {"state": self.state, "broker": "rabbitmq", "error": self.error,
                "outages": self.outages, "waiting_runs": len(self._waiting)}

    async def connect(self) -> None:
        """Connect (retrying with backoff until it succeeds) and declare the queues."""
        async with self._connecting:
            if self._channel is None:
                await self._connect()

    async def _connect(self) -> None:
        delay = 0.2
        while self._conn is None:
            try:
                conn = await aio_pika.connect_robust(self.url)
            except Exception as exc:
                self._down(exc)
                await self.clock.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            conn.close_callbacks.add(lambda _c, exc=None: self._down(exc))
            conn.reconnect_callbacks.add(lambda _c: self._up())
            self._conn = conn
        self._channel = await self._conn.channel(publisher_confirms=True)
        await self._channel.declare_queue(self.queue, durable=True)
        # The reply queue survives reconnects (robust channels redeclare it) and is
        # deleted when this replica goes away.
        replies = await self._channel.declare_queue(self._reply_queue, auto_delete=True)
        await replies.consume(self._on_reply, no_ack=True)
        self._up()

    async def close(self) -> None:
        self.state = "closed"
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self._channel = None
            await conn.close()

    def _down(self, exc: BaseException | None) -> None:
        if self.state == "closed":
            return  # closed on purpose, not an outage
        if self.state != "down":
            log.error("RabbitMQ connection lost: %s", exc)
            self.outages += 1
        self.state = "down"
        self.error = None if exc is None else f"{type(exc).__name__}: {exc}"

    def _up(self) -> None:
        if self.state != "up":
            log.info("RabbitMQ connected (%s)", self.queue)
        self.state = "up"
        self.error = None

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        try:
            outcome = msgspec.json.decode(message.body, type=WorkerOutcome)
        except msgspec.DecodeError:
            log.warning("ignoring a malformed reply on %s", self._reply_queue)
            return
        future = self._waiting.get(outcome.run_id)
        if future is not None and not future.done():
            future.set_result(outcome)

    async def run(self, message: RunMessage) -> WorkerOutcome:
        """Publish one run and wait for its outcome."""
        if self._channel is None:
            await self.connect()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WorkerOutcome] = loop.create_future()
        self._waiting[message.run_id] = future
        try:
            await self._publish(message)
            while True:
                try:
                    return await wait_at_most(self.clock, asyncio.shield(future), self.poll)
                except TimeoutError:
                    pass
                stored = await self._stored_outcome(message)
                if stored is not None:
                    return stored
        finally:
            self._waiting.pop(message.run_id, None)

    async def _publish(self, message: RunMessage) -> None:
        body = msgspec.json.encode(message)
        waited = 0.0  # patience is counted in backoff sleeps (on the injected clock)
        delay = 0.2
        while True:
            try:
                assert self._channel is not None
                await self._channel.default_exchange.publish(
                    aio_pika.Message(
                        body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        correlation_id=message.run_id, reply_to=self._reply_queue,
                        content_type="application/json",
                    ),
                    routing_key=self.queue,
                )
                return
            except Exception as exc:
                self._down(exc)
                if waited + delay > self.publish_patience:
                    raise
                log.warning("publishing run %s of job %s failed (%s); retrying in %.1f s",
                            message.run_id, message.job_id, exc, delay)
                await self.clock.sleep(delay)
                waited += delay
                delay = min(delay * 2, 5.0)

    async def _stored_outcome(self, message: RunMessage) -> WorkerOutcome | None:
        if self.db is None or message.scheduled_at is None:
            return None
        try:
            raw = await self.db.fetchval(
                "SELECT worker_outcome::text FROM claims WHERE job_id = $1 AND "
                "scheduled_at = $2 AND run_id = $3",
                message.job_id, message.scheduled_at, message.run_id,
            )
        except Exception as exc:
            log.warning("could not look up the outcome of run %s: %s", message.run_id, exc)
            return None
        return None if raw is None else msgspec.json.decode(raw, type=WorkerOutcome)
