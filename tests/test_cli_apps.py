"""``migrate`` and ``apps ...`` on the embedded store; the app secret is never echoed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from actors.cli import main
from actors.store import open_store

SECRET = "s3cr3t-app-secret-value-42"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("LARK_SCHEDULER_") or name in ("DATABASE_URL", "LARK_APP_SECRET"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data" / "lark-scheduler.db"


def stored_secret(db: Path, app_id: str) -> str | None:
    async def read() -> str | None:
        async with await open_store(f"sqlite:///{db}") as store:
            return await store.get_app_secret(app_id)

    return asyncio.run(read())


def test_migrate_then_nothing_to_apply(
    store_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out == "applied migration(s) 1, 2; schema at version 2\n"
    assert store_env.is_file()
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out == "nothing to apply; schema at version 2\n"


def test_add_with_the_secret_from_the_environment(
    store_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LARK_APP_SECRET", SECRET)
    assert main(["apps", "add", "cli_a1", "--name", "App one", "--admin", "ou_1"]) == 0
    out, err = capsys.readouterr()
    assert out == "app cli_a1 (App one) registered: active, administrator ou_1\n"
    assert err == ""
    assert stored_secret(store_env, "cli_a1") == SECRET


def test_add_with_the_secret_from_a_prompt_that_does_not_echo(
    store_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return SECRET

    monkeypatch.setattr("getpass.getpass", getpass)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    assert main(["apps", "add", "cli_a2"]) == 0
    assert prompts == ["App secret for cli_a2 (not shown): "]
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert stored_secret(store_env, "cli_a2") == SECRET


def test_add_list_update_disable_in_a_real_process(store_env: Path) -> None:
    # A subprocess, so that what reaches the terminal (stdout and stderr) is checked whole.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LARK_")}
    env["PYTHONPATH"] = str(ROOT)

    def run(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "actors.cli", *argv],
            input=stdin, capture_output=True, text=True, env=env, timeout=30,
            cwd=store_env.parent.parent,
        )
        assert SECRET not in done.stdout + done.stderr
        return done

    added = run("apps", "add", "cli_b1", "--name", "B", "--secret-stdin", stdin=SECRET + "\n")
    assert (added.returncode, added.stderr) == (0, "")
    again = run("apps", "add", "cli_b1", "--secret-stdin", stdin=SECRET + "\n")
    assert again.returncode == 1
    assert again.stderr == (
        "lark-scheduler: error: app cli_b1 is already registered; change it with "
        "'lark-scheduler apps update cli_b1'\n"
    )
    no_secret = run("apps", "add", "cli_b2")  # stdin is not a terminal, no env: no prompt
    assert no_secret.returncode == 2
    assert "pipe it in with --secret-stdin or set LARK_APP_SECRET" in no_secret.stderr
    updated = run("apps", "update", "cli_b1", "--admin", "ou_9", "--secret-stdin",
                  stdin="new-" + SECRET + "\n")
    assert updated.stdout == "app cli_b1 (B) updated: active, administrator ou_9\n"
    assert stored_secret(store_env, "cli_b1") == "new-" + SECRET
    disabled = run("apps", "disable", "cli_b1")
    assert disabled.stdout == "app cli_b1 (B) disabled: disabled, administrator ou_9\n"
    listed = run("apps", "list")
    assert listed.stdout == "no active apps ('--all' shows disabled)\n"
    listed = run("apps", "list", "--all", "--json")
    (app,) = json.loads(listed.stdout)
    assert (app["app_id"], app["active"], app["admin_open_id"]) == ("cli_b1", False, "ou_9")
    assert "secret" not in json.dumps(app)
    missing = run("apps", "disable", "cli_zz")
    assert missing.returncode == 1
    assert "no app cli_zz is registered" in missing.stderr


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["apps", "add", "cli_c1", "--secret-stdin"], "\n", "the app secret from stdin is empty"),
        (["apps", "update", "cli_c1"], "", "nothing to change; give --name"),

    ],
    ids=["empty-secret", "nothing-to-update"],
)
def test_usage_errors(
    argv: list[str],
    stdin: str,
    message: str,
    store_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err


@pytest.mark.parametrize("spelling", [["--secret", SECRET], [f"--secret={SECRET}"]])
def test_the_secret_is_not_an_argument_and_a_mistaken_one_is_not_repeated(
    spelling: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["apps", "add", "cli_d1", *spelling])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert SECRET not in err
    shown = " ".join([*spelling[:-1], spelling[-1].replace(SECRET, "***")])
    assert err.endswith(f"lark-scheduler: error: unrecognized arguments: {shown}\n")


@pytest.mark.postgres
def test_migrate_and_apps_on_postgresql(
    store_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uuid

    import asyncpg

    from tests.conftest import POSTGRES_DSN

    schema = f"cli_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("DATABASE_URL", POSTGRES_DSN)
    monkeypatch.setenv("LARK_SCHEDULER_STORE__SCHEMA", schema)
    monkeypatch.setenv("LARK_APP_SECRET", SECRET)
    try:
        assert main(["migrate"]) == 0
        assert capsys.readouterr().out == "applied migration(s) 1, 2; schema at version 2\n"
        assert main(["apps", "add", "cli_pg1", "--admin", "ou_1"]) == 0
        assert main(["apps", "list"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[-1].split()[:3] == ["cli_pg1", "cli_pg1", "yes"]
        # The key that encrypts the secret lives in the data directory, not in the database.
        assert (store_env.parent / "lark-scheduler.key").is_file()
    finally:
        async def drop() -> None:
            conn = await asyncpg.connect(POSTGRES_DSN)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()

        asyncio.run(drop())
