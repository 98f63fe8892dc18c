"""``lark-scheduler worker`` against the machine's RabbitMQ and PostgreSQL: a replica with
``cluster.executor = "rabbitmq"`` publishes ``health_check`` (every second) and the worker
process runs it; SIGTERM during a run lets it finish within the grace and exits 0.

The "long run" is a health check whose Lark probe hangs: the fake Lark server's process is
paused with SIGSTOP (the probe then takes ``health.timeout``, 2 s). Real time is
unavoidable here (processes, real servers): the test runs about 15 s.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._cluster_support import Cluster
from tests._fake_lark_process import fake_lark_process
from tests.conftest import RABBITMQ_URL
from tests.fake_lark import FAKE_APP_ID, FAKE_APP_SECRET
from tests.test_serve_e2e import Process, cli, free_port, get, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]


@pytest.fixture
def fake_and_cluster(tmp_path: Path) -> Iterator[tuple[int, Cluster]]:
    with fake_lark_process(3) as (url, fake):
        cluster = Cluster(tmp_path, url)
        try:
            yield fake.pid, cluster
        finally:
            cluster.cleanup(queue=True)


@pytest.mark.parametrize(
    ("grace", "after_sigterm", "stuck_outcome"),
    [
        pytest.param("10", "Stopped cleanly", True, id="run-finishes-within-grace"),
        pytest.param("0.5", "Shutdown grace of 0.5 s is over: cancelled 1 run(s); RabbitMQ "
                     "hands them to another worker once their claim's lease is over", False,
                     id="run-cancelled-after-grace"),
    ],
)
def test_the_worker_runs_published_jobs_and_stops_gracefully(
    fake_and_cluster: tuple[int, Cluster], grace: str, after_sigterm: str, stuck_outcome: bool,
) -> None:
    fake_pid, cluster = fake_and_cluster
    common = {
        "LARK_SCHEDULER_RABBITMQ__URL": RABBITMQ_URL,
        "LARK_SCHEDULER_CLUSTER__EXECUTOR": "rabbitmq",
        "LARK_SCHEDULER_HEALTH__TIMEOUT": "2",
        "LARK_SCHEDULER_JOBS__HEALTH_CHECK__SECONDS": "1",
    }
    cwd = cluster.tmp_path
    worker_env = cluster.env(**common, LARK_SCHEDULER_SCHEDULER__SHUTDOWN_GRACE=grace)
    cli(worker_env, cwd, "apps", "add", FAKE_APP_ID, "--secret-stdin",
        stdin=FAKE_APP_SECRET + "\n")
    worker = Process([sys.executable, "-m", "actors.cli", "worker", "--id", "w1",
                      "--prefetch", "1"], worker_env, cwd)
    port = free_port()
    replica = Process(
        [sys.executable, "-m", "actors.cli", "serve"],
        cluster.env(**common, LARK_SCHEDULER_HTTP__PORT=str(port),
                    LARK_SCHEDULER_CLUSTER__REPLICA_ID="r1",
                    LARK_SCHEDULER_SCHEDULER__SHUTDOWN_GRACE="1"),
        cwd,
    )
    try:
        mode = worker.wait_for("Mode: worker w1", timeout=30)
        assert f"for queue {cluster.queue} on amqp://guest:***@127.0.0.1:5672/" in mode
        worker.wait_for(f"Worker w1 consuming {cluster.queue} (prefetch 1)")
        line = replica.wait_for("Mode: cluster replica r1", timeout=30)
        assert line.endswith(f"built-in jobs run on RabbitMQ workers (queue {cluster.queue}))")

        def claims(where: str = "true") -> list[dict[str, object]]:
            rows = cluster.query(cluster.schema, "SELECT scheduled_at, replica, state, worker, "
                                 f"started_at < now() - interval '0.5 s' AS old FROM claims "
                                 f"WHERE {where} ORDER BY scheduled_at")
            return [dict(row) for row in rows]

        wait_until(lambda: len(claims("state = 'succeeded'")) >= 3, timeout=20)
        assert worker.log.count("Running job health_check") >= 3
        status, ready = get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200, ready
        assert [c["name"] for c in json.loads(ready)["checks"]] == [
            "kernel", "database", "rabbitmq", "lark", "postgres", "job-changes",
            "executor:rabbitmq"]

        # A run that hangs on Lark: SIGTERM lets it finish (the probe times out at 2 s).
        os.kill(fake_pid, signal.SIGSTOP)
        try:
            wait_until(lambda: any(c["old"] for c in claims("state = 'running'")), timeout=10)
            (stuck,) = claims("state = 'running'")
            assert stuck["worker"] == "w1"
            t0 = time.monotonic()
            worker.proc.send_signal(signal.SIGTERM)
            assert worker.proc.wait(15) == 0, worker.log
            assert time.monotonic() - t0 < 5
        finally:
            os.kill(fake_pid, signal.SIGCONT)
        worker.wait_for(f"Received SIGTERM: taking no new runs; waiting up to {grace} s")
        worker.wait_for(after_sigterm)
        worker.wait_for("Stopped cleanly")
        # Finished: its outcome is stored. Cancelled: none is, so another worker may run it.
        outcome = cluster.query(cluster.schema, "SELECT worker_outcome IS NOT NULL AS done "
                                "FROM claims WHERE scheduled_at = $1", stuck["scheduled_at"])
        assert outcome[0]["done"] is stuck_outcome, worker.log

        replica.proc.send_signal(signal.SIGTERM)
        assert replica.proc.wait(15) == 0, replica.log
    finally:
        worker.stop()
        replica.stop()

    ran = claims("state = 'succeeded'")
    assert {(c["replica"], c["worker"]) for c in ran} == {("r1", "w1")}
    # Every run the worker started succeeded, except the one cancelled at its grace.
    assert worker.log.count("Running job health_check") == len(ran) + (not stuck_outcome)
