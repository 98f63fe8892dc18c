"""Test doubles and fixtures for the Lark client tests.

A manual clock, a recording sleep and a jitter-free rng, and the fixtures ``clock``,
``sleeps``, ``make_client`` and ``lark`` (registered by ``tests/conftest.py``).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.lowlevel
import pytest

from actors.lark import LarkClient
from tests.fake_lark import FAKE_APP_ID, FAKE_APP_SECRET, FakeLark

__all__ = (
    "START",
    "CeilingRandom",
    "ClientFactory",
    "ManualClock",
    "SleepRecorder",
    "client_for",
    "clock",
    "lark",
    "make_client",
    "sleeps",
)

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class ManualClock:
    """``now()`` for the client: an aware UTC datetime that moves only when told."""

    def __init__(self, start: datetime = START) -> None:
        self.value = start

    def __call__(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)


class SleepRecorder:
    """The client's ``sleep``: records each requested delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await anyio.lowlevel.checkpoint()


class CeilingRandom(random.Random):
    """``uniform(a, b)`` answers ``b``: full jitter at its ceiling, so delays are exact."""

    def random(self) -> float:
        return 1.0


def client_for(
    fake: FakeLark,
    clock: ManualClock,
    sleep: SleepRecorder,
    **overrides: Any,
) -> LarkClient:
    """A client of ``fake``'s default app with test time, sleep and jitter."""
    options: dict[str, Any] = {
        "base_url": fake.url,
        "now": clock,
        "sleep": sleep,
        "rng": CeilingRandom(),
    }
    options.update(overrides)
    app_id = options.pop("app_id", FAKE_APP_ID)
    app_secret = options.pop("app_secret", FAKE_APP_SECRET)
    return LarkClient(app_id, app_secret, **options)


ClientFactory = Callable[..., LarkClient]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def make_client(
    fake_lark: FakeLark, clock: ManualClock, sleeps: SleepRecorder
) -> AsyncIterator[ClientFactory]:
    """Builds clients of the fake (keyword overrides as for :func:`client_for`)."""
    clients: list[LarkClient] = []

    def make(**overrides: Any) -> LarkClient:
        client = client_for(fake_lark, clock, sleeps, **overrides)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def lark(make_client: ClientFactory) -> LarkClient:
    """A client of the fake's default app, test time and sleep, jitter at its ceiling."""
    return make_client()
