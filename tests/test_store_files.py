"""The embedded store's files on disk are private: database, -wal, -shm and key 0600, the
data directory 0700, whether the service creates them or finds them already there."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.cli._settings import make_configured_store
from actors.config import Config, StoreConfig
from actors.service import LarkService
from actors.store import StoreUnavailableError
from actors.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The usual umask (022): without care every new file would be world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


async def write_something(store: SqliteStore) -> None:
    await store.add_app("cli_files", "files", secret="s3cret")


async def test_a_new_database_and_its_side_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "new" / "lark.db"
    async with SqliteStore(db) as store:
        await write_something(store)
        modes = {p.name: mode(p) for p in db.parent.iterdir()}
    assert modes == {
        "lark.db": 0o600, "lark.db-wal": 0o600, "lark.db-shm": 0o600, "lark.db.key": 0o600,
    }  # fmt: skip
    assert mode(db.parent) == 0o700


async def test_existing_readable_files_are_made_private(tmp_path: Path) -> None:
    db = tmp_path / "lark.db"
    async with SqliteStore(db) as store:
        await write_something(store)
    for name in ("lark.db", "lark.db-wal", "lark.db-shm"):
        (tmp_path / name).touch()
        os.chmod(tmp_path / name, 0o644)
    async with SqliteStore(db) as store:
        assert [app.app_id for app in await store.list_apps()] == ["cli_files"]
        await store.add_app("cli_more", "more", secret="s3cret")
        assert {name: mode(tmp_path / name) for name in ("lark.db", "lark.db-wal", "lark.db-shm")} \
            == {"lark.db": 0o600, "lark.db-wal": 0o600, "lark.db-shm": 0o600}


def config(data_dir: Path, url: str | None = None) -> Config:
    return Config(store=StoreConfig(data_dir=str(data_dir), url=url))


@pytest.mark.parametrize(
    "opener",
    [pytest.param("service", id="serve"), pytest.param("cli", id="cli-commands")],
)
async def test_the_data_dir_is_made_private_also_when_it_exists(
    tmp_path: Path, opener: str
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    (data / "lark-scheduler.db").touch(mode=0o644)
    os.chmod(data / "lark-scheduler.db", 0o644)
    cfg = config(data)
    if opener == "service":
        async with LarkService(cfg):
            pass
    else:
        store = make_configured_store(cfg)
        await store.open()
        await store.close()
    assert mode(data) == 0o700
    assert mode(data / "lark-scheduler.db") == 0o600
    assert mode(data / "lark-scheduler.db.key") == 0o600


async def test_a_shared_sticky_data_dir_is_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    store = make_configured_store(config(shared))
    await store.open()
    await store.close()
    assert mode(shared) == 0o1777
    assert mode(shared / "lark-scheduler.db") == 0o600


async def test_a_database_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").touch()
    store = SqliteStore(tmp_path / "a-file" / "data" / "lark.db")
    with pytest.raises(StoreUnavailableError, match=r"cannot be created \(Not a directory\)"):
        await store.open()
