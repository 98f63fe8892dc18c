"""Nothing lost across a restart: ``lark-scheduler serve`` killed with SIGKILL while jobs
run, and started again, on the embedded SQLite store and on PostgreSQL.

The wall clock of each ``serve`` process is set with ``faketime`` (libfaketime: the
process's clock starts at the given time and runs on), so a minute boundary falls in the
downtime without waiting for one. ``check_token_expiry`` runs every minute; a
``sync_user_info`` run is kept in flight by pausing the fake Lark server (SIGSTOP), as in
``test_serve_e2e.py``. One scenario, three processes:

1. Up at 10:00:05: the interval job's grid is read; a sync is started and stuck; SIGKILL.
2. Up at 10:01:10: the 10:01:00 fire (in the downtime, within the 60 s grace) runs once,
   late; the stuck sync is recorded interrupted with a failure record; the interval job
   is still on the first process's grid. SIGKILL once the late run succeeded.
3. Up at 10:02:30 with a 10 s grace: 10:01:00 does not run again; 10:02:00 is 30 s late,
   so it is missed: logged and counted in ``scheduled_task_missed_total``.
Finally the SQLite file passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import POSTGRES_DSN
from tests.fake_lark import FAKE_APP_ID, FAKE_APP_SECRET
from tests.test_serve_e2e import (
    Process,
    cli,
    fake_lark_url,
    free_port,
    get,
    running,
    service_env,
    wait_until,
)


def _libfaketime() -> str | None:
    # Preloaded into the serve process itself (the faketime command would stand between
    # it and our SIGKILL).
    for path in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/faketime/libfaketime.so.1"):
        if os.path.exists(path):
            return path
    return None


LIBFAKETIME = _libfaketime()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(LIBFAKETIME is None and os.environ.get("CI") != "true",
                       reason="needs libfaketime (Debian package 'faketime')"),
]

__all__ = ("fake_lark_url",)  # the fixture, used by name

DAY = "2026-01-01"
JOB = "check_token_expiry"


def _line(serve: Process, pattern: str) -> re.Match[str] | None:
    for line in serve.lines:
        found = re.search(pattern, line)
        if found:
            return found
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Environment for the store: the SQLite default, or PostgreSQL in fresh schemas."""
    if request.param == "sqlite":
        yield {}
        return
    suffix = uuid.uuid4().hex[:10]
    store, state = f"test_rs_store_{suffix}", f"test_rs_state_{suffix}"
    yield {"LARK_SCHEDULER_STORE__URL": POSTGRES_DSN, "LARK_SCHEDULER_STORE__SCHEMA": store,
           "LARK_SCHEDULER_CLUSTER__SCHEMA": state}

    async def drop() -> None:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            for schema in (store, state):
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def test_nothing_is_lost_across_sigkill_and_restart(
    tmp_path: Path, fake_lark_url: tuple[str, subprocess.Popen[str]], backend: dict[str, str],
) -> None:
    lark_url, fake = fake_lark_url
    port = free_port()
    env = service_env(tmp_path, lark_url, port, grace=1)
    env.update(backend)
    env[f"LARK_SCHEDULER_JOBS__{JOB.upper()}__CRON"] = "* * * * *"
    cli(env, tmp_path, "apps", "add", FAKE_APP_ID, "--secret-stdin", stdin=FAKE_APP_SECRET)

    def serve(at: str, **extra: str) -> Process:
        assert LIBFAKETIME is not None, "install Debian's faketime package"
        fake_clock = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": f"@{DAY} {at}"}
        argv = [sys.executable, "-m", "actors.cli", "serve"]
        process = Process(argv, {**env, **extra, **fake_clock}, tmp_path)
        process.wait_for("Admin API listening on", timeout=40)
        return process

    def jobs() -> dict[str, dict[str, object]]:
        return {j["id"]: j for j in json.loads(cli(env, tmp_path, "jobs", "list", "--json"))[
            "jobs"]}

    # 1. Up at 10:00:05; a sync is stuck in flight when the process is killed.
    first = serve("10:00:05")
    try:
        grid = jobs()["sync_user_info"]["next_run_time"]
        os.kill(fake.pid, signal.SIGSTOP)
        cli(env, tmp_path, "jobs", "run", "sync_user_info")
        wait_until(lambda: running(env, tmp_path, "sync_user_info") == 1)
        assert _line(first, f"Running job {JOB} ") is None, "a minute passed: too slow"
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.stop()
        os.kill(fake.pid, signal.SIGCONT)

    # 2. Up at 10:01:10: the 10:01:00 fire runs once, late; the sync was interrupted.
    second = serve("10:01:10")
    try:
        line = second.wait_for(f"Running job {JOB} (run ")
        found = re.search(r"scheduled (\S+), late ([\d.]+) s", line)
        assert found is not None, line
        assert found[1] == f"{DAY}T10:01:00+00:00", line
        assert 10 <= float(found[2]) < 60, line
        run_id = line.split("(run ")[1].split(",")[0]
        second.wait_for(f"Job {JOB} (run {run_id}) succeeded")
        second.wait_for("of job sync_user_info (scheduled manual, started ")
        assert "was interrupted: the process stopped while it ran" in second.log
        failures = json.loads(cli(env, tmp_path, "failures", "list", "--json"))["failures"]
        interrupted = [f for f in failures if f["exc_type"] == "Interrupted"]
        assert [f["job_id"] for f in interrupted] == ["sync_user_info"], failures
        # The interval job is still on the grid the first process started.
        assert jobs()["sync_user_info"]["next_run_time"] == grid
        assert len(re.findall(f"Running job {JOB} ", second.log)) == 1, second.log
        second.proc.send_signal(signal.SIGKILL)
        second.proc.wait(10)
    finally:
        second.stop()

    # 3. Up at 10:02:30 with a 10 s grace: 10:01:00 ran already; 10:02:00 is missed.
    third = serve("10:02:30", LARK_SCHEDULER_SCHEDULER__MISFIRE_GRACE_TIME="10")
    try:
        third.wait_for(f"Run of job {JOB} scheduled at {DAY} 10:02:00+00:00 was missed by ")
        assert _line(third, f"Running job {JOB} ") is None, third.log
        status, metrics = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert f'scheduled_task_missed_total{{task_name="{JOB}"}} 1' in metrics.splitlines()
        # Nothing more was interrupted: the second process's runs all ended.
        assert "was interrupted" not in third.log
        third.proc.send_signal(signal.SIGTERM)
        assert third.proc.wait(15) == 0, third.log
    finally:
        third.stop()

    if not backend:
        db = tmp_path / "data" / "lark-scheduler.db"
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert conn.execute("SELECT count(*) FROM schedule_runs").fetchone() == (0,)
        conn.close()
