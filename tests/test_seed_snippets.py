"""Every ```python block of the seed document (tests/data/scheduled-tasks.zh.md, a copy of
the original service's scheduled-tasks page) runs unchanged against the facade.

A snippet that uses a name it does not define gets exactly that name from ``STUBS`` (the
set of free names is computed and checked, so no stub hides a missing import). Two blocks
are not runnable Python and are checked for what they document instead: the PromQL block
(its metric names and labels are exported) and APScheduler's ``BackgroundScheduler(...)``
configuration (its values are our defaults).
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import contextlib
import io
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import lark_service.scheduler.scheduler as facade
from actors.config import Config
from actors.jobs import SendNotice
from actors.store import UserToken, open_store
from kernel import JobDefaults, Kernel, RunFailed, RunSucceeded
from kernel.cron_explain import explain
from kernel.metrics import SchedulerMetrics
from lark_service.scheduler import SchedulerService
from lark_service.scheduler import tasks as seed_tasks
from lark_service.scheduler.token_monitor import TokenExpiryMonitor
from tests._fake_lark_process import fake_lark_process
from tests.fake_lark import FAKE_APP_ID, FAKE_APP_SECRET

SEED = Path(__file__).parent / "data" / "scheduled-tasks.zh.md"
BLOCKS = re.findall(
    r"^```python\n(.*?)^```$", SEED.read_text(encoding="utf-8"), flags=re.DOTALL | re.M
)
USERS = 4


def block(first_code_line: str) -> str:
    """The one block whose text contains ``first_code_line``."""
    (found,) = [b for b in BLOCKS if first_code_line in b]
    return str(found)


def free_names(code: str) -> set[str]:
    """Names a snippet reads but neither assigns, imports nor defines (builtins aside)."""
    tree = ast.parse(code)
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return loaded - bound - set(dir(builtins))


class RecordingClient:
    """The seed's ``client``: a messaging client that records what it is asked to send."""

    def __init__(self) -> None:
        self.notices: list[SendNotice] = []

    async def send_notice(self, notice: SendNotice) -> str:
        self.notices.append(notice)
        return f"om_{len(self.notices)}"


def run(code: str, stubs: dict[str, Any]) -> dict[str, Any]:
    """Execute a snippet unchanged, with exactly the stubs for its free names."""
    assert free_names(code) == set(stubs), "stubs must be exactly the snippet's free names"
    namespace: dict[str, Any] = {"__name__": "seed_snippet", **stubs}
    exec(compile(code, str(SEED), "exec"), namespace)
    return namespace


@pytest.fixture
def scheduler_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[SchedulerService]:
    """A fresh, started ``scheduler_service`` where the seed imports it from."""
    service = SchedulerService()
    monkeypatch.setattr(facade, "scheduler_service", service)
    service.start()
    yield service
    service.shutdown(wait=False)


@pytest.fixture
def seed_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The configuration the tasks read (the environment) pointed at a temporary store and
    the fake Lark server, with the fake's app registered; answers the database path."""
    for name in list(os.environ):
        if name.startswith("LARK_SCHEDULER_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    with fake_lark_process(USERS) as (url, _):
        monkeypatch.setenv("LARK_SCHEDULER_STORE__DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("LARK_SCHEDULER_LARK__BASE_URL", url)
        db = tmp_path / "data" / "lark-scheduler.db"
        db.parent.mkdir()

        async def register() -> None:
            async with await open_store(f"sqlite:///{db}") as store:
                await store.add_app(
                    FAKE_APP_ID, "Fake", secret=FAKE_APP_SECRET, admin_open_id="ou_admin"
                )

        asyncio.run(register())
        yield db


def test_every_block_is_covered() -> None:
    assert len(BLOCKS) == 13


# -- the built-in jobs' registrations --------------------------------------------------------

BUILT_IN = {
    "sync_user_info": (
        "add_interval_job(\n    sync_user_info_task", "IntervalTrigger(seconds=21600.0)"
    ),
    "check_token_expiry": (
        "check_token_expiry_task,\n", "CronTrigger('0 9,18 * * *', timezone='Asia/Shanghai')"
    ),
    "cleanup_expired_tokens": (
        "cleanup_expired_tokens_task,\n", "CronTrigger('0 3 * * *', timezone='Asia/Shanghai')"
    ),
    "health_check": ("health_check_task,\n", "IntervalTrigger(seconds=300.0)"),
}


@pytest.mark.parametrize("job_id", BUILT_IN)
def test_built_in_job_registration(job_id: str, scheduler_service: SchedulerService) -> None:
    marker, schedule = BUILT_IN[job_id]
    code = block(marker)
    task = f"{job_id}_task"
    run(code, {"scheduler": scheduler_service, task: getattr(seed_tasks, task)})
    (job,) = scheduler_service.get_jobs()
    assert job.id == job_id
    assert repr(job.trigger) == schedule
    # The kernel runs the task's coroutine function itself, not the blocking wrapper.
    assert job.func_ref == f"actors.tasks:{task}"
    assert job.next_run_time is not None


# -- custom jobs -----------------------------------------------------------------------------


def test_custom_interval_job(scheduler_service: SchedulerService) -> None:
    out = io.StringIO()
    namespace = run(block("def my_task():"), {})
    (job,) = scheduler_service.get_jobs()
    assert (job.id, repr(job.trigger)) == ("my_custom_task", "IntervalTrigger(seconds=3600.0)")
    with contextlib.redirect_stdout(out):
        scheduler_service.run_job("my_custom_task")
        scheduler_service.shutdown(wait=True)  # waits for the manual run
    assert out.getvalue() == "执行定时任务...\n"
    assert callable(namespace["my_task"])


def test_custom_cron_job(scheduler_service: SchedulerService) -> None:
    run(block("async def my_async_task():"), {})
    (job,) = scheduler_service.get_jobs()
    assert job.id == "my_daily_task"
    assert repr(job.trigger) == "CronTrigger('0 8 * * *', timezone='Asia/Shanghai')"
    assert job.next_run_time is not None
    local = job.next_run_time.astimezone(scheduler_service.kernel.timezone)
    assert (local.hour, local.minute) == (8, 0)


def test_cron_examples_are_valid_expressions() -> None:
    code = block('"0 0 * * *"')
    run(code, {})
    expressions = [ast.literal_eval(s.value) for s in ast.parse(code).body]  # type: ignore[attr-defined]
    assert len(expressions) == 5
    after = datetime(2026, 11, 30, tzinfo=UTC)
    for expression in expressions:
        assert len(explain(expression, "Asia/Shanghai", 1, after=after).next_fires) == 1


# -- manual runs, disabling, troubleshooting --------------------------------------------------


def test_manual_run_in_plain_and_async_style(seed_env: Path) -> None:
    code = block("from lark_service.scheduler.tasks import sync_user_info_task")
    run(code, {})

    async def users() -> list[str]:
        async with await open_store(f"sqlite:///{seed_env}") as store:
            state = await store.get_sync_state(FAKE_APP_ID)
            assert state is not None
            assert state.last_user_count == USERS
            return [u.open_id for u in await store.list_users(FAKE_APP_ID, active_only=True)]

    assert len(asyncio.run(users())) == USERS


def test_the_manual_run_answers_the_report(seed_env: Path) -> None:
    report = asyncio.run(seed_tasks.sync_user_info_task())
    assert [(a.app_id, a.status) for a in report.apps] == [(FAKE_APP_ID, "ok")]


def test_remove_job(scheduler_service: SchedulerService) -> None:
    # The snippet removes a job called "task_id" (the document's placeholder id).
    scheduler_service.add_interval_job(print, hours=1, job_id="task_id")
    run(block('scheduler_service.remove_job("task_id")'), {})
    assert scheduler_service.get_jobs() == []


def test_troubleshooting_lists_the_job_ids(scheduler_service: SchedulerService) -> None:
    scheduler_service.add_interval_job(print, hours=6, job_id="sync_user_info")
    scheduler_service.add_cron_job(print, cron_expression="0 3 * * *", job_id="cleanup")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run(block("jobs = scheduler_service.get_jobs()"), {})
    assert out.getvalue() == "['sync_user_info', 'cleanup']\n"


# -- the token monitor -----------------------------------------------------------------------


def test_token_expiry_monitor_constructor(
    seed_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LARK_SCHEDULER_OAUTH__REDIRECT_BASE_URL", "http://127.0.0.1:8080")
    client = RecordingClient()
    namespace = run(
        block("monitor = TokenExpiryMonitor("),
        {"TokenExpiryMonitor": TokenExpiryMonitor, "client": client},
    )
    monitor: TokenExpiryMonitor = namespace["monitor"]
    assert (monitor.warning_days, monitor.critical_days) == (7, 3)
    now = datetime.now(UTC)
    assert monitor.get_expiry_status(now + timedelta(days=5), now).status == "expiring"

    async def seed_token() -> None:
        async with await open_store(f"sqlite:///{seed_env}") as store:
            await store.upsert_user_token(UserToken(
                app_id=FAKE_APP_ID, open_id="ou_user1",
                refresh_expires_at=now + timedelta(days=2),
            ))

    asyncio.run(seed_token())
    # Without a store argument, the check opens the configured one.
    report = asyncio.run(monitor.check_token_expiry())
    # The user is told (with the configured re-authorization link); the administrator gets
    # the app's daily summary.
    assert [(n.kind, n.open_id, n.level, n.outcome) for n in report.notices] == [
        ("user", "ou_user1", "critical", "sent"),
        ("summary", "ou_admin", "critical", "sent"),
    ]
    assert [(n.receive_id, n.severity, n.link) for n in client.notices] == [
        ("ou_user1", "critical", f"http://127.0.0.1:8080/oauth/{FAKE_APP_ID}/authorize"),
        ("ou_admin", "critical", f"http://127.0.0.1:8080/oauth/{FAKE_APP_ID}/authorize"),
    ]


# -- the two blocks that document rather than run ---------------------------------------------


def test_the_promql_block_names_exported_metrics() -> None:
    code = block("scheduled_task_executions_total{")
    with pytest.raises(SyntaxError):
        ast.parse(code)  # PromQL in a python fence: documentation, not a program
    selectors = re.findall(r"^(\w+)\{(.*)\}$", code, re.M)
    assert [name for name, _ in selectors] == [
        "scheduled_task_executions_total", "scheduled_task_duration_seconds"
    ]

    def ok() -> None:
        pass

    def bad() -> None:
        raise RuntimeError("no")

    async def scrape() -> str:
        kernel = Kernel(timezone="UTC")
        metrics = SchedulerMetrics()
        metrics.attach(kernel)
        kernel.add_interval_job(ok, hours=1, job_id="ok")
        kernel.add_interval_job(bad, hours=1, job_id="bad")
        with kernel.subscribe() as events:
            async with kernel:
                kernel.run_job("ok")
                kernel.run_job("bad")
                outcomes = set()
                async for event in events:
                    if isinstance(event, RunSucceeded | RunFailed):
                        outcomes.add(event.job_id)
                        if len(outcomes) == 2:
                            break
        return metrics.render().decode()

    text = asyncio.run(scrape())
    for name, labels in selectors:
        label_names = sorted(re.findall(r"(\w+)=", labels))
        series = re.findall(rf"^{name}(?:_count)?\{{(.*?)\}} ", text, re.M)
        assert any(sorted(re.findall(r"(\w+)=", s)) == label_names for s in series), name
    assert 'scheduled_task_executions_total{status="failure",task_name="bad"} 1' in text


def test_background_scheduler_settings_are_our_defaults() -> None:
    code = block("scheduler = BackgroundScheduler(")
    (assign,) = ast.parse(code).body
    assert isinstance(assign, ast.Assign)
    call = assign.value
    assert isinstance(call, ast.Call)
    assert isinstance(call.func, ast.Name)
    assert call.func.id == "BackgroundScheduler"
    settings = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    assert settings == {
        "timezone": "Asia/Shanghai",
        "job_defaults": {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
    }
    seed_defaults = JobDefaults(**settings["job_defaults"])
    for kernel in (Kernel(), SchedulerService().kernel, facade.scheduler_service.kernel):
        assert kernel.timezone.key == settings["timezone"]
        assert kernel.job_defaults == seed_defaults
    scheduler = Config().scheduler
    assert scheduler.timezone == settings["timezone"]
    assert JobDefaults(
        coalesce=scheduler.coalesce,
        max_instances=scheduler.max_instances,
        misfire_grace_time=scheduler.misfire_grace_time,
    ) == seed_defaults


def test_the_readme_facade_example_runs(
    seed_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The original service's code", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"^```python\n(.*?)^```$", section, flags=re.DOTALL | re.M)
    service = SchedulerService()
    monkeypatch.setattr(facade, "scheduler_service", service)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run(code, {})
    assert out.getvalue() == "['sync_user_info']\n"
    assert not service.running

    async def count() -> int:
        async with await open_store(f"sqlite:///{seed_env}") as store:
            return len(await store.list_users(FAKE_APP_ID))

    assert asyncio.run(count()) == USERS
