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
}


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


@pytest.fixture(params=BACKENDS)
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, fake_lark: FakeLark
) -> AsyncIterator[World]:
    backend = ServiceBackend(request.param, tmp_path)
    env = dict(DISABLE_OTHERS, **getattr(request, "param_env", {}))
    config = backend.config(fake_lark, **env)
    clock = VirtualClock(NOW - timedelta(hours=1))  # 08:00 in Shanghai
    try:
        async with running_service(config, clock=clock) as service:
            await add_apps(service, fake_lark, "cli_a")
            for open_id, offset in (
                ("ou_c", 2 * D),  # critical
                ("ou_v", 20 * D),  # valid: no notice
                ("ou_w", 5 * D),  # warning
                ("ou_x", -1 * D),  # expired
            ):
                await service.store.upsert_user_token(
                    UserToken(
                        app_id="cli_a",
                        open_id=open_id,
                        refresh_expires_at=NOW + timedelta(seconds=offset),
                    )
                )
            kernel = make_kernel(config, clock=clock, failure_store=service.store)
            assert [job.id for job in service.register_jobs(kernel)] == ["check_token_expiry"]
            async with kernel:
                yield World(service, kernel, clock, fake_lark)
    finally:
        await backend.cleanup()


ADMIN = "ou_admin_cli_a"
TITLES = [
    (ADMIN, "Lark authorisation expiring (critical): app App cli_a"),
    (ADMIN, "Lark authorisation expiring (warning): app App cli_a"),
    (ADMIN, "Lark authorisation expired: app App cli_a"),
]


async def test_notices_once_a_day_across_the_0900_and_1800_runs(world: World) -> None:
    run = await world.run_at(1)  # 09:00
    assert isinstance(run, RunSucceeded)
    assert world.sent_to() == TITLES
    assert world.fake.sent[0].content["text"] == (
        "Lark authorisation expiring (critical): app App cli_a\n"
        "The refresh token of user ou_c for app App cli_a (cli_a) expires on "
        "2026-12-03 09:00 CST, in 2 days. The user must authorise the app again to keep it "
        "working."
    )
    notices = await world.service.store.list_notices(day=date(2026, 12, 1))
    assert [(n.open_id, n.level, n.status) for n in notices] == [
        ("ou_c", "critical", "sent"),
        ("ou_w", "warning", "sent"),
        ("ou_x", "expired", "sent"),
    ]

    run = await world.run_at(9)  # 18:00: the same day, nothing new
    assert isinstance(run, RunSucceeded)
    assert len(world.fake.sent) == 3

    run = await world.run_at(15)  # 09:00 the next day: each due once more
    assert isinstance(run, RunSucceeded)
    assert world.sent_to() == TITLES + TITLES
    assert [world.counter(level) for level in ("warning", "critical", "expired")] == [2, 2, 2]
    assert world.service.monitor is not None
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
        "check_token_expiry: 1 of 3 due notices failed to send; they will be retried on the "
        "next run"
    )
    assert world.sent_to() == TITLES[1:]
    notices = await world.service.store.list_notices(day=date(2026, 12, 1))
    assert [(n.open_id, n.status) for n in notices] == [("ou_w", "sent"), ("ou_x", "sent")]
    assert world.counter("critical") == 0

    run = await world.run_at(9)  # 18:00: only the one that failed
    assert isinstance(run, RunSucceeded)
    assert world.sent_to() == [*TITLES[1:], TITLES[0]]
    notices = await world.service.store.list_notices(day=date(2026, 12, 1))
    assert [(n.open_id, n.status) for n in notices] == [
        ("ou_c", "sent"),
        ("ou_w", "sent"),
        ("ou_x", "sent"),
    ]
    assert world.counter("critical") == 1
    # The failed run was recorded in the service's own store.
    (failure,) = await world.service.store.list_failures(job_id="check_token_expiry")
    assert (failure.exc_type, failure.scheduled_at) == ("JobIncompleteError", NOW)


async def test_an_app_without_administrator_sends_nothing(world: World) -> None:
    await world.service.store.update_app("cli_a", admin_open_id=None)
    report = await world.service.check_token_expiry()
    assert [(n.open_id, n.outcome) for n in report.notices] == [
        ("ou_c", "no_admin"),
        ("ou_w", "no_admin"),
        ("ou_x", "no_admin"),
    ]
    assert world.fake.sent == []


@pytest.mark.parametrize("backend_kind", [pytest.param("sqlite", id="sqlite")])
async def test_card_notices(backend_kind: str, tmp_path: Path, fake_lark: FakeLark) -> None:
    backend = ServiceBackend(backend_kind, tmp_path)
    config = backend.config(fake_lark, LARK_SCHEDULER_EXPIRY__NOTICE_FORMAT="card")
    clock = VirtualClock(NOW)
    async with running_service(config, clock=clock) as service:
        await add_apps(service, fake_lark, "cli_a")
        await service.store.upsert_user_token(
            UserToken(app_id="cli_a", open_id="ou_x", refresh_expires_at=NOW - timedelta(hours=1))
        )
        report = await service.check_token_expiry()
    assert [n.outcome for n in report.notices] == ["sent"]
    (message,) = fake_lark.sent
    assert message.msg_type == "interactive"
    assert message.content["header"] == {
        "title": {"tag": "plain_text", "content": "Lark authorisation expired: app App cli_a"},
        "template": "red",
    }
