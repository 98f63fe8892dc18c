"""The RabbitMQ worker: consumes runs, takes their claims, runs them, acknowledges after.

``await run_worker(amqp_url, dsn, ...)`` (the ``lark-scheduler worker`` command wires it)
or ``python -m kernel.distributed.worker --amqp URL --dsn DSN``. See
:mod:`kernel.distributed.rabbitmq` for why a killed worker never completes a run twice.
At most ``prefetch`` unacknowledged runs are in this worker at once.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import signal
import socket
import traceback
from typing import Any

import aio_pika
import msgspec

from ..clock import Clock, RealClock
from ..coordination import RunContext, current_run
from ._pg import Database
from ._refs import import_ref
from .postgres import WorkerOutcome
from .rabbitmq import DEFAULT_QUEUE, RunMessage

__all__ = ("Worker", "run_worker")

log = logging.getLogger("scheduler.worker")

_TAKE = (
    "UPDATE claims SET worker = $4, worker_until = now() + $5 * interval '1 second', "
    "lease_until = GREATEST(lease_until, now() + $5 * interval '1 second') "
    "WHERE job_id = $1 AND scheduled_at = $2 AND run_id = $3 AND state = 'running' "
    "AND worker_outcome IS NULL AND (worker IS NULL OR worker = $4 OR worker_until < now()) "
    "RETURNING true"
)
_RENEW = (
    "UPDATE claims SET worker_until = now() + $5 * interval '1 second', "
    "lease_until = GREATEST(lease_until, now() + $5 * interval '1 second') "
    "WHERE job_id = $1 AND scheduled_at = $2 AND run_id = $3 AND worker = $4"
)
_DONE = (
    "UPDATE claims SET worker_outcome = $5::jsonb, worker_until = NULL "
    "WHERE job_id = $1 AND scheduled_at = $2 AND run_id = $3 AND worker = $4"
)


class Worker:
    """Handles messages of the runs queue for one worker process."""

    def __init__(self, db: Database, channel: aio_pika.abc.AbstractChannel, *,
                 worker_id: str, lease: float, clock: Clock) -> None:
        self.db = db
        self.channel = channel
        self.worker_id = worker_id
        self.lease = lease
        self.clock = clock
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self._running: dict[str, asyncio.Task[WorkerOutcome]] = {}

    async def handle(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.in_flight += 1
        self.idle.clear()
        try:
            await self._handle(message)
        except Exception:
            # Not acknowledged: RabbitMQ delivers it again (here or to another worker).
            log.exception("could not handle a run message; returning it to the queue")
            await self.clock.sleep(1.0)
            await message.nack(requeue=True)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()

    async def drain(self) -> None:
        """Wait for runs whose delivery was lost with a connection."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _handle(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        try:
            run = msgspec.json.decode(message.body, type=RunMessage)
        except msgspec.DecodeError as exc:
            log.error("dropping a malformed run message: %s", exc)
            await message.reject(requeue=False)
            return
        claimed = run.scheduled_at is not None
        running_here = self._running.get(run.run_id)
        if running_here is not None:
            # Redelivered to us after our own connection dropped while we run it: answer
            # this delivery when that run ends (the old delivery can no longer be acked).
            outcome = await asyncio.shield(running_here)
            await self._reply(message, outcome)
            await message.ack()
            return
        if claimed:
            verdict, stored = await self._take(run)
            if verdict == "done":
                assert stored is not None
                await self._reply(message, stored)
                await message.ack()
                return
            if verdict == "gone":
                log.warning("run %s of job %s has no live claim (finished or interrupted); "
                            "dropping it", run.run_id, run.job_id)
                await message.ack()
                return
            if verdict == "held":
                # Another live worker has it; look again once its lease may have run out.
                await self.clock.sleep(min(1.0, self.lease / 3))
                await message.nack(requeue=True)
                return
        # The run is a task of its own: if this delivery's channel closes (aio-pika then
        # cancels this handler), the run goes on and its redelivery is answered by it.
        task = asyncio.get_running_loop().create_task(self._run(run, claimed))
        self._running[run.run_id] = task
        outcome = await asyncio.shield(task)
        await self._reply(message, outcome)
        try:
            await message.ack()
        except Exception as exc:
            # The channel this came on is gone; the redelivery is answered instead.
            log.info("could not acknowledge run %s (%s); its redelivery will be answered",
                     run.run_id, exc)

    async def _run(self, run: RunMessage, claimed: bool) -> WorkerOutcome:
        beat = asyncio.get_running_loop().create_task(self._heartbeat(run)) if claimed else None
        try:
            outcome = await self._execute(run)
            if claimed:
                # Stored before the ack: a redelivery after a crash here is answered, not
                # run again.
                await self._store_outcome(run, outcome)
            return outcome
        finally:
            if beat is not None:
                beat.cancel()
            self._running.pop(run.run_id, None)

    async def _take(self, run: RunMessage) -> tuple[str, WorkerOutcome | None]:
        args = (run.job_id, run.scheduled_at, run.run_id)
        if await self.db.fetchval(_TAKE, *args, self.worker_id, self.lease):
            return "mine", None
        rows = await self.db.fetch(
            "SELECT state, worker_outcome::text AS outcome FROM claims "
            "WHERE job_id = $1 AND scheduled_at = $2 AND run_id = $3", *args)
        if rows and rows[0]["outcome"] is not None:
            return "done", msgspec.json.decode(rows[0]["outcome"], type=WorkerOutcome)
        if not rows or rows[0]["state"] != "running":
            return "gone", None
        return "held", None

    async def _heartbeat(self, run: RunMessage) -> None:
        while True:
            await self.clock.sleep(self.lease / 3)
            try:
                await self.db.execute(_RENEW, run.job_id, run.scheduled_at, run.run_id,
                                      self.worker_id, self.lease)
            except Exception as exc:
                log.warning("could not renew the claim of run %s: %s", run.run_id, exc)

    async def _execute(self, run: RunMessage) -> WorkerOutcome:
        t0 = self.clock.monotonic()
        token = current_run.set(None if run.scheduled_at is None else RunContext(
            job_id=run.job_id, scheduled_at=run.scheduled_at, run_id=run.run_id))
        log.info("Running job %s (run %s) for the scheduler", run.job_id, run.run_id)
        try:
            func = import_ref(run.func_ref)
            result: Any = func(*run.args, **run.kwargs) if inspect.iscoroutinefunction(func) \
                else await asyncio.to_thread(func, *run.args, **run.kwargs)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            log.exception("Failed task %s (run %s)", run.job_id, run.run_id)
            return WorkerOutcome(
                run_id=run.run_id, ok=False, worker=self.worker_id,
                duration=self.clock.monotonic() - t0, exc_type=type(exc).__name__,
                message=str(exc), traceback=traceback.format_exc(),
            )
        finally:
            current_run.reset(token)
        return WorkerOutcome(run_id=run.run_id, ok=True, worker=self.worker_id,
                             duration=self.clock.monotonic() - t0)

    async def _store_outcome(self, run: RunMessage, outcome: WorkerOutcome) -> None:
        delay = 0.2
        while True:
            try:
                await self.db.execute(_DONE, run.job_id, run.scheduled_at, run.run_id,
                                      self.worker_id, msgspec.json.encode(outcome).decode())
                return
            except Exception as exc:
                log.warning("could not store the outcome of run %s (%s); retrying",
                            run.run_id, exc)
                await self.clock.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _reply(self, message: aio_pika.abc.AbstractIncomingMessage,
                     outcome: WorkerOutcome) -> None:
        if not message.reply_to:
            return
        try:
            await self.channel.default_exchange.publish(
                aio_pika.Message(msgspec.json.encode(outcome),
                                 correlation_id=message.correlation_id,
                                 content_type="application/json"),
                routing_key=message.reply_to,
            )
        except Exception as exc:
            # The replica also finds the outcome in the claim.
            log.warning("could not send the outcome of run %s: %s", outcome.run_id, exc)


async def run_worker(
    amqp_url: str,
    dsn: str,
    *,
    schema: str = "lark_scheduler",
    queue: str = DEFAULT_QUEUE,
    prefetch: int = 4,
    lease: float = 15.0,
    worker_id: str | None = None,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    clock: Clock | None = None,
) -> None:
    """Consume runs until ``stop`` is set (forever without one), then finish the runs in
    hand and return. Every wait is on ``clock`` (the real one by default)."""
    if prefetch < 1:
        raise ValueError(f"prefetch={prefetch} must be at least 1")
    clock = clock if clock is not None else RealClock()
    worker_id = worker_id or f"worker:{socket.gethostname()}:{os.getpid()}"
    db = Database(dsn, schema=schema, pool_size=prefetch + 2, clock=clock)
    await db.open()
    delay = 0.2
    while True:
        try:
            conn = await aio_pika.connect_robust(amqp_url)
            break
        except Exception as exc:
            log.error("RabbitMQ unavailable (%s); retrying in %.1f s", exc, delay)
            await clock.sleep(delay)
            delay = min(delay * 2, 10.0)
    try:
        channel = await conn.channel()
        await channel.set_qos(prefetch_count=prefetch)
        runs = await channel.declare_queue(queue, durable=True)
        worker = Worker(db, channel, worker_id=worker_id, lease=lease, clock=clock)
        tag = await runs.consume(worker.handle)
        log.info("Worker %s consuming %s (prefetch %d)", worker_id, queue, prefetch)
        if ready is not None:
            ready.set()
        await (stop or asyncio.Event()).wait()
        await runs.cancel(tag)
        await worker.idle.wait()
        await worker.drain()
    finally:
        await conn.close()
        await db.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kernel.distributed.worker",
                                     description="Run scheduled jobs from RabbitMQ.")
    parser.add_argument("--amqp", default=os.environ.get("RABBITMQ_URL",
                                                         "amqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--dsn", default=os.environ.get("POSTGRES_DSN"), required=False)
    parser.add_argument("--schema", default="lark_scheduler")
    parser.add_argument("--queue", default=DEFAULT_QUEUE)
    parser.add_argument("--prefetch", type=int, default=4)
    parser.add_argument("--lease", type=float, default=15.0)
    parser.add_argument("--id", dest="worker_id", default=None)
    args = parser.parse_args(argv)
    if not args.dsn:
        parser.error("--dsn (or POSTGRES_DSN) is required: workers take their runs' claims")
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def serve() -> None:
        stop, ready = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        async def announce() -> None:
            await ready.wait()
            print("worker ready", flush=True)

        announcer = loop.create_task(announce())
        await run_worker(args.amqp, args.dsn, schema=args.schema, queue=args.queue,
                         prefetch=args.prefetch, lease=args.lease, worker_id=args.worker_id,
                         stop=stop, ready=ready)
        announcer.cancel()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
