"""Test support for the service and job tests: a configuration on either store backend,
the service pointed at the fake Lark server, and waiting for kernel runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from aioprometheus.collectors import Registry
from anyio.streams.memory import MemoryObjectReceiveStream
from cryptography.fernet import Fernet

from actors.config import Config, LarkConfig, load_config
from actors.lark import LarkClient
from actors.service import LarkService
from actors.store.postgres import quote_ident
from kernel.clock import Clock
from kernel.events import Event, RunFailed, RunSucceeded
from tests.conftest import POSTGRES_DSN
from tests.fake_lark import FakeLark
from tests.lark_helpers import CeilingRandom, SleepRecorder

__all__ = (
    "BACKENDS",
    "ServiceBackend",
    "fake_factory",
    "next_run",
    "running_service",
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@dataclass
class ServiceBackend:
    """A configuration whose store is a fresh SQLite file or a fresh PostgreSQL schema."""

    kind: str
    tmp_path: Path
    schema: str = field(default_factory=lambda: f"test_svc_{uuid.uuid4().hex[:12]}")
    secret_key: str = field(default_factory=lambda: Fernet.generate_key().decode())

    def env(self, fake: FakeLark | None = None, **extra: str) -> dict[str, str]:
        env = {
            "LARK_SCHEDULER_STORE__DATA_DIR": str(self.tmp_path / "data"),
            "LARK_SCHEDULER_SECRET_KEY": self.secret_key,
            "LARK_SCHEDULER_LARK__MAX_RETRIES": "2",
        }
        if self.kind == "postgres":
            env["LARK_SCHEDULER_STORE__URL"] = POSTGRES_DSN
            env["LARK_SCHEDULER_STORE__SCHEMA"] = self.schema
        if fake is not None:
            env["LARK_SCHEDULER_LARK__BASE_URL"] = fake.url
        env.update(extra)
        return env

    def config(self, fake: FakeLark | None = None, **extra: str) -> Config:
        return load_config(None, self.env(fake, **extra))

    async def pg(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            POSTGRES_DSN, server_settings={"search_path": quote_ident(self.schema)}
        )

    async def cleanup(self) -> None:
        if self.kind == "postgres":
            pg = await asyncpg.connect(POSTGRES_DSN)
            try:
                await pg.execute(f"DROP SCHEMA IF EXISTS {quote_ident(self.schema)} CASCADE")
            finally:
                await pg.close()


def fake_factory(sleeps: SleepRecorder) -> Any:
    """Clients with the service's clock for time but instant, recorded backoff sleeps."""

    def make(app_id: str, secret: str, config: LarkConfig, clock: Clock) -> LarkClient:
        return LarkClient(
            app_id,
            secret,
            base_url=config.base_url,
            timeout=config.timeout,
            max_retries=config.max_retries,
            now=clock.now,
            sleep=sleeps,
            rng=CeilingRandom(),
        )

    return make


@asynccontextmanager
async def running_service(
    config: Config, *, clock: Clock | None = None, sleeps: SleepRecorder | None = None
) -> AsyncIterator[LarkService]:
    service = LarkService(
        config,
        clock=clock,
        registry=Registry(),
        lark_client_factory=fake_factory(sleeps or SleepRecorder()),
    )
    async with service:
        yield service


async def add_apps(service: LarkService, fake: FakeLark, *app_ids: str) -> None:
    """Register ``app_ids`` with the fake and the store (admin ``ou_admin_<app>``)."""
    for app_id in app_ids:
        secret = f"secret-of-{app_id}"
        fake.add_app(app_id, secret)
        await service.store.add_app(
            app_id, f"App {app_id}", secret=secret, admin_open_id=f"ou_admin_{app_id}"
        )


async def next_run(
    stream: MemoryObjectReceiveStream[Event], job_id: str
) -> RunSucceeded | RunFailed:
    """The next finished run of ``job_id`` (its work does real I/O, so wait for real)."""
    with anyio.fail_after(20):
        while True:
            event = await stream.receive()
            if isinstance(event, RunSucceeded | RunFailed) and event.job_id == job_id:
                return event
