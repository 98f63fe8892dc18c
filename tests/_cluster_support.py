"""Support for the tests that run ``lark-scheduler serve`` replicas and ``worker`` processes
on the machine's PostgreSQL (and RabbitMQ): their environment, and cleaning up after them."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import asyncpg
from cryptography.fernet import Fernet

from tests.conftest import POSTGRES_DSN, RABBITMQ_URL

__all__ = ("TOKEN", "Cluster")

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "cluster-admin-token-0123456789abcdef"


@dataclass
class Cluster:
    """One test's store schema, scheduler schema and queue (all unique), and the environment
    every process of the test shares."""

    tmp_path: Path
    lark_url: str
    suffix: str = field(default_factory=lambda: os.urandom(5).hex())
    secret_key: str = field(default_factory=lambda: Fernet.generate_key().decode())

    @property
    def store_schema(self) -> str:
        return f"t_store_{self.suffix}"

    @property
    def schema(self) -> str:
        return f"t_cluster_{self.suffix}"

    @property
    def queue(self) -> str:
        return f"t_runs_{self.suffix}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("LARK_") and k != "DATABASE_URL"}
        env.update({
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": POSTGRES_DSN,
            "LARK_SCHEDULER_STORE__SCHEMA": self.store_schema,
            "LARK_SCHEDULER_STORE__DATA_DIR": str(self.tmp_path / "data"),
            "LARK_SCHEDULER_SECRET_KEY": self.secret_key,
            "LARK_SCHEDULER_ADMIN_TOKEN": TOKEN,
            "LARK_SCHEDULER_LARK__BASE_URL": self.lark_url,
            "LARK_SCHEDULER_CLUSTER__ENABLED": "true",
            "LARK_SCHEDULER_CLUSTER__SCHEMA": self.schema,
            "LARK_SCHEDULER_CLUSTER__LEASE_SECONDS": "3",
            "LARK_SCHEDULER_CLUSTER__QUEUE": self.queue,
            "LARK_SCHEDULER_SCHEDULER__SHUTDOWN_GRACE": "5",
        })
        env.update(extra)
        return env

    async def fetch(self, schema: str, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(POSTGRES_DSN, server_settings={"search_path": schema})
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    def query(self, schema: str, sql: str, *args: object) -> list[asyncpg.Record]:
        return asyncio.run(self.fetch(schema, sql, *args))

    def cleanup(self, *, queue: bool = False) -> None:
        async def drop() -> None:
            conn = await asyncpg.connect(POSTGRES_DSN)
            try:
                for schema in (self.store_schema, self.schema):
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()
            if queue:
                amqp = await aio_pika.connect(RABBITMQ_URL)
                async with amqp:
                    channel = await amqp.channel()
                    await channel.queue_delete(self.queue)

        asyncio.run(drop())
