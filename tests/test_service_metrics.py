"""What the whole service exports on /metrics: the seed's metric names, the token expiry in
base units (``token_expiry_timestamp_seconds``), and an exposition ``promtool check metrics``
finds nothing wrong with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from actors.service import LarkService, make_kernel
from actors.store import UserToken
from kernel.metrics import SchedulerMetrics
from kernel.testing import VirtualClock
from tests._service_support import ServiceBackend, add_apps, fake_factory
from tests.fake_lark import FakeLark
from tests.lark_helpers import SleepRecorder
from tests.promtext import parse

pytestmark = pytest.mark.anyio

DAY = 86400.0
START = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)


async def render_after_checks(tmp_path: Path, fake: FakeLark) -> tuple[bytes, float]:
    """The service's exposition after one health check and one expiry check."""
    config = ServiceBackend("sqlite", tmp_path).config(fake)
    clock = VirtualClock(START)
    metrics = SchedulerMetrics(version="test")
    service = LarkService(
        config,
        clock=clock,
        registry=metrics.registry,
        lark_client_factory=fake_factory(SleepRecorder()),
    )
    async with service:
        kernel = make_kernel(config, clock=clock, failure_store=service.store)
        metrics.attach(kernel)
        service.register_jobs(kernel)
        await add_apps(service, fake, "cli_a", "cli_b")
        soonest = START + timedelta(days=5)
        for app_id, open_id, expires in (
            ("cli_a", "ou_1", soonest),
            ("cli_a", "ou_2", soonest + timedelta(days=20)),
            ("cli_b", "ou_3", soonest + timedelta(days=35)),
        ):
            await service.store.upsert_user_token(
                UserToken(app_id=app_id, open_id=open_id, refresh_expires_at=expires)
            )
        async with kernel:  # started: its jobs are exported from the first scrape
            await service.health_check()
            await service.check_token_expiry()
            return metrics.render(), soonest.timestamp()


async def test_the_token_expiry_is_exported_in_seconds_since_the_epoch(
    tmp_path: Path, fake_lark: FakeLark
) -> None:
    text, soonest = await render_after_checks(tmp_path, fake_lark)
    samples = parse(text.decode())
    expiry = {
        dict(labels)["app_id"]: value
        for (name, labels), value in samples.items()
        if name == "token_expiry_timestamp_seconds"
    }
    assert expiry == {"cli_a": soonest, "cli_b": soonest + 35 * DAY}
    names = {name for name, _ in samples}
    assert "token_days_to_expiry" not in names
    # The seed's names, as its document shows them.
    assert {"scheduled_task_executions_total", "scheduled_task_duration_seconds_bucket"} <= names


@pytest.mark.prometheus
async def test_the_whole_exposition_passes_promtool_check_metrics(
    tmp_path: Path, fake_lark: FakeLark
) -> None:
    text, _ = await render_after_checks(tmp_path, fake_lark)
    with anyio.fail_after(30):
        result = await anyio.run_process(["promtool", "check", "metrics"], input=text, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


async def test_an_app_without_tokens_any_more_loses_its_series(
    tmp_path: Path, fake_lark: FakeLark
) -> None:
    config = ServiceBackend("sqlite", tmp_path).config(fake_lark)
    clock = VirtualClock(START)
    service = LarkService(config, clock=clock, lark_client_factory=fake_factory(SleepRecorder()))
    async with service:
        await add_apps(service, fake_lark, "cli_a", "cli_b")
        for app_id in ("cli_a", "cli_b"):
            await service.store.upsert_user_token(
                UserToken(
                    app_id=app_id, open_id="ou_1", refresh_expires_at=START + timedelta(days=1)
                )
            )
        await service.check_token_expiry()
        assert service.monitor is not None
        gauge = service.monitor.expiry_gauge
        assert sorted(labels["app_id"] for labels, _ in gauge.get_all()) == ["cli_a", "cli_b"]
        await service.store.disable_app("cli_b")  # or its tokens were cleaned up
        await service.check_token_expiry()
        assert [labels["app_id"] for labels, _ in gauge.get_all()] == ["cli_a"]
