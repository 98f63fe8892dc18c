"""End to end: ``lark-scheduler serve`` as a subprocess on the embedded store with the fake
Lark server; apps registered, jobs listed and run through the CLI, users synced into the
store, metrics scraped, and SIGTERM during a long job exiting cleanly within the grace.

The "long job" is a real ``sync_user_info`` whose Lark server stops answering (the fake
server's process is paused with SIGSTOP), so the run is stuck in an HTTP request.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actors.store import open_store
from tests._fake_lark_process import fake_lark_process
from tests.fake_lark import FAKE_APP_ID, FAKE_APP_SECRET

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "e2e-admin-token-0123456789abcdef"
USERS = 7


class Process:
    """A child process whose stderr (the service's log) is collected line by line."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 15) -> str:
        """The first log line containing ``text`` (waiting for it)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    log = "\n".join(self.lines)
                    raise AssertionError(f"no log line with {text!r}; the log:\n{log}")
                self._changed.wait(min(left, 0.1))

    @property
    def log(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def fake_lark_url() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with fake_lark_process(USERS) as served:
        yield served


def service_env(tmp_path: Path, lark_url: str, port: int, grace: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LARK_") and k != "DATABASE_URL"}
    env.update({
        "PYTHONPATH": str(ROOT),
        "LARK_SCHEDULER_LARK__BASE_URL": lark_url,
        # Longer than the test: a stalled Lark request hangs until the service is stopped.
        "LARK_SCHEDULER_LARK__TIMEOUT": "60",
        "LARK_SCHEDULER_HTTP__PORT": str(port),
        "LARK_SCHEDULER_ADMIN_TOKEN": TOKEN,
        "LARK_SCHEDULER_SCHEDULER__SHUTDOWN_GRACE": str(grace),
        "LARK_SCHEDULER_OAUTH__REDIRECT_BASE_URL": f"http://127.0.0.1:{port}",
    })
    return env


def cli(env: dict[str, str], cwd: Path, *argv: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "actors.cli", *argv],
        env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    assert FAKE_APP_SECRET not in done.stdout + done.stderr
    return done.stdout


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


def running(env: dict[str, str], cwd: Path, job_id: str) -> int:
    jobs = json.loads(cli(env, cwd, "jobs", "list", "--json"))["jobs"]
    (job,) = [j for j in jobs if j["id"] == job_id]
    count: int = job["running"]
    return count


def wait_until(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def stored_users(db: Path) -> list[tuple[str, bool]]:
    async def read() -> list[tuple[str, bool]]:
        async with await open_store(f"sqlite:///{db}") as store:
            return [(u.open_id, u.active) for u in await store.list_users(FAKE_APP_ID)]

    return asyncio.run(read())


def test_serve_end_to_end(
    tmp_path: Path, fake_lark_url: tuple[str, subprocess.Popen[str]]
) -> None:
    lark_url, fake = fake_lark_url
    port = free_port()
    env = service_env(tmp_path, lark_url, port, grace=1)
    base = f"http://127.0.0.1:{port}"
    serve = Process([sys.executable, "-m", "actors.cli", "serve"], env, tmp_path)
    try:
        # No configuration: the embedded store in ./data, RabbitMQ and Lark not configured.
        serve.wait_for("Scheduler started")
        first = serve.lines[: serve.lines.index(serve.wait_for("Scheduler started"))]
        assert any("Store: embedded SQLite database ./data/lark-scheduler.db" in x for x in first)
        assert any("RabbitMQ: not configured" in x for x in first)
        assert any("Health: lark not configured (no active app to probe with)" in x
                   for x in first)
        serve.wait_for(f"Admin API listening on {base}")
        assert get(f"{base}/healthz") == (200, '{"status":"ok"}')

        # Users' authorization is served next to the admin API.
        assert any(f"OAuth: users authorise an app at {base}/oauth/<app_id>/authorize; "
                   f"register {base}/oauth/callback as a redirect URL" in x for x in serve.lines)
        status, page = get(f"{base}/oauth/{FAKE_APP_ID}/authorize")
        assert (status, 'data-problem="unknown_app"' in page) == (404, True)
        status, body = get(f"{base}/tokens/{FAKE_APP_ID}/ou_someone")
        assert (status, json.loads(body)["error"]["code"]) == (401, "unauthorized")

        added = cli(env, tmp_path, "apps", "add", FAKE_APP_ID, "--name", "Fake",
                    "--admin", "ou_admin", "--secret-stdin", stdin=FAKE_APP_SECRET + "\n")
        assert added == f"app {FAKE_APP_ID} (Fake) registered: active, administrator ou_admin\n"

        listing = cli(env, tmp_path, "jobs", "list").splitlines()
        assert [row.split()[0] for row in listing[1:]] == [
            "sync_user_info", "check_token_expiry", "cleanup_expired_tokens", "health_check"
        ]

        out = cli(env, tmp_path, "jobs", "run", "sync_user_info")
        assert out.startswith("started run ")
        assert out.endswith(" of job sync_user_info\n")
        line = serve.wait_for("Job sync_user_info (run ")
        assert "succeeded" in line, serve.log
        users = stored_users(tmp_path / "data" / "lark-scheduler.db")
        assert len(users) == USERS
        assert all(active for _, active in users)

        # A failing run: an app whose secret Lark refuses. The seed's troubleshooting steps
        # find it in the log, and the CLI lists and retries it.
        cli(env, tmp_path, "apps", "add", "cli_wrong", "--secret-stdin", stdin="not-the-secret")
        cli(env, tmp_path, "jobs", "run", "sync_user_info")
        failed = serve.wait_for("Failed scheduled task sync_user_info")
        after = serve.lines[serve.lines.index(failed): serve.lines.index(failed) + 21]
        assert any("JobIncompleteError" in x and "cli_wrong" in x for x in after), after
        (record,) = json.loads(cli(env, tmp_path, "failures", "list", "--json"))["failures"]
        assert record["job_id"] == "sync_user_info"
        assert record["exc_type"].endswith("JobIncompleteError")
        retried = cli(env, tmp_path, "failures", "retry", record["id"])
        assert retried.endswith(f"of job sync_user_info (failure {record['id']})\n")
        wait_until(lambda: len(json.loads(cli(env, tmp_path, "failures", "list", "--json"))[
            "failures"]) == 2)
        show = cli(env, tmp_path, "failures", "show", record["id"])
        assert "retry         run " in show
        cli(env, tmp_path, "apps", "disable", "cli_wrong")

        status, metrics = get(f"{base}/metrics")
        assert status == 200
        lines = metrics.splitlines()
        executions = 'scheduled_task_executions_total{{status="{}",task_name="sync_user_info"}} {}'
        assert executions.format("success", 1) in lines
        assert executions.format("failure", 2) in lines
        assert 'scheduled_task_duration_seconds_count{task_name="sync_user_info"} 3' in lines
        assert 'scheduled_task_retries_total{task_name="sync_user_info"} 1' in lines
        assert "scheduler_up 1" in lines
        status, ready = get(f"{base}/readyz")
        assert status == 200
        assert [c["name"] for c in json.loads(ready)["checks"]] == [
            "kernel", "database", "rabbitmq", "lark"
        ]

        # A long job: Lark stops answering in the middle of the next sync.
        os.kill(fake.pid, signal.SIGSTOP)
        cli(env, tmp_path, "jobs", "run", "sync_user_info")
        wait_until(lambda: running(env, tmp_path, "sync_user_info") == 1)
        t0 = time.monotonic()
        serve.proc.send_signal(signal.SIGTERM)
        code = serve.proc.wait(15)
        took = time.monotonic() - t0
        assert code == 0, serve.log
        assert 1 <= took < 1 + 2, took  # the grace (1 s), and not much more
        serve.wait_for("Received SIGTERM: no new runs; waiting up to 1 s for 1 running job(s)")
        serve.wait_for("Job sync_user_info (run ")
        assert " cancelled after " in serve.log
        serve.wait_for("Stopped cleanly")
    finally:
        serve.stop()
    # Nothing half-written: the database is intact and the cancelled sync changed nothing.
    db = tmp_path / "data" / "lark-scheduler.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    assert len(stored_users(db)) == USERS
    assert FAKE_APP_SECRET not in serve.log


def test_a_second_signal_exits_at_once(
    tmp_path: Path, fake_lark_url: tuple[str, subprocess.Popen[str]]
) -> None:
    lark_url, fake = fake_lark_url
    port = free_port()
    env = service_env(tmp_path, lark_url, port, grace=60)
    cli(env, tmp_path, "apps", "add", FAKE_APP_ID, "--secret-stdin", stdin=FAKE_APP_SECRET)
    serve = Process([sys.executable, "-m", "actors.cli", "serve"], env, tmp_path)
    try:
        serve.wait_for("Admin API listening on")
        os.kill(fake.pid, signal.SIGSTOP)
        cli(env, tmp_path, "jobs", "run", "sync_user_info")
        wait_until(lambda: running(env, tmp_path, "sync_user_info") == 1)
        serve.proc.send_signal(signal.SIGTERM)
        serve.wait_for("waiting up to 60 s for 1 running job(s)")
        t0 = time.monotonic()
        serve.proc.send_signal(signal.SIGINT)
        assert serve.proc.wait(10) == 128 + signal.SIGINT
        assert time.monotonic() - t0 < 5
        serve.wait_for("Second SIGINT: exiting at once")
    finally:
        serve.stop()
