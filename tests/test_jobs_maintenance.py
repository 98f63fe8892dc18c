"""cleanup_expired_tokens and health_check on SQLite and PostgreSQL, RabbitMQ and the fake
Lark server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from actors.jobs import CheckHealth, GetReadiness, HealthReport
from actors.service import LarkService
from actors.store import HealthResult, UserToken
from kernel.failures import FailureRecord
from kernel.testing import VirtualClock
from tests._service_support import BACKENDS, ServiceBackend, add_apps, running_service
from tests.conftest import RABBITMQ_URL
from tests.fake_lark import FakeLark

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)  # 03:00 in Shanghai


@dataclass
class World:
    service: LarkService
    backend: ServiceBackend
    fake: FakeLark
    clock: VirtualClock


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServiceBackend]:
    made = ServiceBackend(request.param, tmp_path)
    try:
        yield made
    finally:
        await made.cleanup()


@asynccontextmanager
async def start(backend: ServiceBackend, fake: FakeLark, **env: str) -> AsyncIterator[World]:
    clock = VirtualClock(NOW)
    async with running_service(backend.config(fake, **env), clock=clock) as service:
        yield World(service, backend, fake, clock)


@pytest.fixture
async def world(backend: ServiceBackend, fake_lark: FakeLark) -> AsyncIterator[World]:
    async with start(backend, fake_lark, LARK_SCHEDULER_CLEANUP__BATCH_SIZE="2") as made:
        yield made


# -- cleanup --------------------------------------------------------------------------------


async def test_cleanup_deletes_only_tokens_past_retention_in_batches(world: World) -> None:
    store = world.service.store
    await add_apps(world.service, world.fake, "cli_a")
    expiries = {
        **{f"ou_old{i}": NOW - timedelta(days=10, hours=i) for i in range(5)},
        "ou_edge": NOW - timedelta(days=7),  # exactly at the cutoff: kept
        "ou_recent": NOW - timedelta(days=1),  # expired, still within retention
        "ou_live": NOW + timedelta(days=5),
    }
    for open_id, expires in expiries.items():
        await store.upsert_user_token(
            UserToken(app_id="cli_a", open_id=open_id, refresh_expires_at=expires)
        )
    assert await store.claim_notice("cli_a", "ou_old0", "expired", date(2026, 11, 20))
    assert await store.claim_notice("cli_a", "ou_recent", "expired", date(2026, 12, 1))
    await store.record_health(
        [HealthResult(checked_at=NOW - timedelta(days=8), component="database", status="ok")]
    )
    report = await world.service.cleanup_expired_tokens()
    assert (report.cutoff, report.tokens_deleted) == (NOW - timedelta(days=7), 5)
    assert (report.notices_deleted, report.health_deleted) == (1, 1)
    left = [token.open_id for token in await store.list_user_tokens("cli_a")]
    assert left == ["ou_edge", "ou_live", "ou_recent"]
    assert [n.open_id for n in await store.list_notices()] == ["ou_recent"]
    again = await world.service.cleanup_expired_tokens()
    assert (again.tokens_deleted, again.notices_deleted, again.health_deleted) == (0, 0, 0)


def _failed_run(n: int, started: datetime) -> FailureRecord:
    return FailureRecord(
        id=f"f{n}",
        job_id="sync_user_info",
        run_id=f"r{n}",
        scheduled_at=started,
        started_at=started,
        duration=1.0,
        exc_type="RuntimeError",
        message="boom",
        traceback="",
    )


async def test_cleanup_deletes_failure_records_past_their_own_retention(
    backend: ServiceBackend, fake_lark: FakeLark
) -> None:
    env = {
        "LARK_SCHEDULER_CLEANUP__BATCH_SIZE": "2",
        "LARK_SCHEDULER_FAILURES__RETENTION_DAYS": "3",
    }
    async with start(backend, fake_lark, **env) as world:
        store = world.service.store
        ages = [
            timedelta(days=10),
            timedelta(days=4),
            timedelta(days=3, seconds=1),
            timedelta(days=3),
            timedelta(days=1),
        ]
        for n, age in enumerate(ages):
            await store.add_failure(_failed_run(n, NOW - age))
        report = await world.service.cleanup_expired_tokens()
        assert (report.failures_cutoff, report.failures_deleted) == (NOW - timedelta(days=3), 3)
        # Exactly at the cutoff is kept; the tokens' 7-day retention is not the failures'.
        assert [r.id for r in await store.list_failures()] == ["f4", "f3"]
        again = await world.service.cleanup_expired_tokens()
        assert again.failures_deleted == 0


# -- health ---------------------------------------------------------------------------------


def statuses(report: HealthReport) -> list[tuple[str, str]]:
    return [(result.component, result.status) for result in report.results]


def gauge(world: World, component: str) -> object:
    metric = world.service.registry.get("lark_health_status")
    try:
        return metric.get({"component": component})
    except KeyError:
        return None


async def test_health_with_nothing_configured(world: World) -> None:
    report = await world.service.health_check()
    assert statuses(report) == [
        ("database", "ok"),
        ("rabbitmq", "not_configured"),
        ("lark", "not_configured"),
    ]
    assert (report.ready, report.recorded, report.checked_at) == (True, True, NOW)
    assert report.results[2].detail == "no active app to probe with"
    latest = await world.service.store.latest_health()
    assert [(r.component, r.status) for r in latest] == [
        ("database", "ok"),
        ("lark", "not_configured"),
        ("rabbitmq", "not_configured"),
    ]
    assert [gauge(world, c) for c in ("database", "rabbitmq", "lark")] == [1, None, None]


async def test_health_lark_reachable_then_unreachable(world: World) -> None:
    await add_apps(world.service, world.fake, "cli_a")
    report = await world.service.health_check()
    assert statuses(report)[2] == ("lark", "ok")
    assert world.fake.calls["tenant_token"] == 1
    assert gauge(world, "lark") == 1

    world.fake.fail("tenant_token", status=503, times=None)
    report = await world.service.health_check()
    lark = report.results[2]
    assert (lark.component, lark.status) == ("lark", "fail")
    assert lark.detail.startswith("LarkUnavailableError: POST /open-apis/auth/v3/tenant_access")
    assert report.ready is True  # Lark's outage is reported, not a reason to leave service
    assert gauge(world, "lark") == 0
    # Readiness answers the latest report without probing again.
    calls = world.fake.calls["tenant_token"]
    assert await world.service.readiness() == report
    assert world.fake.calls["tenant_token"] == calls


async def test_readiness_checks_once_when_nothing_ran_yet(world: World) -> None:
    report = await world.service.readiness()
    assert statuses(report)[0] == ("database", "ok")
    assert await world.service.actor("health").ask(GetReadiness()) == report


async def test_health_when_the_database_is_gone(world: World) -> None:
    await world.service.store.close()
    report = await world.service.health_check()
    database = report.results[0]
    assert (database.component, database.status) == ("database", "fail")
    assert database.detail.startswith("StoreUnavailableError")
    assert (report.ready, report.recorded) == (False, False)
    assert gauge(world, "database") == 0
    await world.service.store.open()
    report = await world.service.actor("health").ask(CheckHealth())
    assert (report.ready, report.recorded) == (True, True)


@pytest.mark.rabbitmq
async def test_health_with_rabbitmq_configured(
    backend: ServiceBackend, fake_lark: FakeLark
) -> None:
    async with start(backend, fake_lark, LARK_SCHEDULER_RABBITMQ__URL=RABBITMQ_URL) as world:
        report = await world.service.health_check()
        assert statuses(report)[:2] == [("database", "ok"), ("rabbitmq", "ok")]
        assert report.ready is True
        assert gauge(world, "rabbitmq") == 1


async def test_health_with_rabbitmq_unreachable(
    backend: ServiceBackend, fake_lark: FakeLark
) -> None:
    url = "amqp://guest:rabbit-secret@127.0.0.1:1/"
    async with start(backend, fake_lark, LARK_SCHEDULER_RABBITMQ__URL=url) as world:
        report = await world.service.health_check()
        rabbit = report.results[1]
        assert (rabbit.component, rabbit.status) == ("rabbitmq", "fail")
        assert rabbit.detail.startswith("AMQPConnectionError: ")
        assert "rabbit-secret" not in rabbit.detail
        assert report.ready is False
        assert gauge(world, "rabbitmq") == 0
