"""sync_user_info: every app's complete listing into the store, one transaction per app.

Runs on SQLite and PostgreSQL against the fake Lark server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import asyncpg
import pytest

from actors.jobs import AppSyncResult, SyncReport, SyncUsers
from actors.service import JobIncompleteError, LarkService
from actors.store import StoreUnavailableError
from tests._service_support import BACKENDS, ServiceBackend, add_apps, running_service
from tests.fake_lark import FakeLark
from tests.lark_helpers import SleepRecorder

pytestmark = pytest.mark.anyio

APPS = ("cli_a", "cli_b", "cli_c")


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServiceBackend]:
    made = ServiceBackend(request.param, tmp_path)
    try:
        yield made
    finally:
        await made.cleanup()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def service(
    backend: ServiceBackend, fake_lark: FakeLark, sleeps: SleepRecorder
) -> AsyncIterator[LarkService]:
    async with running_service(backend.config(fake_lark), sleeps=sleeps) as svc:
        await add_apps(svc, fake_lark, *APPS)
        yield svc


def ok(
    app_id: str, users: int, added: int = 0, updated: int = 0, deactivated: int = 0
) -> AppSyncResult:
    return AppSyncResult(
        app_id=app_id,
        status="ok",
        users=users,
        added=added,
        updated=updated,
        deactivated=deactivated,
    )


async def test_sync_pages_through_every_app(service: LarkService, fake_lark: FakeLark) -> None:
    fake_lark.add_department("od_sales")
    fake_lark.add_users(120)  # root: pages of 50, 50, 20
    fake_lark.add_users(60, department="od_sales")  # 50, 10
    report = await service.sync_user_info()
    assert report.apps == tuple(ok(app, 180, added=180) for app in APPS)
    # Per app: one department listing, 3 + 2 user pages.
    assert fake_lark.calls["departments"] == 3
    assert fake_lark.calls["users"] == 15
    for app in APPS:
        users = await service.store.list_users(app)
        assert len(users) == 180
        state = await service.store.get_sync_state(app)
        assert state is not None
        assert state.last_user_count == 180


async def test_running_twice_is_harmless(service: LarkService, fake_lark: FakeLark) -> None:
    fake_lark.add_users(7)
    await service.sync_user_info()
    before = await service.store.list_users("cli_a")
    report = await service.sync_user_info()
    assert report.apps == tuple(ok(app, 7) for app in APPS)
    assert await service.store.list_users("cli_a") == before


async def test_users_missing_from_a_complete_listing_become_inactive(
    service: LarkService, fake_lark: FakeLark
) -> None:
    fake_lark.add_users(5)
    await service.sync_user_info()
    gone = fake_lark.users.pop(1)
    fake_lark.users[0]["name"] = "Renamed"
    report = await service.sync_user_info()
    assert report.apps[0] == ok("cli_a", 4, updated=1, deactivated=1)
    users = {u.open_id: u for u in await service.store.list_users("cli_a")}
    assert len(users) == 5  # never deleted
    assert users[gone["open_id"]].active is False
    assert users[fake_lark.users[0]["open_id"]].name == "Renamed"
    active = await service.store.list_users("cli_a", active_only=True)
    assert gone["open_id"] not in {u.open_id for u in active}


async def test_failure_on_page_3_of_5_changes_nothing_for_that_app(
    service: LarkService, fake_lark: FakeLark
) -> None:
    fake_lark.add_users(200)  # 4 pages of 50
    await service.sync_user_info()
    before = await service.store.list_users("cli_b")
    state_before = await service.store.get_sync_state("cli_b")
    fake_lark.add_users(50)  # now 5 pages
    armed: list[object] = []

    def arm_for_cli_b(endpoint: str, n: int) -> None:
        # Department listings come once per app, in app order: arm for the second app only.
        if endpoint == "departments" and n == 2:
            armed.append(fake_lark.fail("users", status=500, page=3, times=None))
        if endpoint == "departments" and n == 3:
            armed[0].times = 0  # type: ignore[attr-defined]

    fake_lark.calls.clear()
    fake_lark.hooks.append(arm_for_cli_b)
    with pytest.raises(JobIncompleteError) as info:
        await service.sync_user_info()
    report = info.value.report
    assert isinstance(report, SyncReport)
    assert [(a.app_id, a.status, a.users) for a in report.apps] == [
        ("cli_a", "ok", 250),
        ("cli_b", "failed", 0),
        ("cli_c", "ok", 250),
    ]
    error = report.apps[1].error
    assert error is not None
    assert error.startswith(
        "LarkUnavailableError: GET /open-apis/contact/v3/users/find_by_department"
    )
    assert str(info.value).startswith(
        "sync_user_info: 1 of 3 apps failed and were left unchanged: cli_b (LarkUnavailableError"
    )
    assert await service.store.list_users("cli_b") == before
    assert await service.store.get_sync_state("cli_b") == state_before
    assert len(await service.store.list_users("cli_c")) == 250
    # Retries: pages 1-2 once each, page 3 three times (max_retries=2), nothing after.
    assert fake_lark.calls["users"] == 5 + (2 + 3) + 5


async def test_rate_limits_during_sync_back_off_and_complete(
    service: LarkService, fake_lark: FakeLark, sleeps: SleepRecorder
) -> None:
    fake_lark.add_users(120)

    def limit_page_2(endpoint: str, n: int) -> None:
        if endpoint == "users" and n == 2:
            fake_lark.rate_limit(2, reset=3, endpoint="users")

    fake_lark.hooks.append(limit_page_2)
    report = await service.sync_user_info()
    assert report.apps == tuple(ok(app, 120, added=120) for app in APPS)
    assert sleeps.delays == [3, 3]  # the rate-limit reset header is honoured
    assert len(await service.store.list_users("cli_a")) == 120


async def test_a_token_that_expires_mid_sync_is_refreshed(
    service: LarkService, fake_lark: FakeLark
) -> None:
    fake_lark.add_users(120)

    def expire_tokens(endpoint: str, n: int) -> None:
        if endpoint == "users" and n == 2:
            fake_lark.invalidate_tokens()

    fake_lark.hooks.append(expire_tokens)
    report = await service.sync_user_info()
    assert report.apps == tuple(ok(app, 120, added=120) for app in APPS)
    # One token per app, plus one refresh for the app whose token died mid-listing.
    assert fake_lark.calls["tenant_token"] == 4


async def test_an_app_without_a_secret_is_reported(
    service: LarkService, fake_lark: FakeLark
) -> None:
    await service.store.add_app("cli_nosecret", "No secret")
    fake_lark.add_users(1)
    report = await service.actor("user_sync").ask(SyncUsers(app_ids=("cli_a", "cli_nosecret")))
    assert [a.status for a in report.apps] == ["ok", "failed"]
    assert report.apps[1].error == (
        "MissingSecretError: app 'cli_nosecret' has no secret in the store; set it with "
        "'lark-scheduler apps update cli_nosecret --secret-stdin' (or store.set_app_secret()) "
        "before it can be used"
    )


@pytest.mark.postgres
async def test_database_that_goes_away_mid_run_fails_cleanly(
    tmp_path: Path, fake_lark: FakeLark
) -> None:
    backend = ServiceBackend("postgres", tmp_path)
    try:
        async with running_service(backend.config(fake_lark)) as service:
            await add_apps(service, fake_lark, "cli_a")
            fake_lark.add_users(3)
            await service.sync_user_info()
            before = await service.store.list_users("cli_a")
            fake_lark.add_users(2)
            failures: list[BaseException] = []

            async def run() -> None:
                try:
                    await service.sync_user_info()
                except StoreUnavailableError as exc:
                    failures.append(exc)

            pg = await backend.pg()
            try:
                # Reads pass, writes wait: the sync's transaction stops in the middle of
                # its writes, and there its connection is killed from this second one.
                async with pg.transaction():
                    await pg.execute("LOCK TABLE users IN EXCLUSIVE MODE")
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(run)
                        killed = await _terminate_blocked(pg)
                assert killed == 1
            finally:
                await pg.close()
            assert len(failures) == 1
            assert str(failures[0]).startswith("PostgreSQL at postgresql://postgres@127.0.0.1")
            assert await service.store.list_users("cli_a") == before  # nothing half-written
            assert [r.actor for r in service.restarts] == ["user_sync"]
            report = await service.sync_user_info()  # the restarted actor works
            assert report.apps == (ok("cli_a", 5, added=2),)
            assert len(await service.store.list_users("cli_a")) == 5
    finally:
        await backend.cleanup()


async def _terminate_blocked(pg: asyncpg.Connection) -> int:
    """Terminate the sessions waiting on ``pg``'s lock, once one waits; how many."""
    with anyio.fail_after(10):
        while True:
            killed: int = await pg.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
            )
            if killed:
                return killed
            await anyio.sleep(0.01)  # real I/O in flight, not a time test
