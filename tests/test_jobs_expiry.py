"""check_token_expiry: the policy table, and notices driven by the kernel on a virtual clock
(09:00 and 18:00 Asia/Shanghai) on SQLite and PostgreSQL, against the fake Lark server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aioprometheus.collectors import Registry

from actors.jobs import ExpiryStatus, TokenExpiryMonitor
from actors.jobs.token_states import TOKEN_STATES
from actors.lark import UserTokenGrant
from actors.service import LarkService, make_kernel
from actors.store import UserToken
from kernel import Kernel
from kernel.events import RunFailed, RunSucceeded
from kernel.testing import VirtualClock
from tests._service_support import BACKENDS, ServiceBackend, add_apps, next_run, running_service
from tests.fake_lark import FakeLark

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
H = 3600.0
D = 86400.0


class _NoStore:
    """The pure policy needs no store."""


def monitor(warning_days: Any = 7, critical_days: Any = 3) -> TokenExpiryMonitor:
    return TokenExpiryMonitor(
        messaging_client=None,  # type: ignore[arg-type]
        warning_days=warning_days,
        critical_days=critical_days,
        store=_NoStore(),  # type: ignore[arg-type]
        registry=Registry(),
    )


@pytest.mark.parametrize(
    ("seconds", "status", "severity", "level", "days", "hours"),
    [
        pytest.param(20 * D, "valid", "info", None, 20, 480, id="20-days"),
        pytest.param(7 * D + 1, "valid", "info", None, 7, 168, id="just-over-7-days"),
        pytest.param(7 * D, "expiring", "warning", "warning", 7, 168, id="7-days"),
        pytest.param(3 * D + 1, "expiring", "warning", "warning", 3, 72, id="just-over-3-days"),
        pytest.param(3 * D, "expiring_soon", "critical", "critical", 3, 72, id="3-days"),
        pytest.param(5 * H + 59, "expiring_soon", "critical", "critical", 0, 5, id="5-hours"),
        pytest.param(1, "expiring_soon", "critical", "critical", 0, 0, id="1-second"),
        pytest.param(0, "expired", "critical", "expired", 0, 0, id="now"),
        pytest.param(-H, "expired", "critical", "expired", -1, -1, id="an-hour-ago"),
        pytest.param(-2 * D, "expired", "critical", "expired", -2, -48, id="2-days-ago"),
    ],
)
def test_expiry_status_table(
    seconds: float, status: str, severity: str, level: str | None, days: int, hours: int
) -> None:
    expires_at = NOW + timedelta(seconds=seconds)
    assert monitor().get_expiry_status(expires_at, NOW) == ExpiryStatus(
        status=status,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        level=level,  # type: ignore[arg-type]
        expires_at=expires_at,
        days_to_expiry=seconds / D,
        days=days,
        hours=hours,
    )


@pytest.mark.parametrize(
    ("warning", "critical", "message"),
    [
        pytest.param(
            3,
            3,
            "critical_days=3 must be less than warning_days=3 (critical "
            "notices come closer to expiry than warnings)",
            id="equal",
        ),
        pytest.param(
            2,
            5,
            "critical_days=5 must be less than warning_days=2 (critical "
            "notices come closer to expiry than warnings)",
            id="inverted",
        ),
        pytest.param(0, 3, "warning_days=0 must be a number of days > 0, e.g. 7", id="zero"),
        pytest.param(7, -1, "critical_days=-1 must be a number of days > 0, e.g. 7", id="neg"),
        pytest.param("7", 3, "warning_days='7' must be a number of days > 0, e.g. 7", id="str"),
    ],
)
def test_thresholds_are_validated(warning: Any, critical: Any, message: str) -> None:
    with pytest.raises(ValueError, match=r"_days=") as info:
        monitor(warning, critical)
    assert str(info.value) == message


def test_naive_expiry_is_refused() -> None:
    with pytest.raises(ValueError, match="is naive; pass an aware datetime"):
        monitor().get_expiry_status(datetime(2026, 12, 1))


# -- driven by the kernel -------------------------------------------------------------------

DISABLE_OTHERS = {
    "LARK_SCHEDULER_JOBS__SYNC_USER_INFO__ENABLED": "false",
    "LARK_SCHEDULER_JOBS__CLEANUP_EXPIRED_TOKENS__ENABLED": "false",
    "LARK_SCHEDULER_JOBS__HEALTH_CHECK__ENABLED": "false",
    "LARK_SCHEDULER_OAUTH__REDIRECT_BASE_URL": "https://lark.example.com",
}
LINK = "https://lark.example.com/oauth/cli_a/authorize"


@dataclass
class World:
    service: LarkService
    kernel: Kernel
    clock: VirtualClock
    fake: FakeLark

    async def run_at(self, hours_later: float) -> RunSucceeded | RunFailed:
        stream = self.kernel.subscribe()
        try:
            await self.clock.advance(hours_later * H)
            return await next_run(stream, "check_token_expiry")
        finally:
            stream.close()

    def sent_to(self) -> list[tuple[str, str]]:
        return [(m.receive_id, m.content.get("text", "").split("\n")[0]) for m in self.fake.sent]

    def counter(self, level: str) -> Any:
        assert self.service.monitor is not None
        try:
            return self.service.monitor.sent_counter.get({"app_id": "cli_a", "level": level})
        except KeyError:
            return 0  # no series yet

    def states(self) -> dict[str, Any]:
        assert self.service.monitor is not None
        gauge = self.service.monitor.states.gauge
        return {s: gauge.get({"app_id": "cli_a", "state": s}) for s in TOKEN_STATES}


async def seed_tokens(service: LarkService, at: datetime) -> None:
    for open_id, offset in (
        ("ou_c", 2 * D),  # critical
        ("ou_v", 20 * D),  # valid: no notice
        ("ou_w", 5 * D),  # warning
        ("ou_x", -1 * D),  # expired
    ):
        expires = at + timedelta(seconds=offset)
        await service.store.upsert_user_token(
            UserToken(app_id="cli_a", open_id=open_id, refresh_expires_at=expires)
        )
    # Far from expiry, but Lark revoked it: as good as expired.
    grant = UserTokenGrant(
        access_token="u-revoked-000000000000",
        access_expires_at=at + timedelta(hours=2),
        refresh_token="ur-revoked-00000000000",
        refresh_expires_at=at + timedelta(days=25),
    )
    await service.store.save_user_authorization("cli_a", "ou_r", grant, name="Rita")
    assert await service.store.invalidate_user_token("cli_a", "ou_r", 1, "revoked")


@pytest.fixture(params=BACKENDS)
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, fake_lark: FakeLark
) -> AsyncIterator[World]:
    backend = ServiceBackend(request.param, tmp_path)
    config = backend.config(fake_lark, **DISABLE_OTHERS)
    clock = VirtualClock(NOW - timedelta(hours=1))  # 08:00 in Shanghai
    try:
        async with running_service(config, clock=clock) as service:
            await add_apps(service, fake_lark, "cli_a")
            await seed_tokens(service, NOW)
            kernel = make_kernel(config, clock=clock, failure_store=service.store)
            assert [job.id for job in service.register_jobs(kernel)] == ["check_token_expiry"]
            async with kernel:
                yield World(service, kernel, clock, fake_lark)
    finally:
        await backend.cleanup()


ADMIN = "ou_admin_cli_a"
TITLES = [
    ("ou_c", "Lark authorisation expiring (critical): app App cli_a"),
    ("ou_r", "Lark authorisation no longer valid: app App cli_a"),
    ("ou_w", "Lark authorisation expiring (warning): app App cli_a"),
    ("ou_x", "Lark authorisation expired: app App cli_a"),
    (ADMIN, "Lark authorisations of app App cli_a: 2 expired, 1 critical, 1 warning"),
]


async def test_notices_once_a_day_across_the_0900_and_1800_runs(world: World) -> None:
    run = await world.run_at(1)  # 09:00
    assert isinstance(run, RunSucceeded)
    assert world.sent_to() == TITLES
    texts = [m.content["text"] for m in world.fake.sent]
    assert texts[0] == (
        "Lark authorisation expiring (critical): app App cli_a\n"
        "Your authorisation of app App cli_a (cli_a) expires on 2026-12-03 09:00 CST, in 2 "
        f"days. Authorise the app again to keep it working: {LINK}"
    )
    assert texts[1] == (
        "Lark authorisation no longer valid: app App cli_a\n"
        "Your authorisation of app App cli_a (cli_a) was revoked (Lark refused its refresh "
        f"token). Authorise the app again to keep it working: {LINK}"
    )
    assert texts[3].endswith("expired on 2026-11-30 09:00 CST. Authorise the app again to "
                             f"keep it working: {LINK}")
    assert texts[4] == (
        "Lark authorisations of app App cli_a: 2 expired, 1 critical, 1 warning\n"
        "expired (2): Rita (ou_r) was revoked (Lark refused its refresh token); "
        "ou_x expired on 2026-11-30 09:00 CST\n"
        "critical (1): ou_c expires on 2026-12-03 09:00 CST, in 2 days\n"
        "warning (1): ou_w expires on 2026-12-06 09:00 CST, in 5 days\n"
        f"Each of them was sent a notice with the link to authorise again: {LINK}\n"
        "'lark-scheduler tokens list --app cli_a --expiring 7' lists them."
    )
    notices = await world.service.store.list_notices(day=date(2026, 12, 1))
    assert [(n.open_id, n.level, n.status) for n in notices] == [
        ("ou_c", "critical", "sent"),
        ("ou_r", "expired", "sent"),
        ("ou_w", "warning", "sent"),
        ("ou_x", "expired", "sent"),
    ]
    (summary,) = await world.service.store.list_summaries(day=date(2026, 12, 1))
    assert (summary.app_id, summary.status) == ("cli_a", "sent")
    assert world.states() == {
        "valid": 1, "warning": 1, "critical": 1, "expired": 1, "invalid": 1
    }

    run = await world.run_at(9)  # 18:00: the same day, nothing new
    assert isinstance(run, RunSucceeded)
    assert len(world.fake.sent) == 5

    run = await world.run_at(15)  # 09:00 the next day: each due once more
    assert isinstance(run, RunSucceeded)
    assert world.sent_to() == TITLES + TITLES
    assert [world.counter(level) for level in ("warning", "critical", "expired")] == [2, 2, 4]
    assert world.service.monitor is not None
    assert world.service.monitor.summaries_counter.get({"app_id": "cli_a"}) == 2
    # The soonest expiry (ou_x, a day before the first run), in seconds since the epoch.
    assert (
        world.service.monitor.expiry_gauge.get({"app_id": "cli_a"})
        == (NOW - timedelta(days=1)).timestamp()
    )


async def test_a_failed_send_is_released_and_retried_next_run(world: World) -> None:
    world.fake.fail("messages", status=500, times=3)  # the first notice, every attempt
    run = await world.run_at(1)
    assert isinstance(run, RunFailed)
    assert run.exc_type.endswith("JobIncompleteError")
    assert run.message == (
        "check_token_expiry: 1 of 5 due notices failed to send; they will be retried on the "
        "next run"
    )
    assert world.sent_to() == TITLES[1:]
    notices = await world.service.store.list_notices(day=date(2026, 12, 1))
    assert [(n.open_id, n.status) for n in notices] == [
        ("ou_r", "sent"), ("ou_w", "sent"), ("ou_x", "sent")
    ]
    assert world.counter("critical") == 0

    run = await world.run_at(9)  # 18:00: only the one that failed
    assert isinstance(run, RunSucceeded)
    assert world.sent_to() == [*TITLES[1:], TITLES[0]]
    notices = await world.service.store.list_notices(day=date(2026, 12, 1))
    assert [(n.open_id, n.status) for n in notices] == [
        ("ou_c", "sent"),
        ("ou_r", "sent"),
        ("ou_w", "sent"),
        ("ou_x", "sent"),
    ]
    assert world.counter("critical") == 1
    # The failed run was recorded in the service's own store.
    (failure,) = await world.service.store.list_failures(job_id="check_token_expiry")
    assert (failure.exc_type, failure.scheduled_at) == ("JobIncompleteError", NOW)


async def test_a_failed_summary_is_retried_next_run(world: World) -> None:
    def fail_the_summary(endpoint: str, call: int) -> None:
        if endpoint == "messages" and call == 5:
            world.fake.fail("messages", status=500, times=3)

    world.fake.hooks.append(fail_the_summary)
    run = await world.run_at(1)
    assert isinstance(run, RunFailed)
    assert world.sent_to() == TITLES[:4]
    assert await world.service.store.list_summaries() == []  # released
    run = await world.run_at(9)
    assert isinstance(run, RunSucceeded)
    assert world.sent_to() == TITLES  # the summary alone, once


async def test_an_app_without_administrator_still_notifies_its_users(world: World) -> None:
    await world.service.store.update_app("cli_a", admin_open_id=None)
    report = await world.service.check_token_expiry()
    assert [(n.kind, n.open_id, n.outcome) for n in report.notices] == [
        ("user", "ou_c", "sent"),
        ("user", "ou_r", "sent"),
        ("user", "ou_w", "sent"),
        ("user", "ou_x", "sent"),
        ("summary", None, "no_admin"),
    ]
    assert world.sent_to() == TITLES[:4]


@pytest.mark.parametrize("backend_kind", [pytest.param("sqlite", id="sqlite")])
async def test_without_oauth_the_notice_says_whom_to_ask(
    backend_kind: str, tmp_path: Path, fake_lark: FakeLark
) -> None:
    backend = ServiceBackend(backend_kind, tmp_path)
    async with running_service(backend.config(fake_lark), clock=VirtualClock(NOW)) as service:
        await add_apps(service, fake_lark, "cli_a")
        await service.store.upsert_user_token(
            UserToken(app_id="cli_a", open_id="ou_x", refresh_expires_at=NOW - timedelta(hours=1))
        )
        await service.check_token_expiry()
    user, admin = (m.content["text"] for m in fake_lark.sent)
    assert user.endswith("Ask the administrator of app App cli_a how to authorise it again.")
    assert "the service has no oauth.redirect_base_url, so it cannot send them a link" in admin


@pytest.mark.parametrize("backend_kind", [pytest.param("sqlite", id="sqlite")])
async def test_card_notices(backend_kind: str, tmp_path: Path, fake_lark: FakeLark) -> None:
    backend = ServiceBackend(backend_kind, tmp_path)
    config = backend.config(
        fake_lark,
        LARK_SCHEDULER_EXPIRY__NOTICE_FORMAT="card",
        LARK_SCHEDULER_OAUTH__REDIRECT_BASE_URL="https://lark.example.com",
    )
    clock = VirtualClock(NOW)
    async with running_service(config, clock=clock) as service:
        await add_apps(service, fake_lark, "cli_a")
        await service.store.upsert_user_token(
            UserToken(app_id="cli_a", open_id="ou_x", refresh_expires_at=NOW - timedelta(hours=1))
        )
        report = await service.check_token_expiry()
    assert [(n.kind, n.outcome) for n in report.notices] == [("user", "sent"), ("summary", "sent")]
    message, _ = fake_lark.sent
    assert (message.msg_type, message.receive_id) == ("interactive", "ou_x")
    assert message.content["header"] == {
        "title": {"tag": "plain_text", "content": "Lark authorisation expired: app App cli_a"},
        "template": "red",
    }
    assert message.content["elements"][1] == {
        "tag": "action",
        "actions": [{
            "tag": "button",
            "text": {"tag": "plain_text", "content": "Authorise again"},
            "type": "primary",
            "url": LINK,
        }],
    }


def test_a_scheduled_runs_notices_take_their_lark_uuid_from_the_job_and_its_time() -> None:
    from zoneinfo import ZoneInfo

    from actors.jobs._expiry_notices import DueNotice, admin_summary, user_notice
    from actors.jobs.token_states import expiry_status
    from actors.store import AppRecord

    at = datetime(2024, 5, 1, 1, 0, tzinfo=UTC)
    zone = ZoneInfo("Asia/Shanghai")
    app = AppRecord(app_id="cli_a", name="A", admin_open_id="ou_admin", created_at=at,
                    updated_at=at)
    token = UserToken(app_id="cli_a", open_id="ou_c", refresh_expires_at=at + timedelta(days=2))
    due = DueNotice(token=token, status=expiry_status(token.refresh_expires_at, at, 7, 3),
                    level="critical")
    day = at.astimezone(zone).date()

    def keys(run_slot: str | None) -> tuple[str | None, str | None]:
        return (user_notice(app, due, day, zone, None, run_slot=run_slot).idempotency_key,
                admin_summary(app, [due], day, zone, None, 7, run_slot=run_slot)
                .idempotency_key)

    first = keys("check_token_expiry@2024-05-01T01:00:00+00:00")
    # A repeat of the same scheduled run (a replica paused past its lease) sends the same
    # uuids: Lark delivers each notice once.
    assert keys("check_token_expiry@2024-05-01T01:00:00+00:00") == first
    # Another scheduled time, or a manual check (day-keyed), are other messages.
    assert keys("check_token_expiry@2024-05-01T10:00:00+00:00") != first
    assert keys(None) != first
    assert len(set(first)) == 2
