"""LarkService wiring: the jobs it registers, a store that goes away mid-run, manual tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aioprometheus.renderer import render

from actors import tasks
from actors.service import LarkService, make_kernel
from actors.store import StoreUnavailableError, UserToken
from kernel.testing import VirtualClock
from kernel.triggers import CronTrigger, IntervalTrigger
from tests._service_support import BACKENDS, ServiceBackend, add_apps, running_service
from tests.fake_lark import FakeLark

pytestmark = pytest.mark.anyio

START = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServiceBackend]:
    made = ServiceBackend(request.param, tmp_path)
    try:
        yield made
    finally:
        await made.cleanup()


async def test_register_jobs_with_the_seed_schedules(
    backend: ServiceBackend, fake_lark: FakeLark
) -> None:
    config = backend.config(fake_lark)
    clock = VirtualClock(START)
    async with running_service(config, clock=clock) as service:
        kernel = make_kernel(config, clock=clock)
        jobs = service.register_jobs(kernel)
        assert [(job.id, job.name) for job in jobs] == [
            ("sync_user_info", "sync_user_info"),
            ("check_token_expiry", "check_token_expiry"),
            ("cleanup_expired_tokens", "cleanup_expired_tokens"),
            ("health_check", "health_check"),
        ]
        triggers = [job.trigger for job in jobs]
        assert triggers[0] == IntervalTrigger(hours=6)
        assert triggers[1] == CronTrigger("0 9,18 * * *", "Asia/Shanghai")
        assert triggers[2] == CronTrigger("0 3 * * *", "Asia/Shanghai")
        assert triggers[3] == IntervalTrigger(minutes=5)
        assert [job.func_ref for job in jobs] == [
            f"actors.service:LarkService.{job.id}" for job in jobs
        ]
        async with kernel:
            await clock.advance(0)
            assert {job.id: job.next_run_time for job in kernel.get_jobs()} == {
                "sync_user_info": START + timedelta(hours=6),
                "check_token_expiry": datetime(2026, 12, 1, 1, 0, tzinfo=UTC),
                "cleanup_expired_tokens": datetime(2026, 12, 1, 19, 0, tzinfo=UTC),
                "health_check": START + timedelta(minutes=5),
            }


async def test_disabled_jobs_are_not_registered(
    backend: ServiceBackend, fake_lark: FakeLark
) -> None:
    config = backend.config(
        fake_lark,
        LARK_SCHEDULER_JOBS__SYNC_USER_INFO__ENABLED="false",
        LARK_SCHEDULER_JOBS__HEALTH_CHECK__MINUTES="1",
        LARK_SCHEDULER_JOBS__HEALTH_CHECK__TIMEOUT="30",
    )
    async with running_service(config) as service:
        kernel = make_kernel(config)
        jobs = service.register_jobs(kernel)
        assert [job.id for job in jobs] == [
            "check_token_expiry",
            "cleanup_expired_tokens",
            "health_check",
        ]
        assert jobs[2].trigger == IntervalTrigger(minutes=1)
        assert jobs[2].timeout == 30


async def test_store_closed_mid_run_fails_the_run_restarts_the_actor_and_recovers(
    backend: ServiceBackend, fake_lark: FakeLark
) -> None:
    async with running_service(backend.config(fake_lark)) as service:
        await add_apps(service, fake_lark, "cli_a")
        fake_lark.add_users(60)
        await service.sync_user_info()
        before = await service.store.list_users("cli_a")
        fake_lark.users.pop(0)
        closing: list[asyncio.Task[None]] = []

        def close_store(endpoint: str, n: int) -> None:
            # During the listing, before anything is written, the store's pool goes away.
            if endpoint == "users" and not closing:
                closing.append(asyncio.get_running_loop().create_task(service.store.close()))

        fake_lark.hooks.append(close_store)
        with pytest.raises(StoreUnavailableError):
            await service.sync_user_info()
        assert [event.actor for event in service.restarts] == ["user_sync"]
        text = render(service.registry, [])[0].decode()
        assert 'actor_restarts_total{actor="user_sync"} 1' in text

        fake_lark.hooks.clear()
        await service.store.open()
        assert await service.store.list_users("cli_a") == before  # nothing half-written
        report = await service.sync_user_info()
        assert [(a.app_id, a.status, a.users, a.deactivated) for a in report.apps] == [
            ("cli_a", "ok", 59, 1)
        ]


async def test_service_is_not_usable_outside_its_block(backend: ServiceBackend) -> None:
    service = LarkService(backend.config())
    with pytest.raises(RuntimeError, match="LarkService is not running"):
        _ = service.store
    with pytest.raises(LookupError, match="no actor 'user_sync'; the service runs none"):
        service.actor("user_sync")


# -- manual runs ----------------------------------------------------------------------------


async def test_tasks_run_by_hand_from_the_environment(
    tmp_path: Path, fake_lark: FakeLark, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = ServiceBackend("sqlite", tmp_path)
    config_file = tmp_path / "lark-scheduler.toml"
    config_file.write_text(f'[lark]\nbase_url = "{fake_lark.url}"\n', encoding="utf-8")
    monkeypatch.delenv("DATABASE_URL", raising=False)  # it would name another store
    env = backend.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LARK_SCHEDULER_CONFIG", str(config_file))
    config = backend.config(fake_lark)
    async with running_service(config) as service:
        await add_apps(service, fake_lark, "cli_a")
        await service.store.upsert_user_token(
            UserToken(
                app_id="cli_a",
                open_id="ou_1",
                refresh_expires_at=datetime.now(UTC) - timedelta(days=30),
            )
        )
    fake_lark.add_users(3)

    sync = await tasks.sync_user_info_task()
    assert [(a.app_id, a.status, a.added) for a in sync.apps] == [("cli_a", "ok", 3)]
    expiry = await tasks.check_token_expiry_task()
    assert [(n.kind, n.open_id, n.level, n.outcome) for n in expiry.notices] == [
        ("user", "ou_1", "expired", "sent"),
        ("summary", "ou_admin_cli_a", "expired", "sent"),
    ]
    assert [m.receive_id for m in fake_lark.sent] == ["ou_1", "ou_admin_cli_a"]
    cleanup = await tasks.cleanup_expired_tokens_task()
    assert cleanup.tokens_deleted == 1
    health = await tasks.health_check_task()
    assert [(r.component, r.status) for r in health.results] == [
        ("database", "ok"),
        ("rabbitmq", "not_configured"),
        ("lark", "ok"),
    ]
    async with running_service(config) as service:
        assert len(await service.store.list_users("cli_a")) == 3
        assert await service.store.list_user_tokens() == []
