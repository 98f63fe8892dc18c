"""The actor runtime: ordering, ask/tell, crashes and restarts, stop and drain, backpressure.

Time is a :class:`~kernel.testing.VirtualClock`: restart backoffs and ask timeouts are
exact and nothing sleeps.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import msgspec
import pytest
from aioprometheus.collectors import Registry
from aioprometheus.renderer import render

from actors.runtime import (
    Actor,
    ActorRef,
    ActorRestarted,
    ActorStoppedError,
    AskTimeoutError,
    MailboxFullError,
    Supervisor,
)
from kernel.testing import VirtualClock

pytestmark = pytest.mark.anyio


class Note(msgspec.Struct, frozen=True):
    text: str


class Read(msgspec.Struct, frozen=True):
    pass


class Boom(msgspec.Struct, frozen=True):
    why: str


class Hold(msgspec.Struct, frozen=True):
    """Block the actor until the test releases it."""


class Mutable(msgspec.Struct):
    text: str


@dataclass
class Journal:
    """What every instance of the test actor did, across restarts."""

    events: list[str] = field(default_factory=list)
    release: anyio.Event = field(default_factory=anyio.Event)
    fail_starts: int = 0
    instances: int = 0


class Recorder(Actor[Any]):
    def __init__(self, journal: Journal) -> None:
        journal.instances += 1
        self.n = journal.instances
        self.journal = journal
        self.notes: list[str] = []

    async def on_start(self) -> None:
        self.journal.events.append(f"start#{self.n}")
        if self.journal.fail_starts:
            self.journal.fail_starts -= 1
            raise ConnectionError("database is down")

    async def on_stop(self) -> None:
        self.journal.events.append(f"stop#{self.n}")

    async def on_failure(self, error: BaseException) -> None:
        self.journal.events.append(f"failure#{self.n}:{error}")

    async def receive(self, message: Any) -> Any:
        match message:
            case Note(text):
                self.notes.append(text)
                self.journal.events.append(f"note#{self.n}:{text}")
                return len(self.notes)
            case Read():
                return list(self.notes)
            case Boom(why):
                raise ValueError(why)
            case Hold():
                self.journal.events.append(f"hold#{self.n}")
                await self.journal.release.wait()
                return "released"
        raise TypeError(message)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime(2026, 11, 29, 9, 0, tzinfo=UTC))


@dataclass
class World:
    supervisor: Supervisor
    ref: ActorRef[Any]
    journal: Journal
    restarts: list[ActorRestarted]
    clock: VirtualClock


@contextlib.asynccontextmanager
async def make_world(clock: VirtualClock, **kw: Any) -> AsyncIterator[World]:
    restarts: list[ActorRestarted] = []
    journal = Journal(fail_starts=kw.pop("fail_starts", 0))
    mailbox = kw.pop("mailbox_size", 16)
    async with Supervisor(clock=clock, on_restart=restarts.append, **kw) as sup:
        ref = sup.spawn("recorder", lambda: Recorder(journal), mailbox_size=mailbox)
        yield World(sup, ref, journal, restarts, clock)


@pytest.fixture
async def world(clock: VirtualClock) -> AsyncIterator[World]:
    async with make_world(clock) as made:
        yield made


async def test_tells_and_asks_are_handled_in_order(world: World) -> None:
    for text in ("a", "b", "c"):
        await world.ref.tell(Note(text))
    assert await world.ref.ask(Note("d")) == 4
    assert await world.ref.ask(Read()) == ["a", "b", "c", "d"]
    assert world.journal.events == ["start#1", "note#1:a", "note#1:b", "note#1:c", "note#1:d"]


async def test_messages_must_be_frozen_structs(world: World) -> None:
    with pytest.raises(TypeError) as info:
        await world.ref.tell(Mutable("x"))
    assert str(info.value) == (
        "message to actor 'recorder' must be a frozen msgspec.Struct, not Mutable; "
        "declare it as class X(msgspec.Struct, frozen=True)"
    )
    with pytest.raises(TypeError):
        await world.ref.ask({"text": "x"})


async def test_a_crash_fails_the_ask_and_restarts_a_fresh_actor(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    await world.ref.tell(Note("kept?"))
    with caplog.at_level(logging.WARNING, logger="actors.runtime"):
        with pytest.raises(ValueError, match=r"^bad input$"):
            await world.ref.ask(Boom("bad input"))
        await world.clock.settle()
    assert world.restarts == [
        ActorRestarted(actor="recorder", attempt=1, delay=0.1, error="ValueError('bad input')")
    ]
    assert [r.getMessage() for r in caplog.records] == [
        "actor 'recorder' crashed (ValueError('bad input')); restarting in 0.1s (attempt 1)"
    ]
    # Messages sent during the backoff wait in the mailbox for the new instance.
    await world.ref.tell(Note("after"))
    assert world.journal.events == ["start#1", "note#1:kept?", "failure#1:bad input"]
    await world.clock.advance(0.1)
    assert await world.ref.ask(Read()) == ["after"]  # a fresh instance: state is gone
    assert world.journal.events[3:] == ["start#2", "note#2:after"]
    assert world.supervisor.restarts.get({"actor": "recorder"}) == 1
    text = render(world.supervisor.registry, [])[0].decode()
    assert 'actor_restarts_total{actor="recorder"} 1' in text


async def test_restart_backoff_doubles_up_to_the_cap(clock: VirtualClock) -> None:
    async with make_world(clock, fail_starts=5, backoff_base=0.5, backoff_max=3.0) as world:
        await clock.advance(0.5 + 1 + 2 + 3 + 3)
        assert [(r.attempt, r.delay) for r in world.restarts] == [
            (1, 0.5),
            (2, 1.0),
            (3, 2.0),
            (4, 3.0),
            (5, 3.0),
        ]
        assert await world.ref.ask(Note("up")) == 1
        assert world.journal.events[-2:] == ["start#6", "note#6:up"]
        # A handled message ends the streak: the next crash starts over at the base delay.
        with pytest.raises(ValueError, match="again"):
            await world.ref.ask(Boom("again"))
        await clock.settle()
        assert world.restarts[-1].attempt == 1
        assert world.restarts[-1].delay == 0.5


async def test_stop_drains_the_mailbox_and_fails_pending_asks(world: World) -> None:
    results: dict[str, Any] = {}

    async def ask(key: str, message: Any) -> None:
        try:
            results[key] = await world.ref.ask(message)
        except ActorStoppedError as exc:
            results[key] = str(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask, "hold", Hold())
        await world.clock.settle()
        tg.start_soon(ask, "note", Note("never"))
        tg.start_soon(ask, "read", Read())
        await world.clock.settle()
        assert world.ref.queued == 2
        stopping = anyio.Event()

        async def stop() -> None:
            await world.ref.stop(grace=None)
            stopping.set()

        tg.start_soon(stop)
        await world.clock.settle()
        assert not world.ref.running
        world.journal.release.set()  # the message in hand may finish
        await stopping.wait()
    assert results == {
        "hold": "released",
        "note": "actor 'recorder' stopped before handling Note; the message was not processed",
        "read": "actor 'recorder' stopped before handling Read; the message was not processed",
    }
    assert world.journal.events == ["start#1", "hold#1", "stop#1"]
    with pytest.raises(ActorStoppedError, match="stopped before handling Note"):
        await world.ref.tell(Note("late"))
    with pytest.raises(ActorStoppedError, match="stopped before handling Read"):
        await world.ref.ask(Read())


async def test_stop_cancels_the_message_in_hand_after_the_grace(world: World) -> None:
    outcome: list[str] = []

    async def ask() -> None:
        with pytest.raises(ActorStoppedError) as info:
            await world.ref.ask(Hold())
        outcome.append(str(info.value))

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        await world.clock.settle()
        tg.start_soon(world.ref.stop, 5.0)
        await world.clock.advance(4.9)
        assert outcome == []
        await world.clock.advance(0.1)
    assert outcome == ["actor 'recorder' stopped while handling Hold; its work was cancelled"]
    assert world.journal.events == ["start#1", "hold#1", "stop#1"]


async def test_full_mailbox_backpressure(clock: VirtualClock) -> None:
    async with make_world(clock, mailbox_size=2) as world:
        await world.ref.tell(Hold())
        await clock.settle()  # the actor holds it; the mailbox is empty again
        await world.ref.tell(Note("1"))
        world.ref.tell_nowait(Note("2"))
        with pytest.raises(MailboxFullError) as info:
            world.ref.tell_nowait(Note("3"))
        assert str(info.value) == (
            "mailbox of actor 'recorder' is full (2 messages); use await tell() to wait for room"
        )
        sent: list[str] = []

        async def tell() -> None:
            await world.ref.tell(Note("3"))
            sent.append("3")

        async with anyio.create_task_group() as tg:
            tg.start_soon(tell)
            await clock.settle()
            assert sent == []  # waiting for room: backpressure on the sender
            world.journal.release.set()
        assert sent == ["3"]
        assert await world.ref.ask(Read()) == ["1", "2", "3"]


async def test_ask_timeout_on_the_virtual_clock_skips_the_message(world: World) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(world.ref.tell, Hold())
        await world.clock.settle()
        failures: list[str] = []

        async def ask() -> None:
            with pytest.raises(AskTimeoutError) as info:
                await world.ref.ask(Note("late"), timeout=2.5)
            failures.append(str(info.value))

        tg.start_soon(ask)
        await world.clock.advance(2.4)
        assert failures == []
        await world.clock.advance(0.1)
        assert failures == ["actor 'recorder' did not answer Note within 2.5s"]
        world.journal.release.set()
    assert await world.ref.ask(Read()) == []  # the abandoned Note was never handled


async def test_supervisor_refuses_duplicates_and_spawn_when_stopped(
    clock: VirtualClock,
) -> None:
    journal = Journal()
    sup = Supervisor(clock=clock, registry=Registry())
    with pytest.raises(ActorStoppedError, match="the supervisor is not running"):
        sup.spawn("x", lambda: Recorder(journal))
    async with sup:
        sup.spawn("x", lambda: Recorder(journal))
        with pytest.raises(ValueError, match=r"^an actor named 'x' is already running"):
            sup.spawn("x", lambda: Recorder(journal))
    with pytest.raises(ValueError, match=r"backoff_base 2\.0 and backoff_max 1\.0"):
        Supervisor(backoff_base=2.0, backoff_max=1.0)


class Refused(msgspec.Struct, frozen=True):
    """A request the remote side refuses; the actor's state is unharmed."""


class Tolerant(Recorder):
    def crashes_on(self, error: Exception) -> bool:
        return not isinstance(error, PermissionError)

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Refused):
            raise PermissionError("refused by the remote side")
        return await super().receive(message)


async def test_errors_the_actor_does_not_crash_on_go_to_the_asker_only(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal()
    restarts: list[ActorRestarted] = []
    async with Supervisor(clock=clock, on_restart=restarts.append) as sup:
        ref = sup.spawn("tolerant", lambda: Tolerant(journal))
        await ref.tell(Note("kept"))
        with pytest.raises(PermissionError, match=r"^refused by the remote side$"):
            await ref.ask(Refused())
        with caplog.at_level(logging.ERROR, logger="actors.runtime"):
            await ref.tell(Refused())
            assert await ref.ask(Read()) == ["kept"]  # same instance, state intact
        assert [r.getMessage() for r in caplog.records] == [
            "actor 'tolerant': Refused failed: PermissionError('refused by the remote side')"
        ]
        assert restarts == []
        with pytest.raises(ValueError, match=r"^other$"):
            await ref.ask(Boom("other"))  # anything else still crashes it
        await clock.settle()
        assert [r.attempt for r in restarts] == [1]


@pytest.mark.parametrize(
    "module",
    ["actors.runtime", "actors.config", "actors.jobs", "actors.service", "actors.tasks"],
)
def test_public_modules_export_what_they_define(module: str) -> None:
    imported = importlib.import_module(module)
    assert isinstance(imported.__all__, tuple)
    assert list(imported.__all__) == sorted(imported.__all__, key=lambda n: (n.upper() != n, n))
    for name in imported.__all__:
        assert getattr(imported, name) is not None


async def test_a_factory_that_fails_is_retried_after_the_backoff(clock: VirtualClock) -> None:
    journal = Journal()
    attempts: list[int] = []
    restarts: list[ActorRestarted] = []

    def factory() -> Recorder:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise LookupError("dependency not ready")
        return Recorder(journal)

    async with Supervisor(clock=clock, on_restart=restarts.append) as sup:
        ref = sup.spawn("late", factory)
        await clock.advance(0.1 + 0.2)
        assert await ref.ask(Note("x")) == 1
    assert attempts == [1, 2, 3]
    assert [(r.attempt, r.delay, r.error) for r in restarts] == [
        (1, 0.1, "LookupError('dependency not ready')"),
        (2, 0.2, "LookupError('dependency not ready')"),
    ]
    assert journal.events == ["start#1", "note#1:x", "stop#1"]


class Work(msgspec.Struct, frozen=True):
    """A slow request: the actor works ``seconds`` of the clock on it."""

    n: int
    seconds: float


class Worker(Actor[Work]):
    def __init__(self, clock: VirtualClock, log: list[str]) -> None:
        self.clock = clock
        self.log = log

    async def receive(self, message: Work) -> int:
        self.log.append(f"start {message.n} at {self.clock.monotonic():g}")
        try:
            if message.seconds:
                await self.clock.sleep(message.seconds)
        except BaseException:
            self.log.append(f"cancelled {message.n} at {self.clock.monotonic():g}")
            raise
        self.log.append(f"done {message.n} at {self.clock.monotonic():g}")
        return message.n


async def _give_up(ref: ActorRef[Work], message: Work, how: str, clock: VirtualClock) -> None:
    """Ask, and give up after 10 s of the clock: by the ask's own timeout or by being
    cancelled from outside (a job timeout, a shutdown)."""
    if how == "ask-timeout":
        with pytest.raises(AskTimeoutError):
            await ref.ask(message, timeout=10)
        return
    with anyio.CancelScope() as scope:
        clock.call_at(clock.monotonic() + 10, scope.cancel)
        await ref.ask(message)
    assert scope.cancelled_caught


@pytest.mark.parametrize("how", ["ask-timeout", "asker-cancelled"])
async def test_an_asker_that_gives_up_cancels_the_work_and_skips_what_is_queued(
    clock: VirtualClock, how: str
) -> None:
    log: list[str] = []
    async with Supervisor(clock=clock) as sup:
        ref = sup.spawn("worker", lambda: Worker(clock, log))
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_give_up, ref, Work(n=1, seconds=100), how, clock)
                tg.start_soon(_give_up, ref, Work(n=2, seconds=100), how, clock)
                await clock.advance(30)
            # The handler of the abandoned ask was cancelled when its asker gave up, and
            # the second message, whose asker gave up while it was queued, never started.
            assert log == ["start 1 at 0", "cancelled 1 at 10"]
        finally:
            await clock.advance(1000)  # whatever still works finishes: the test ends
        assert await ref.ask(Work(n=3, seconds=0)) == 3  # the actor serves on


async def test_a_job_timeout_stops_the_actor_work_it_asked_for(clock: VirtualClock) -> None:
    from kernel import Kernel

    log: list[str] = []
    kernel = Kernel(clock=clock)
    failed: list[str] = []
    kernel.add_listener(lambda e: failed.append(type(e).__name__)
                        if type(e).__name__ == "RunFailed" else None)
    async with Supervisor(clock=clock) as sup, kernel:
        ref = sup.spawn("worker", lambda: Worker(clock, log))
        numbers = iter(range(1, 100))

        async def job() -> None:
            await ref.ask(Work(n=next(numbers), seconds=100))

        kernel.add_interval_job(job, seconds=30, timeout=10, job_id="asks")
        try:
            await clock.advance(100)
            # Every run timed out after 10 s, and with it the actor's work: no message
            # queues behind work nobody waits for any more.
            assert log == [
                "start 1 at 30", "cancelled 1 at 40",
                "start 2 at 60", "cancelled 2 at 70",
                "start 3 at 90", "cancelled 3 at 100",
            ]
            assert failed == ["RunFailed"] * 3
        finally:
            kernel.remove_job("asks")
            await clock.advance(1000)  # whatever still works finishes: the test ends
