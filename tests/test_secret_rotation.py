"""A rotated app secret reaches a running service: ``apps update APP --secret-stdin`` in
another command, and the next run of a job uses it, without a restart."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import anyio
import pytest

from actors.cli import main
from actors.jobs import LarkClientPool
from actors.jobs.clients import MissingSecretError
from actors.jobs.messages import SyncUsers
from tests._service_support import ServiceBackend, running_service
from tests.fake_lark import FakeLark

pytestmark = pytest.mark.anyio

APP = "cli_rotated"
OLD, NEW = "secret-before-rotation", "secret-after-rotation"


def apps_update_from_stdin(
    backend: ServiceBackend, fake: FakeLark, monkeypatch: pytest.MonkeyPatch, secret: str
) -> int:
    """``lark-scheduler apps update APP --secret-stdin``, as an operator runs it."""
    for name, value in backend.env(fake).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "stdin", io.StringIO(secret + "\n"))
    return main(["apps", "update", APP, "--secret-stdin"])


async def test_apps_update_reaches_a_running_service(
    tmp_path: Path, fake_lark: FakeLark, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = ServiceBackend("sqlite", tmp_path)
    fake_lark.add_app(APP, NEW)  # Lark already has the new secret: the stored one is stale
    fake_lark.add_users(3)
    async with running_service(backend.config(fake_lark)) as service:
        await service.store.add_app(APP, "Rotated", secret=OLD, admin_open_id="ou_admin")
        before = await service.actor("user_sync").ask(SyncUsers())
        assert [(a.status, (a.error or "")[:13]) for a in before.apps] == [
            ("failed", "LarkAuthError")
        ]
        assert "code=10014" in (before.apps[0].error or "")
        health = await service.health_check()
        assert {r.component: r.status for r in health.results}["lark"] == "fail"

        code = await anyio.to_thread.run_sync(
            apps_update_from_stdin, backend, fake_lark, monkeypatch, NEW
        )
        assert code == 0

        after = await service.actor("user_sync").ask(SyncUsers())
        assert [(a.status, a.users) for a in after.apps] == [("ok", 3)]
        health = await service.health_check()
        assert {r.component: r.status for r in health.results}["lark"] == "ok"


class Store:
    """The one store method the pool uses."""

    def __init__(self) -> None:
        self.secrets: dict[str, str | None] = {APP: OLD}

    async def get_app_secret(self, app_id: str) -> str | None:
        return self.secrets.get(app_id)


class Client:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_the_pool_keeps_a_client_until_its_secret_changes() -> None:
    store = Store()
    made: list[Client] = []

    def factory(app_id: str, secret: str, config: object, clock: object) -> Client:
        made.append(Client(secret))
        return made[-1]

    pool = LarkClientPool(store, None, None, factory)  # type: ignore[arg-type]
    first = await pool.get(APP)
    assert await pool.get(APP) is first  # same secret: same client, same cached token
    store.secrets[APP] = NEW
    second = await pool.get(APP)
    assert (first.secret, second.secret) == (OLD, NEW)  # type: ignore[attr-defined]
    assert not first.closed  # type: ignore[attr-defined]  # may still serve a call elsewhere
    store.secrets[APP] = None
    with pytest.raises(MissingSecretError, match=f"apps update {APP} --secret-stdin"):
        await pool.get(APP)
    await pool.aclose()
    assert all(client.closed for client in made)
