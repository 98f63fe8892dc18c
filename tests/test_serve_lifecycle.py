"""``serve``'s lifecycle in-process, with a stand-in for the Lark service: start-up lines,
readiness, and SIGTERM with running jobs finishing within the grace or cancelled after it.
(tests/test_serve_e2e.py runs the real service as a subprocess.)"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec
import pytest

from actors.cli._lifecycle import describe_start, run_service
from actors.config import Config, load_config
from actors.jobs import HealthReport
from actors.store import HealthResult
from kernel import Kernel
from kernel.failures import MemoryFailureStore
from kernel.http import AdminServer
from kernel.metrics import SchedulerMetrics

TOKEN = "lifecycle-token-0123456789abcdef"


class StandIn:
    """Registers one job that sleeps ``seconds``, and records what happened to it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.events: list[str] = []
        self.slow_started = asyncio.Event()
        self.store = MemoryFailureStore()
        checked = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)
        self.report = HealthReport(checked_at=checked, ready=True, results=(
            HealthResult(checked_at=checked, component="database", status="ok", latency=0.001),
            HealthResult(checked_at=checked, component="lark", status="not_configured",
                         detail="no active app to probe with"),
        ))

    async def slow(self) -> None:
        self.events.append("slow started")
        self.slow_started.set()
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.events.append("slow cancelled")
            raise
        self.events.append("slow finished")

    def register_jobs(self, kernel: Kernel) -> None:
        kernel.add_interval_job(self.slow, hours=6, job_id="slow")

    async def health_check(self) -> HealthReport:
        self.events.append("health checked")
        return self.report

    async def readiness(self) -> HealthReport:
        return self.report

    async def __aenter__(self) -> StandIn:
        self.events.append("opened")
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.events.append("closed")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def config(grace: float) -> Config:
    return load_config(None, {
        "LARK_SCHEDULER_HTTP__PORT": "1",  # replaced below: the test picks a free port
        "LARK_SCHEDULER_ADMIN_TOKEN": TOKEN,
        "LARK_SCHEDULER_SCHEDULER__SHUTDOWN_GRACE": str(grace),
    })


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request(url: str, method: str = "GET") -> Any:
    req = urllib.request.Request(
        url, method=method, data=b"{}" if method == "POST" else None,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as answer:
        return json.loads(answer.read())


async def serve_and_stop(stand_in: StandIn, grace: float) -> tuple[int, float]:
    cfg = config(grace)
    cfg = msgspec.structs.replace(
        cfg,
        http=msgspec.structs.replace(cfg.http, port=free_port()),
        metrics=msgspec.structs.replace(cfg.metrics, per_job_histograms=7),
    )
    started: asyncio.Future[AdminServer] = asyncio.get_running_loop().create_future()
    given: list[SchedulerMetrics] = []

    def factory(c: Config, metrics: SchedulerMetrics) -> StandIn:
        given.append(metrics)
        return stand_in

    task = asyncio.create_task(run_service(cfg, factory, started=started.set_result))
    admin = await started
    assert [m.per_job_histograms for m in given] == [7]  # metrics.per_job_histograms
    ready = await asyncio.to_thread(request, f"{admin.url}/readyz")
    assert ready == {"ready": True, "checks": [
        {"name": "kernel", "ok": True, "detail": "running"},
        {"name": "database", "ok": True, "detail": "ok (checked 2026-11-29T22:00:00Z)"},
        {"name": "lark", "ok": True, "detail": "not configured: no active app to probe with "
                                              "(checked 2026-11-29T22:00:00Z)"},
    ]}
    await asyncio.to_thread(request, f"{admin.url}/jobs/slow/run", "POST")
    await asyncio.wait_for(stand_in.slow_started.wait(), 5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    os.kill(os.getpid(), signal.SIGTERM)
    code = await asyncio.wait_for(task, 10)
    return code, loop.time() - t0


async def test_sigterm_lets_a_running_job_finish_within_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    stand_in = StandIn(seconds=0.3)
    code, took = await serve_and_stop(stand_in, grace=10)
    assert code == 0
    assert 0.2 < took < 5
    assert stand_in.events == [
        "opened", "health checked", "slow started", "slow finished", "closed"
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[5:8] == [
        "Health: database ok",
        "Health: lark not configured (no active app to probe with)",
        "Scheduler started (timezone=Asia/Shanghai, 1 job(s), defaults: coalesce=True "
        "max_instances=1 misfire_grace_time=60.0)",
    ]
    assert sum("succeeded" in m for m in messages) == 1
    assert (
        "Received SIGTERM: no new runs; waiting up to 10 s for 1 running job(s), then "
        "cancelling them (send it again to exit at once)"
    ) in messages
    assert messages[-1] == "Stopped cleanly"


async def test_sigterm_cancels_a_job_still_running_after_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    stand_in = StandIn(seconds=60)
    code, took = await serve_and_stop(stand_in, grace=0.5)
    assert code == 0
    assert 0.4 < took < 5
    assert stand_in.events == [
        "opened", "health checked", "slow started", "slow cancelled", "closed"
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Job slow (run ") and " cancelled after " in m for m in messages)


@pytest.mark.parametrize(
    ("env", "lines"),
    [
        ({}, [
            "Configuration: no file: defaults + environment",
            "Mode: single process (schedule state kept in the store's SQLite file across "
            "restarts; set cluster.enabled = true for replicas)",
            "Store: embedded SQLite database ./data/lark-scheduler.db (no server needed)",
            "RabbitMQ: not configured (set rabbitmq.url to enable its health check)",
            "Lark API: https://open.feishu.cn",
        ]),
        ({"DATABASE_URL": "postgresql://lark:pw@db:5432/lark",
          "LARK_SCHEDULER_RABBITMQ__URL": "amqp://guest:pw@mq:5672/"}, [
            "Configuration: no file: defaults + environment",
            "Mode: single process (schedule state kept in PostgreSQL, schema lark_scheduler, "
            "across restarts; set cluster.enabled = true for replicas)",
            "Store: PostgreSQL postgresql://lark:***@db:5432/lark (schema public)",
            "RabbitMQ: amqp://guest:***@mq:5672/",
            "Lark API: https://open.feishu.cn",
        ]),
        ({"DATABASE_URL": "postgresql://lark:pw@db:5432/lark",
          "LARK_SCHEDULER_RABBITMQ__URL": "amqp://guest:pw@mq:5672/",
          "LARK_SCHEDULER_CLUSTER__ENABLED": "true",
          "LARK_SCHEDULER_CLUSTER__REPLICA_ID": "web-1",
          "LARK_SCHEDULER_CLUSTER__EXECUTOR": "rabbitmq"}, [
            "Configuration: no file: defaults + environment",
            "Mode: cluster replica web-1 (jobs and claims in PostgreSQL "
            "postgresql://lark:***@db:5432/lark, schema lark_scheduler; lease 15 s; built-in "
            "jobs run on RabbitMQ workers (queue lark_scheduler.runs))",
            "Store: PostgreSQL postgresql://lark:***@db:5432/lark (schema public)",
            "RabbitMQ: amqp://guest:***@mq:5672/",
            "Lark API: https://open.feishu.cn",
        ]),
    ],
    ids=["nothing-configured", "servers-configured-passwords-hidden", "cluster-replica"],
)
def test_the_first_lines_say_what_is_configured(env: dict[str, str], lines: list[str]) -> None:
    assert describe_start(load_config(None, env), None) == lines


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"},
         "lark-scheduler: error: cannot start: store: PostgreSQL at "
         "postgresql://postgres@127.0.0.1:1/x (schema public) is unavailable"),
        ({"LARK_SCHEDULER_HTTP__PORT": "{busy}"},
         "lark-scheduler: error: http.port {busy} on 127.0.0.1: cannot listen (Address "
         "already in use); choose another with http.port or LARK_SCHEDULER_HTTP__PORT"),
    ],
    ids=["store-unreachable", "port-in-use"],
)
def test_serve_that_cannot_start_says_why_in_one_line(
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    from actors.cli import main

    for name in list(os.environ):
        if name.startswith("LARK_SCHEDULER_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for name, value in env.items():
            monkeypatch.setenv(name, value.format(busy=port))
        assert main(["serve"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(message.format(busy=port))


@pytest.mark.parametrize("freeze", [True, False])
async def test_serve_freezes_start_up_out_of_the_collector_only_when_asked(
    freeze: bool,
) -> None:
    # serve passes freeze_gc=True (it owns the process); an embedding caller keeps its GC.
    assert gc.get_freeze_count() == 0
    cfg = config(1.0)
    cfg = msgspec.structs.replace(cfg, http=msgspec.structs.replace(cfg.http, port=free_port()))
    frozen: list[int] = []

    def started(admin: AdminServer) -> None:
        frozen.append(gc.get_freeze_count())
        os.kill(os.getpid(), signal.SIGTERM)

    code = await asyncio.wait_for(
        run_service(cfg, lambda c, m: StandIn(0.0), started=started, freeze_gc=freeze), 10
    )
    assert code == 0
    assert len(frozen) == 1
    if freeze:
        # The kernel, its job, the server and every module: thousands of objects.
        assert frozen[0] > 10_000
    else:
        assert frozen[0] == 0
    assert gc.get_freeze_count() == 0  # unfrozen when the service stops


def test_the_serve_command_asks_for_the_freeze(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from actors.cli import _serve

    seen: dict[str, Any] = {}

    async def fake_run_service(*args: Any, **kwargs: Any) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(_serve, "run_service", fake_run_service)
    monkeypatch.setenv("LARK_SCHEDULER_ADMIN_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    assert _serve.serve(argparse.Namespace(config=None)) == 0
    assert seen["freeze_gc"] is True
