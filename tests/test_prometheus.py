"""Checked against the real thing: promtool on the rules, and a real Prometheus scraping a
running kernel through the admin API (real time: an integration test, not a timing test)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioprometheus.collectors import Counter, Gauge

from kernel import Kernel
from kernel.events import JobAdded, RunSkipped, RunStarted, RunSucceeded
from kernel.http import AdminServer
from kernel.metrics import SchedulerMetrics

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.slow,
    pytest.mark.usefixtures("anyio_backend"),
]

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
TOKEN = "prometheus-test-token-0123456789"
# What Grafana substitutes for its variables, for evaluating dashboard queries directly.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$task_name": ".*", "$app_id": ".*"}


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args],
        input=None if stdin is None else stdin.decode(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 12 rules found" in result.stdout


def test_promtool_rule_unit_tests() -> None:
    result = promtool("test", "rules", str(DEPLOY / "prometheus" / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config() -> None:
    result = promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "per_job_histograms",
    [pytest.param(1000, id="per-job-histograms"), pytest.param(0, id="all-jobs-histograms")],
)
def test_exposition_passes_promtool_check_metrics(per_job_histograms: int) -> None:
    metrics = SchedulerMetrics(version="1.0", per_job_histograms=per_job_histograms)
    sent = Counter("token_expiry_warnings_sent_total", "Notices sent.", registry=metrics.registry)
    sent.inc({"app_id": "cli_a", "level": "warning"})  # an embedder's collector, served too
    t = datetime(2026, 11, 29, tzinfo=UTC)
    for event in (
        RunStarted(job_id="a", scheduled_at=t, run_id="r", started_at=t, lateness=0.01),
        RunSucceeded(job_id="a", scheduled_at=t, run_id="r", started_at=t, duration=0.2),
        RunSkipped(job_id="a", scheduled_at=t, reason="coalesced"),
        JobAdded(job_id='odd "id"\\', scheduled_at=t),
    ):
        metrics(event)
    result = promtool("check", "metrics", stdin=metrics.render())
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def dashboard_expressions() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for name, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(name, value)
                assert "$" not in expr, f"unhandled Grafana variable in {expr!r}"
                out.append((f"{path.stem}: {panel['title']} {target['refId']}", expr))
    return out


def test_dashboards_are_the_two_the_seed_names() -> None:
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
    assert titles == {"Scheduler Monitoring", "Token Expiry Monitoring"}
    assert len(dashboard_expressions()) >= 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PromClient:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def query(self, expr: str) -> list[dict[str, Any]]:
        async with self.session.get(f"{self.url}/api/v1/query", params={"query": expr}) as resp:
            body = await resp.json()
        assert resp.status == 200, f"{expr}: {body}"
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def by_task(self, expr: str) -> dict[str, float]:
        return {r["metric"]["task_name"]: float(r["value"][1]) for r in await self.query(expr)}


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[tuple[PromClient, int]]:
    """A real Prometheus on loopback, scraping 127.0.0.1:<target port> every second."""
    target = free_port()
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(  # JSON is YAML, and needs no YAML library here
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "lark-scheduler",
                        "static_configs": [{"targets": [f"127.0.0.1:{target}"]}],
                    }
                ],
            }
        )
    )
    binary = shutil.which("prometheus")
    assert binary is not None
    proc = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"{url}/-/ready") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail("prometheus did not become ready in 10 s")
            yield PromClient(session, url), target
    finally:
        proc.terminate()
        _, err = await proc.communicate()
        if proc.returncode not in (0, -15):
            sys.stderr.write(err.decode())


async def wait_for(check: Any, what: str, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


async def test_real_prometheus_scrapes_a_running_kernel(
    prometheus: tuple[PromClient, int],
) -> None:
    prom, port = prometheus
    kernel = Kernel(timezone="UTC")
    metrics = SchedulerMetrics(version="test")
    metrics.attach(kernel)
    # The Lark service exports these later; registered here so their queries have series.
    expiry = Gauge(
        "token_expiry_timestamp_seconds",
        "When the refresh token expires.",
        registry=metrics.registry,
    )
    now = datetime.now(UTC)
    expiry.set({"app_id": "cli_warn"}, (now + timedelta(days=5.5)).timestamp())
    expiry.set({"app_id": "cli_ok"}, (now + timedelta(days=20)).timestamp())
    sent = Counter(
        "token_expiry_warnings_sent_total", "Expiry notices sent.", registry=metrics.registry
    )
    sent.set({"app_id": "cli_warn", "level": "warning"}, 0)
    users = Gauge(
        "token_users_by_state", "Users of an app by token state.", registry=metrics.registry
    )
    users.set({"app_id": "cli_warn", "state": "warning"}, 1)
    users.set({"app_id": "cli_warn", "state": "valid"}, 3)

    attempts = {"flaky_job": 0}

    async def ok_job() -> None:
        await asyncio.sleep(0.3)  # lands in the (0.1, 1.0] duration bucket

    async def failing_job() -> None:
        raise RuntimeError("upstream answered 503")

    async def flaky_job() -> None:
        attempts["flaky_job"] += 1
        if attempts["flaky_job"] == 1:
            raise RuntimeError("first call fails")

    async def tick() -> None:
        pass

    async with kernel, AdminServer(kernel, port=port, token=TOKEN, metrics=metrics) as server:
        kernel.add_interval_job(ok_job, hours=1, job_id="ok_job")
        kernel.add_interval_job(failing_job, hours=1, job_id="failing_job")
        kernel.add_interval_job(flaky_job, hours=1, job_id="flaky_job")

        async def jobs_scraped() -> bool:
            # Jobs are added long before they fail in real life: let Prometheus see their
            # zeroed counters first, so increase() counts the first failure.
            return bool(await prom.query('scheduled_task_executions_total{task_name="flaky_job"}'))

        await wait_for(jobs_scraped, "the first scrape of the jobs", seconds=15)
        kernel.add_interval_job(tick, seconds=0.5, job_id="tick")
        kernel.add_date_job(
            tick,
            run_date=datetime.now(UTC) - timedelta(minutes=5),
            job_id="too_late",
            misfire_grace_time=1,
        )
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=auth) as http:
            for job_id in ("ok_job", "failing_job", "flaky_job"):
                async with http.post(f"{server.url}/jobs/{job_id}/run") as resp:
                    assert resp.status == 202, await resp.text()

            async def failures_recorded() -> bool:
                async with http.get(f"{server.url}/failures") as resp:
                    return len((await resp.json())["failures"]) == 2

            await wait_for(failures_recorded, "two failure records")
            async with http.get(f"{server.url}/failures?job_id=flaky_job") as resp:
                (record,) = (await resp.json())["failures"]
            async with http.post(f"{server.url}/failures/{record['id']}/retry") as resp:
                assert resp.status == 202
                retry_run = (await resp.json())["run_id"]

            async def retry_recorded() -> bool:
                async with http.get(f"{server.url}/failures/{record['id']}") as resp:
                    retries = (await resp.json())["retries"]
                return [(r["run_id"], r["outcome"]) for r in retries] == [(retry_run, "succeeded")]

            await wait_for(retry_recorded, "the retry's outcome on the failure record")

        async def ok_job_done() -> bool:
            return kernel.get_job("ok_job").running == 0

        await wait_for(ok_job_done, "ok_job to finish")

        async def scraped_after_runs() -> bool:
            result = await prom.query(
                'scheduled_task_executions_total{task_name="ok_job", status="success"}'
            )
            return bool(result) and result[0]["value"][1] == "1"

        await wait_for(scraped_after_runs, "a scrape after the runs", seconds=15)
        await asyncio.sleep(2.5)  # a few more scrapes and rule evaluations

        # The seed's two queries, verbatim.
        assert await prom.by_task('scheduled_task_executions_total{status="failure"}') == {
            "ok_job": 0,
            "failing_job": 1,
            "flaky_job": 1,
            "tick": 0,
            "too_late": 0,
        }
        p95 = await prom.by_task("histogram_quantile(0.95, scheduled_task_duration_seconds_bucket)")
        assert p95["ok_job"] == pytest.approx(0.1 + 0.9 * 0.95)  # one run of ~0.3 s
        assert p95["failing_job"] == pytest.approx(0.1 * 0.95)  # one run under 0.1 s

        success = await prom.by_task('scheduled_task_executions_total{status="success"}')
        assert {k: success[k] for k in ("ok_job", "failing_job", "flaky_job", "too_late")} == {
            "ok_job": 1,
            "failing_job": 0,
            "flaky_job": 1,  # the retry
            "too_late": 0,
        }
        assert success["tick"] >= 2
        assert (await prom.by_task("scheduled_task_retries_total"))["flaky_job"] == 1
        assert (await prom.by_task("scheduled_task_missed_total"))["too_late"] == 1

        # Every query of the dashboards returns series.
        for name, expr in dashboard_expressions():
            assert await prom.query(expr), f"{name}: no series for {expr}"

        # Every rule (as Prometheus loaded it) evaluates without error, over metrics that exist.
        async with prom.session.get(f"{prom.url}/api/v1/rules") as resp:
            groups = (await resp.json())["data"]["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        assert len(rules) == 12
        for name, rule in rules.items():
            assert (rule["health"], rule.get("lastError", "")) == ("ok", ""), name
            await prom.query(rule["query"])
            for metric in set(
                re.findall(r"\b(?:scheduled_task|scheduler|token)_[a-z_]+", rule["query"])
            ):
                assert await prom.query(f"count({metric})"), f"{name}: no series of {metric}"
        # (ScheduledTaskMissed cannot fire here: "too_late" missed before its first scrape, and
        # increase() never counts a series' first sample; alerts_test.yml covers that rule.)
        firing = {
            (r["metric"]["alertname"], r["metric"].get("task_name") or r["metric"].get("app_id"))
            for r in await prom.query('ALERTS{alertstate="firing"}')
        }
        assert firing == {
            ("ScheduledTaskFailing", "failing_job"),
            ("ScheduledTaskFailing", "flaky_job"),
            ("LarkTokenExpiringSoon", "cli_warn"),
        }


async def test_dashboards_and_rules_work_with_histograms_of_all_jobs_together(
    prometheus: tuple[PromClient, int],
) -> None:
    """Beyond metrics.per_job_histograms jobs the histograms lose task_name: every dashboard
    query still answers (histogram panels as one 'all jobs' line), so does the seed's."""
    prom, port = prometheus
    kernel = Kernel(timezone="UTC")
    metrics = SchedulerMetrics(version="test", per_job_histograms=0)
    metrics.attach(kernel)

    async def quick() -> None:
        await asyncio.sleep(0.3)

    async def broken() -> None:
        raise RuntimeError("upstream answered 503")

    async with kernel, AdminServer(kernel, port=port, metrics=metrics):
        kernel.add_interval_job(quick, seconds=0.5, job_id="quick")
        kernel.add_interval_job(broken, seconds=0.5, job_id="broken")

        async def histograms_rated() -> bool:
            rate = "rate(scheduled_task_duration_seconds_count[1m])"
            return any(float(r["value"][1]) > 0 for r in await prom.query(rate))

        await wait_for(histograms_rated, "two scrapes with runs in between", seconds=20)

        seed_query = "histogram_quantile(0.95, scheduled_task_duration_seconds_bucket)"
        (seed,) = await prom.query(seed_query)
        assert "task_name" not in seed["metric"]
        scheduler_panels = [
            (name, expr)
            for name, expr in dashboard_expressions()
            if name.startswith("scheduler-monitoring: ")
        ]
        assert len(scheduler_panels) >= 15
        for name, expr in scheduler_panels:
            result = await prom.query(expr)
            assert result, f"{name}: no series for {expr}"
            if "histogram_quantile" in expr:
                assert [r["metric"]["task_name"] for r in result] == ["all jobs"], name
        failing = await prom.by_task('scheduled_task_executions_total{status="failure"}')
        assert failing["broken"] >= 1  # the counters stay per job
        async with prom.session.get(f"{prom.url}/api/v1/rules") as resp:
            groups = (await resp.json())["data"]["groups"]
        for rule in (r for g in groups for r in g["rules"]):
            assert (rule["health"], rule.get("lastError", "")) == ("ok", ""), rule["name"]
