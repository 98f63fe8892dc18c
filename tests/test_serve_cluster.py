"""``lark-scheduler serve`` as two replicas (subprocesses) on the machine's PostgreSQL, with
the fake Lark server: each scheduled time of ``health_check`` (every second) runs on exactly
one of them, either one answers the CLI, and SIGTERM stops both cleanly.

Real time is unavoidable (processes, a real database): the test runs about 15 s.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests._cluster_support import Cluster
from tests._fake_lark_process import fake_lark_process
from tests.fake_lark import FAKE_APP_ID, FAKE_APP_SECRET
from tests.test_serve_e2e import Process, cli, free_port, get, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

USERS = 5
JOBS = ["sync_user_info", "check_token_expiry", "cleanup_expired_tokens", "health_check"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with fake_lark_process(USERS) as (url, _fake):
        cluster = Cluster(tmp_path, url)
        try:
            yield cluster
        finally:
            cluster.cleanup()


def start(cluster: Cluster, name: str) -> tuple[Process, dict[str, str]]:
    env = cluster.env(
        LARK_SCHEDULER_HTTP__PORT=str(free_port()),
        LARK_SCHEDULER_CLUSTER__REPLICA_ID=name,
        LARK_SCHEDULER_JOBS__HEALTH_CHECK__SECONDS="1",
    )
    return Process([sys.executable, "-m", "actors.cli", "serve"], env, cluster.tmp_path), env


def test_two_replicas_run_each_scheduled_time_once(cluster: Cluster) -> None:
    (a, env_a), (b, env_b) = start(cluster, "a"), start(cluster, "b")
    try:
        for replica, name in ((a, "a"), (b, "b")):
            replica.wait_for("Admin API listening", timeout=30)
            first = replica.lines[: replica.lines.index(replica.wait_for("Scheduler started"))]
            assert any(f"Mode: cluster replica {name} (jobs and claims in PostgreSQL " in line
                       and f"schema {cluster.schema}; lease 3 s" in line for line in first)
        cwd = cluster.tmp_path
        cli(env_a, cwd, "apps", "add", FAKE_APP_ID, "--secret-stdin",
            stdin=FAKE_APP_SECRET + "\n")

        # Either replica lists the four built-in jobs, stored once.
        for env in (env_a, env_b):
            listed = json.loads(cli(env, cwd, "jobs", "list", "--json"))["jobs"]
            assert [job["id"] for job in listed] == JOBS
        stored = cluster.query(cluster.schema, "SELECT id, func_ref, executor FROM jobs "
                               "ORDER BY id")
        assert sorted((r["id"], r["func_ref"], r["executor"]) for r in stored) == sorted(
            (job, f"actors.builtin:{job}", "local") for job in JOBS)

        # A change through one replica reaches the other.
        cli(env_a, cwd, "jobs", "pause", "cleanup_expired_tokens")

        def paused_on_b() -> bool:
            listed = json.loads(cli(env_b, cwd, "jobs", "list", "--json"))["jobs"]
            return any(job["id"] == "cleanup_expired_tokens" and job["paused"] for job in listed)

        wait_until(paused_on_b, timeout=5)

        # A manual run through replica b reaches the fake Lark and the shared store.
        assert cli(env_b, cwd, "jobs", "run", "sync_user_info").startswith("started run ")
        b.wait_for("Job sync_user_info (run ")
        users = cluster.query(cluster.store_schema, "SELECT count(*) AS n FROM users")
        assert users[0]["n"] == USERS

        status, ready = get(f"http://127.0.0.1:{env_a['LARK_SCHEDULER_HTTP__PORT']}/readyz")
        assert status == 200, ready
        assert [c["name"] for c in json.loads(ready)["checks"]] == [
            "kernel", "database", "rabbitmq", "lark", "postgres", "job-changes"]

        def claimed() -> int:
            return len(cluster.query(cluster.schema, "SELECT 1 FROM claims"))

        wait_until(lambda: claimed() >= 6, timeout=20)
        for replica in (a, b):
            replica.proc.send_signal(signal.SIGTERM)
        for replica in (a, b):
            assert replica.proc.wait(15) == 0, replica.log
            replica.wait_for("Stopped cleanly")
    finally:
        a.stop()
        b.stop()

    claims = cluster.query(cluster.schema, "SELECT job_id, scheduled_at, replica, state "
                           "FROM claims ORDER BY scheduled_at")
    assert {c["job_id"] for c in claims} == {"health_check"}
    assert {c["state"] for c in claims} == {"succeeded"}
    assert {c["replica"] for c in claims} <= {"a", "b"}
    times = [c["scheduled_at"] for c in claims]
    assert [later - earlier for earlier, later in itertools.pairwise(times)] == \
        [timedelta(seconds=1)] * (len(times) - 1)  # no time skipped
    # Each health check records one row per component at one time: the two start-up checks
    # plus exactly one per claimed scheduled time.
    checks = cluster.query(cluster.store_schema, "SELECT DISTINCT checked_at FROM health_results")
    assert len(checks) == len(claims) + 2
    ran = {name: sum("Running job health_check" in line for line in proc.lines)
           for name, proc in (("a", a), ("b", b))}
    assert ran == {name: sum(c["replica"] == name for c in claims) for name in ("a", "b")}


def test_a_replica_that_cannot_reach_its_database_says_so(cluster: Cluster) -> None:
    env = cluster.env(LARK_SCHEDULER_CLUSTER__DATABASE_URL="postgresql://postgres@127.0.0.1:1/x",
                      LARK_SCHEDULER_HTTP__PORT=str(free_port()))
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "actors.cli", "serve"], env=env,
                          cwd=cluster.tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("lark-scheduler: error: cannot start: cluster.database_url "
                           "postgresql://postgres@127.0.0.1:1/x (schema "), last
    assert time.monotonic() - started < 45
