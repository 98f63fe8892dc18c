"""``tokens list`` and ``tokens revoke`` on the embedded store; no token is ever printed."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actors.cli import main
from actors.lark import UserTokenGrant
from actors.store import UserToken, open_store

NOW = datetime.now(UTC).replace(microsecond=0)


def grant(n: int, refresh_days: float) -> UserTokenGrant:
    return UserTokenGrant(
        access_token=f"u-secret-access-{n:04d}",
        access_expires_at=NOW + timedelta(hours=2),
        refresh_token=f"ur-secret-refresh-{n:04d}",
        refresh_expires_at=NOW + timedelta(days=refresh_days),
    )


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A store with apps cli_a (4 users, one in each state but warning) and cli_b (none)."""
    for name in list(os.environ):
        if name.startswith("LARK_SCHEDULER_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LARK_SCHEDULER_OAUTH__REDIRECT_BASE_URL", "https://lark.example.com")
    path = tmp_path / "data" / "lark-scheduler.db"
    path.parent.mkdir()

    async def seed() -> None:
        async with await open_store(f"sqlite:///{path}") as store:
            await store.add_app("cli_a", "A", secret="s")
            await store.add_app("cli_b", "B", secret="s")
            await store.save_user_authorization("cli_a", "ou_ann", grant(1, 30), name="Ann")
            await store.save_user_authorization("cli_a", "ou_cat", grant(2, 2.5), name="Cat")
            await store.save_user_authorization("cli_a", "ou_rev", grant(3, 20), name="Rev")
            await store.invalidate_user_token("cli_a", "ou_rev", 1, "revoked")
            await store.upsert_user_token(UserToken(
                app_id="cli_a", open_id="ou_old", refresh_expires_at=NOW - timedelta(days=1)
            ))

    asyncio.run(seed())
    return path


def test_list_shows_states_and_never_a_token(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tokens", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == [
        "APP", "ID", "OPEN", "ID", "NAME", "STATE", "REFRESH", "EXPIRES", "(UTC)", "DAYS",
        "LEFT", "ACCESS", "EXPIRES", "(UTC)", "AUTHORISED", "(UTC)",
    ]
    rows = [line.split()[:4] for line in lines[1:5]]
    assert rows == [
        ["cli_a", "ou_ann", "Ann", "valid"],
        ["cli_a", "ou_cat", "Cat", "critical"],
        ["cli_a", "ou_old", "-", "expired"],
        ["cli_a", "ou_rev", "Rev", "invalid"],
    ]
    assert "invalid (revoked)" in lines[4]
    assert lines[5:] == [
        "cli_a: 1 valid, 0 warning, 1 critical, 1 expired, 1 invalid",
        "cli_b: 0 valid, 0 warning, 0 critical, 0 expired, 0 invalid",
    ]
    assert "secret" not in out


def test_list_filters_and_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tokens", "list", "--app", "cli_a", "--expiring", "3", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert [(t["open_id"], t["state"]) for t in report["tokens"]] == [
        ("ou_cat", "critical"), ("ou_old", "expired"), ("ou_rev", "invalid")
    ]
    assert {t["reauthorize_url"] for t in report["tokens"]} == {
        "https://lark.example.com/oauth/cli_a/authorize"
    }
    assert [a["app_id"] for a in report["apps"]] == ["cli_a"]
    assert "secret" not in out
    assert main(["tokens", "list", "--app", "cli_b", "--expiring", "7"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "no user's authorization expires within 7 days"
    )


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        pytest.param(["tokens", "list", "--app", "cli_nope"], 1,
                     "no app cli_nope is registered", id="list-unknown-app"),
        pytest.param(["tokens", "list", "--expiring", "-1"], 2,
                     "'-1' is not a number of days >= 0", id="negative-days"),
        pytest.param(["tokens", "revoke", "cli_a", "ou_nobody"], 1,
                     "no authorization of user ou_nobody for app cli_a is stored", id="nobody"),
        pytest.param(["tokens", "revoke", "cli_nope", "ou_ann"], 1,
                     "no app cli_nope is registered", id="revoke-unknown-app"),
    ],
)
def test_bad_requests(
    db: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    if code == 2:
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    else:
        assert main(argv) == code
    assert message in capsys.readouterr().err


def test_revoke_deletes_the_users_tokens(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tokens", "revoke", "cli_a", "ou_ann"]) == 0
    assert capsys.readouterr().out == (
        "revoked: the tokens of user ou_ann for app cli_a are deleted and no longer served; "
        "they can authorise the app again at https://lark.example.com/oauth/cli_a/authorize\n"
    )

    async def left() -> list[str]:
        async with await open_store(f"sqlite:///{db}") as store:
            assert await store.get_user_credentials("cli_a", "ou_ann") is None
            return [t.open_id for t in await store.list_user_tokens()]

    assert asyncio.run(left()) == ["ou_cat", "ou_old", "ou_rev"]
