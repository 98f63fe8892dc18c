"""``run-task NAME``: one built-in task by hand, with the service's configuration."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.cli import main
from tests._fake_lark_process import fake_lark_process
from tests.fake_lark import FAKE_APP_ID, FAKE_APP_SECRET


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    for name in list(os.environ):
        if name.startswith("LARK_SCHEDULER_") or name in ("DATABASE_URL", "LARK_APP_SECRET"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    with fake_lark_process(3) as (url, _):
        monkeypatch.setenv("LARK_SCHEDULER_LARK__BASE_URL", url)
        yield url


def add_app(app_id: str, secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LARK_APP_SECRET", secret)
    assert main(["apps", "add", app_id]) == 0


@pytest.mark.usefixtures("env")
def test_health_check_with_nothing_configured(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run-task", "health_check"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ready"] is True
    assert [(r["component"], r["status"]) for r in report["results"]] == [
        ("database", "ok"), ("rabbitmq", "not_configured"), ("lark", "not_configured")
    ]


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("name", ["sync_user_info", "sync_user_info_task"])
def test_sync_user_info(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    add_app(FAKE_APP_ID, FAKE_APP_SECRET, monkeypatch)
    capsys.readouterr()
    assert main(["run-task", name]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert [(a["app_id"], a["status"]) for a in report["apps"]] == [(FAKE_APP_ID, "ok")]
    assert FAKE_APP_SECRET not in out + err


@pytest.mark.usefixtures("env")
def test_an_incomplete_sync_prints_the_report_and_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    add_app("cli_refused", "not-the-secret", monkeypatch)
    capsys.readouterr()
    assert main(["run-task", "sync_user_info"]) == 1
    out, err = capsys.readouterr()
    assert [a["status"] for a in json.loads(out)["apps"]] == ["failed"]
    last = err.splitlines()[-1]
    assert last.startswith(
        "lark-scheduler: error: sync_user_info: 1 of 1 apps failed and were left unchanged: "
        "cli_refused ("
    )
    assert "not-the-secret" not in out + err


@pytest.mark.usefixtures("env")
def test_cleanup_and_expiry_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run-task", "cleanup_expired_tokens"]) == 0
    cleanup = json.loads(capsys.readouterr().out)
    assert (cleanup["tokens_deleted"], cleanup["notices_deleted"]) == (0, 0)
    assert main(["run-task", "check_token_expiry"]) == 0
    expiry = json.loads(capsys.readouterr().out)
    assert (expiry["tokens"], expiry["notices"]) == (0, [])


def test_an_unknown_task_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run-task", "sync_everything"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'sync_everything'" in capsys.readouterr().err
