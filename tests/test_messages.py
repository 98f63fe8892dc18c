"""Messages that misled or crashed (found by attacking the service): each now names the real
fix, and an app id that is not one is refused before anything is written."""

from __future__ import annotations

import asyncio
import getpass
import io
import json
import os
import signal
import sys
import traceback
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import anyio
import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from actors.cli import main
from actors.cli._lifecycle import run_service
from actors.config import Config, load_config
from actors.jobs import HealthReport
from actors.store import HealthResult, InvalidAppIdError
from actors.store.sqlite import SqliteStore
from actors.tasks import health_check_task
from kernel import Kernel
from kernel.failures import MemoryFailureStore
from kernel.http import AdminServer, create_admin_app
from lark_service.scheduler._dual import dual
from tests._service_support import ServiceBackend, running_service
from tests.fake_lark import FakeLark

pytestmark = pytest.mark.usefixtures("anyio_backend")

SECRET = "app-secret-for-messages"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("LARK_SCHEDULER_") or name in ("DATABASE_URL", "LARK_APP_SECRET"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- the 403 of a service without an admin token -------------------------------------------


class Quiet:
    """A service with one job and nothing to check."""

    def __init__(self) -> None:
        self.store = MemoryFailureStore()
        checked = datetime(2026, 11, 29, tzinfo=UTC)
        self.report = HealthReport(checked_at=checked, ready=True, results=(
            HealthResult(checked_at=checked, component="database", status="ok"),
        ))  # fmt: skip

    async def job(self) -> None:
        return None

    def register_jobs(self, kernel: Kernel) -> None:
        kernel.add_interval_job(self.job, hours=6, job_id="job")

    async def health_check(self) -> HealthReport:
        return self.report

    async def readiness(self) -> HealthReport:
        return self.report

    async def __aenter__(self) -> Quiet:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def post(url: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, method="POST", data=b"{}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.usefixtures("restore_logging", "clean_env")
async def test_the_403_of_serve_names_the_environment_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = load_config(None, {"LARK_SCHEDULER_HTTP__PORT": "1"})
    config = msgspec.structs.replace(config, http=msgspec.structs.replace(config.http, port=0))
    started: asyncio.Future[AdminServer] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_service(config, lambda c, m: Quiet(), started=started.set_result)
    )
    admin = await started
    try:
        status, body = await asyncio.to_thread(post, f"{admin.url}/jobs/job/run")
        code = await asyncio.to_thread(main, ["jobs", "run", "job", "--url", admin.url])
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(task, 10) == 0
    assert status == 403
    message = body["error"]["message"]  # type: ignore[index]
    assert "set LARK_SCHEDULER_ADMIN_TOKEN (or http.admin_token_file)" in message
    assert "token=..." not in message
    err = capsys.readouterr().err
    assert code == 1
    assert "LARK_SCHEDULER_ADMIN_TOKEN" in err
    assert "token=..." not in err


# -- unknown failure ids --------------------------------------------------------------------


class StoreKernel:
    """The surface the admin API needs, on a given failure store."""

    running = True

    def __init__(self, store: object) -> None:
        self.failure_store = store

    def get_jobs(self) -> list[object]:
        return []


@pytest.mark.parametrize(
    ("persistent", "says_in_memory"),
    [pytest.param(True, False, id="sqlite"), pytest.param(False, True, id="in-memory")],
)
async def test_an_unknown_failure_mentions_the_in_memory_store_only_when_it_is_one(
    tmp_path: Path, persistent: bool, says_in_memory: bool
) -> None:
    store = SqliteStore(tmp_path / "lark.db") if persistent else MemoryFailureStore()
    if isinstance(store, SqliteStore):
        await store.open()
    token = "messages-admin-token-0123456789"
    app = create_admin_app(StoreKernel(store), token=token, metrics=None)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/failures/nope", headers={"Authorization": f"Bearer {token}"})
        body = await resp.json()
    if isinstance(store, SqliteStore):
        await store.close()
    assert resp.status == 404
    assert body["error"]["message"].startswith(
        "no failure record with id 'nope'; GET /failures lists them"
    )
    assert ("in-memory" in body["error"]["message"]) is says_in_memory


# -- the secret prompt ----------------------------------------------------------------------


def test_ctrl_d_at_the_secret_prompt_is_one_line(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def closed(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(getpass, "getpass", closed)
    assert main(["apps", "add", "cli_ctrl_d"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "lark-scheduler: error: no app secret for cli_ctrl_d: the prompt was closed (Ctrl-D); "
        "nothing was changed. Type the secret at the prompt, pipe it in with --secret-stdin "
        "or set LARK_APP_SECRET"
    )
    assert "Traceback" not in err
    assert not (clean_env / "data").exists()


def test_apps_commands_work_with_a_short_admin_token_they_never_use(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LARK_SCHEDULER_ADMIN_TOKEN", "short")
    monkeypatch.setenv("LARK_APP_SECRET", SECRET)
    assert main(["apps", "add", "cli_short"]) == 0
    assert main(["apps", "list"]) == 0
    assert "cli_short" in capsys.readouterr().out
    assert main(["config", "check"]) == 2  # serve would use it: refused there
    assert "http.admin_token" in capsys.readouterr().err


# -- a task run by hand from plain code -----------------------------------------------------


def test_a_failing_task_called_from_plain_code_is_not_chained_to_a_loop_error() -> None:
    @dual
    async def task() -> None:
        raise ValueError("the real problem")

    with pytest.raises(ValueError, match="the real problem") as caught:
        task()
    assert caught.value.__context__ is None
    text = "".join(traceback.format_exception(caught.value))
    assert "no running event loop" not in text


# -- /readyz sees apps add and run-task health_check ----------------------------------------


async def test_readiness_sees_an_app_added_and_a_check_run_elsewhere(
    tmp_path: Path, fake_lark: FakeLark
) -> None:
    backend = ServiceBackend("sqlite", tmp_path)
    config: Config = backend.config(fake_lark)
    fake_lark.add_app("cli_ready", SECRET)

    def lark_of(report: HealthReport) -> str:
        return {r.component: r.status for r in report.results}["lark"]

    async with running_service(config) as service:
        assert lark_of(await service.readiness()) == "not_configured"
        # `apps add` in another process: the store has an app now.
        await service.store.add_app("cli_ready", "Ready", secret=SECRET)
        assert lark_of(await service.readiness()) == "ok"

        fake_lark.fail("tenant_token", status=500, times=100)
        # `run-task health_check` in another process records a newer result.
        elsewhere = await anyio.to_thread.run_sync(asyncio.run, health_check_task(config))
        assert lark_of(elsewhere) == "fail"
        seen = await service.readiness()
        assert (lark_of(seen), seen.checked_at) == ("fail", elsewhere.checked_at)
        assert [r.component for r in seen.results] == ["database", "rabbitmq", "lark"]


# -- app ids --------------------------------------------------------------------------------

BAD_APP_IDS = [
    pytest.param("cli_a\nb", id="newline"),
    pytest.param("cli_" + "a" * 3000, id="3000-characters"),
    pytest.param("-rf", id="dash-rf"),
    pytest.param("", id="empty"),
    pytest.param("cli_", id="prefix-only"),
    pytest.param("app1", id="not-cli"),
    pytest.param("cli_a b", id="space"),
    pytest.param("cli_ä", id="non-ascii"),
]


@pytest.mark.parametrize("app_id", BAD_APP_IDS)
async def test_the_store_refuses_what_is_not_an_app_id(tmp_path: Path, app_id: str) -> None:
    async with SqliteStore(tmp_path / "lark.db") as store:
        with pytest.raises(InvalidAppIdError, match="is not a Lark app id: it must be 'cli_'"):
            await store.add_app(app_id, "x", secret=SECRET)
        assert await store.list_apps(active_only=False) == []


@pytest.mark.parametrize("app_id", BAD_APP_IDS)
def test_apps_add_refuses_it_in_one_line_before_asking_for_the_secret(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    app_id: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # a prompt would fail differently
    assert main(["apps", "add", "--secret-stdin", "--", app_id]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lark-scheduler: error: app_id ")
    assert "is not a Lark app id" in err
    assert err.count("\n") == 1
    assert len(err) < 400
    assert not (clean_env / "data").exists()


def test_a_lark_app_id_is_accepted(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LARK_APP_SECRET", SECRET)
    assert main(["apps", "add", "cli_a1b2c3d4e5f6a7b8"]) == 0
    assert "app cli_a1b2c3d4e5f6a7b8 (cli_a1b2c3d4e5f6a7b8) registered" in capsys.readouterr().out

