"""The store's contract, run on SQLite and on PostgreSQL alike (``backend`` is parametrised)."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import msgspec
import pytest
from cryptography.fernet import Fernet

from actors.store import (
    AppExistsError,
    AppNotFoundError,
    HealthResult,
    NoticeLevel,
    SecretKeyError,
    Store,
    StoreIntegrityError,
    StoreUnavailableError,
    SyncState,
    SyncSummary,
    UserInfo,
    UserToken,
    make_store,
)
from actors.store._secrets import load_or_create_key
from actors.store._sql import _SCHEMA_MIGRATIONS, load_migrations, split_sqlite_script
from actors.store.postgres import PostgresStore, quote_ident, redact_dsn
from actors.store.sqlite import SqliteStore
from kernel.failures import FailureRecord, FailureStore, MemoryFailureStore, RetryAttempt
from tests._store_support import T0, AnyStore, Backend
from tests.conftest import POSTGRES_DSN

# Marked here, not only by conftest's auto-marking: anyio must see the mark at collection
# time, or it rebuilds the items and drops the parametrised ``backend`` fixture.
pytestmark = pytest.mark.anyio

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made = Backend(request.param, tmp_path)
    try:
        yield made
    finally:
        await made.cleanup()


@pytest.fixture
async def store(backend: Backend) -> AnyStore:
    return await backend.open()


def user(open_id: str, name: str = "", **kw: object) -> UserInfo:
    return UserInfo(open_id=open_id, name=name or open_id.upper(), **kw)  # type: ignore[arg-type]


# -- lifecycle ------------------------------------------------------------------------------


async def test_store_is_a_store_and_a_failure_store(store: AnyStore) -> None:
    # mypy checks these assignments against the protocols' signatures.
    as_store: Store = store
    as_failure_store: FailureStore = store
    assert isinstance(as_store, Store)
    assert as_failure_store is store
    assert "key=<redacted>" in repr(store)
    assert repr(store._secret_box()) == "SecretBox(key=<redacted>)"
    await store.ping()


async def test_closed_store_is_unavailable(backend: Backend) -> None:
    store = await backend.open()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreUnavailableError, match="not open"):
        await store.ping()
    with pytest.raises(StoreUnavailableError, match="not open"):
        await store.add_app("cli_a", "A")


# -- migrations -----------------------------------------------------------------------------


async def test_migrations_are_versioned_and_idempotent(backend: Backend) -> None:
    versions = [m.version for m in load_migrations("sqlite")]
    assert versions == [m.version for m in load_migrations("postgres")] == [1, 2]
    store = await backend.open(migrate_on_open=False)
    assert await store.migrate() == [1, 2]
    assert await store.migrate() == []
    assert await store.applied_migrations() == [1, 2]
    rows = await backend.raw("SELECT version, name FROM schema_migrations ORDER BY version")
    assert rows == [(1, "initial"), (2, "user_authorization")]
    again = await backend.open()  # migrate_on_open on an up-to-date schema
    assert await again.applied_migrations() == [1, 2]


async def test_a_version_1_database_keeps_its_tokens_through_migration_2(
    backend: Backend,
) -> None:
    store = await backend.open(migrate_on_open=False)
    first, _ = load_migrations(store.dialect)
    async with store._transaction() as conn:
        await store._prepare_schema(conn)
        await conn.script(_SCHEMA_MIGRATIONS[store.dialect])
        await conn.script(first.sql)
        await conn.execute(
            "INSERT INTO schema_migrations VALUES (1, 'initial', $1)", store.codec.dt(T0)
        )
    await store.add_app("cli_a", "A")
    async with store._transaction() as conn:
        old = token("ou_1", 30)
        await conn.execute(
            "INSERT INTO user_tokens VALUES ($1, $2, $3, $4, $5)",
            old.app_id, old.open_id, store.codec.dt(T0 + timedelta(hours=2)),
            store.codec.dt(old.refresh_expires_at), store.codec.dt(T0),
        )
    assert await store.migrate() == [2]
    (kept,) = await store.list_user_tokens()
    assert kept == msgspec.structs.replace(token("ou_1", 30), updated_at=T0)
    assert await store.get_user_credentials("cli_a", "ou_1") is None


async def test_migrate_on_open_false_leaves_the_schema_alone(backend: Backend) -> None:
    store = await backend.open(migrate_on_open=False)
    with pytest.raises(Exception, match="apps"):
        await store.list_apps()
    assert await store.migrate() == [1, 2]
    assert await store.list_apps() == []


async def test_concurrent_migrators_apply_each_version_once(backend: Backend) -> None:
    stores = [backend.make(migrate_on_open=False) for _ in range(3)]
    for s in stores:
        await s.open()
    applied: list[list[int]] = []

    async def migrate(s: AnyStore) -> None:
        applied.append(await s.migrate())

    async with anyio.create_task_group() as tg:
        for s in stores:
            tg.start_soon(migrate, s)
    # Each version once, by whichever migrator held the lock for it.
    assert sorted(version for versions in applied for version in versions) == [1, 2]
    assert await backend.raw("SELECT version FROM schema_migrations ORDER BY version") == [
        (1,),
        (2,),
    ]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            "CREATE TABLE a (x INT);\nCREATE TABLE b (y INT);\n",
            ["CREATE TABLE a (x INT);", "CREATE TABLE b (y INT);"],
        ),
        ("-- only a comment\n", []),
        ("CREATE TABLE a (x INT)", ["CREATE TABLE a (x INT)"]),
        ("INSERT INTO a VALUES (';');\n", ["INSERT INTO a VALUES (';');"]),
    ],
    ids=["two-statements", "comment-only", "no-final-semicolon", "semicolon-in-string"],
)
def test_split_sqlite_script(script: str, expected: list[str]) -> None:
    assert split_sqlite_script(script) == expected


# -- apps and secrets -----------------------------------------------------------------------


async def test_apps_crud(backend: Backend, store: AnyStore) -> None:
    added = await store.add_app("cli_b", "Bee", admin_open_id="ou_admin")
    assert (added.app_id, added.name, added.active, added.admin_open_id) == (
        "cli_b",
        "Bee",
        True,
        "ou_admin",
    )
    assert added.created_at == added.updated_at == T0
    await store.add_app("cli_a", "Ay", active=False)
    with pytest.raises(AppExistsError, match="cli_b"):
        await store.add_app("cli_b", "again")

    backend.clock.advance(60)
    renamed = await store.update_app("cli_b", name="Bee 2")
    assert (renamed.name, renamed.admin_open_id, renamed.created_at, renamed.updated_at) == (
        "Bee 2",
        "ou_admin",
        T0,
        T0 + timedelta(seconds=60),
    )
    cleared = await store.update_app("cli_b", admin_open_id=None)
    assert cleared.admin_open_id is None
    assert (await store.update_app("cli_b", admin_open_id="ou_new")).admin_open_id == "ou_new"

    assert [a.app_id for a in await store.list_apps()] == ["cli_b"]
    assert [a.app_id for a in await store.list_apps(active_only=False)] == ["cli_a", "cli_b"]
    disabled = await store.disable_app("cli_b")
    assert disabled.active is False
    assert await store.list_apps() == []
    assert await store.get_app("cli_b") == disabled
    assert await store.get_app("cli_nope") is None
    for call in (
        store.update_app("cli_nope", name="x"),
        store.disable_app("cli_nope"),
        store.set_app_secret("cli_nope", "s"),
        store.get_app_secret("cli_nope"),
    ):
        with pytest.raises(AppNotFoundError, match="cli_nope"):
            await call


async def test_secret_is_encrypted_at_rest(backend: Backend, store: AnyStore) -> None:
    secret = "s3cr3t-app-secret-value"
    await store.add_app("cli_a", "A", secret=secret)
    await store.add_app("cli_b", "B")
    assert await store.get_app_secret("cli_a") == secret
    assert await store.get_app_secret("cli_b") is None
    rows = await backend.raw("SELECT app_id, secret_ciphertext FROM apps ORDER BY app_id")
    assert rows[1] == ("cli_b", None)
    ciphertext = rows[0][1]
    assert secret not in ciphertext
    assert secret not in repr(await store.get_app("cli_a"))

    await store.set_app_secret("cli_b", "other")
    assert await store.get_app_secret("cli_b") == "other"
    dump = await backend.raw("SELECT * FROM apps")
    assert "other" not in repr(dump)
    assert secret not in repr(dump)


async def test_secret_does_not_decrypt_with_another_key(backend: Backend) -> None:
    store = await backend.open(secret_key=Fernet.generate_key())
    await store.add_app("cli_a", "A", secret="secret")
    stranger = await backend.open(secret_key=Fernet.generate_key())
    with pytest.raises(SecretKeyError, match="configure the key it was written with"):
        await stranger.get_app_secret("cli_a")


async def test_bad_secret_key_is_refused(backend: Backend) -> None:
    with pytest.raises(SecretKeyError, match=r"Fernet key .* got 5 bytes"):
        backend.make(secret_key=b"short")


@pytest.mark.postgres
async def test_postgres_without_key_refuses_secrets(tmp_path: Path) -> None:
    backend = Backend("postgres", tmp_path)
    try:
        store = await backend.open(secret_key=None)
        await store.add_app("cli_a", "A")
        with pytest.raises(SecretKeyError, match=r"secret_key=Fernet\.generate_key"):
            await store.set_app_secret("cli_a", "s")
    finally:
        await backend.cleanup()


async def test_sqlite_key_file_is_private_and_reused(tmp_path: Path) -> None:
    db = tmp_path / "data" / "lark.db"
    async with SqliteStore(db) as store:
        await store.add_app("cli_a", "A", secret="secret")
    key_file = tmp_path / "data" / "lark.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    async with SqliteStore(db) as store:
        assert await store.get_app_secret("cli_a") == "secret"
    os.chmod(key_file, 0o644)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        await SqliteStore(db).open()


def test_key_file_created_once_by_racing_processes(tmp_path: Path) -> None:
    key_file = tmp_path / "lark.db.key"
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(lambda _: load_or_create_key(key_file), range(8)))
    assert keys == {key_file.read_bytes().strip()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lark.db.key"]


def test_malformed_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "lark.db.key"
    key_file.write_bytes(b"not a key")
    key_file.chmod(0o600)
    with pytest.raises(SecretKeyError, match="Fernet key"):
        load_or_create_key(key_file)


# -- users ----------------------------------------------------------------------------------


async def test_replace_app_users_adds_updates_and_deactivates(
    backend: Backend, store: AnyStore
) -> None:
    await store.add_app("cli_a", "A")
    await store.add_app("cli_other", "Other")
    await store.replace_app_users("cli_other", [user("ou_x")], T0)

    first = [user("ou_1"), user("ou_2", department_ids=("d1", "d2")), user("ou_3")]
    assert await store.replace_app_users("cli_a", first, T0) == SyncSummary(added=3)
    assert await store.get_sync_state("cli_a") == SyncState(
        app_id="cli_a", last_sync_at=T0, last_user_count=3
    )

    t1 = T0 + timedelta(hours=6)
    second = [user("ou_1", name="One"), user("ou_3"), user("ou_4")]
    assert await store.replace_app_users("cli_a", second, t1) == SyncSummary(
        added=1, updated=1, deactivated=1
    )
    stored = {u.open_id: u for u in await store.list_users("cli_a")}
    assert {k: (u.name, u.active, u.updated_at) for k, u in stored.items()} == {
        "ou_1": ("One", True, t1),
        "ou_2": ("OU_2", False, t1),
        "ou_3": ("OU_3", True, T0),
        "ou_4": ("OU_4", True, t1),
    }
    assert stored["ou_2"].department_ids == ("d1", "d2")
    assert [u.open_id for u in await store.list_users("cli_a", active_only=True)] == [
        "ou_1",
        "ou_3",
        "ou_4",
    ]
    assert await store.get_sync_state("cli_a") == SyncState(
        app_id="cli_a", last_sync_at=t1, last_user_count=3
    )

    t2 = t1 + timedelta(hours=6)
    assert await store.replace_app_users("cli_a", second, t2) == SyncSummary()
    assert {u.open_id: u for u in await store.list_users("cli_a")} == stored
    back = [*second, user("ou_2", department_ids=("d1", "d2"))]
    assert await store.replace_app_users("cli_a", back, t2) == SyncSummary(updated=1)

    assert [u.open_id for u in await store.list_users("cli_other")] == ["ou_x"]
    assert (await store.list_users("cli_other"))[0].active is True


async def test_replace_app_users_repeated_open_id_last_wins(store: AnyStore) -> None:
    await store.add_app("cli_a", "A")
    listing = [user("ou_1", name="first"), user("ou_1", name="last")]
    assert await store.replace_app_users("cli_a", listing, T0) == SyncSummary(added=1)
    assert [u.name for u in await store.list_users("cli_a")] == ["last"]
    assert (await store.get_sync_state("cli_a")) == SyncState(
        app_id="cli_a", last_sync_at=T0, last_user_count=1
    )


async def test_replace_app_users_failure_changes_nothing(backend: Backend, store: AnyStore) -> None:
    await store.add_app("cli_a", "A")
    await store.replace_app_users("cli_a", [user("ou_1"), user("ou_2")], T0)
    before = (await store.list_users("cli_a"), await store.get_sync_state("cli_a"))
    # ou_1 changes, ou_2 goes missing, ou_3 is new, and then a row the database refuses.
    broken = [user("ou_1", name="changed"), user("ou_3"), user(""), user("ou_4")]
    with pytest.raises(StoreIntegrityError, match="nothing was written"):
        await store.replace_app_users("cli_a", broken, T0 + timedelta(hours=6))
    assert (await store.list_users("cli_a"), await store.get_sync_state("cli_a")) == before
    rows = await backend.raw("SELECT open_id FROM users WHERE app_id = $1 ORDER BY 1", "cli_a")
    assert rows == [("ou_1",), ("ou_2",)]


async def test_replace_app_users_of_unknown_app(store: AnyStore) -> None:
    with pytest.raises(AppNotFoundError, match="cli_nope"):
        await store.replace_app_users("cli_nope", [user("ou_1")], T0)
    assert await store.get_sync_state("cli_nope") is None


async def test_naive_datetimes_are_refused(store: AnyStore) -> None:
    await store.add_app("cli_a", "A")
    with pytest.raises(ValueError, match=r"synced_at=.* naive"):
        await store.replace_app_users("cli_a", [], datetime(2026, 1, 1))


# -- tokens ---------------------------------------------------------------------------------


def token(open_id: str, refresh_in_days: float, app_id: str = "cli_a") -> UserToken:
    return UserToken(
        app_id=app_id,
        open_id=open_id,
        access_expires_at=T0 + timedelta(hours=2),
        refresh_expires_at=T0 + timedelta(days=refresh_in_days),
    )


async def test_user_tokens_upsert_and_list(backend: Backend, store: AnyStore) -> None:
    await store.add_app("cli_a", "A")
    await store.add_app("cli_b", "B")
    stored = await store.upsert_user_token(token("ou_1", 30))
    assert stored == msgspec.structs.replace(token("ou_1", 30), updated_at=T0)
    backend.clock.advance(10)
    await store.upsert_user_token(token("ou_1", 20))
    await store.upsert_user_token(token("ou_9", 5, app_id="cli_b"))
    listed = await store.list_user_tokens()
    assert [(t.app_id, t.open_id, t.refresh_expires_at) for t in listed] == [
        ("cli_a", "ou_1", T0 + timedelta(days=20)),
        ("cli_b", "ou_9", T0 + timedelta(days=5)),
    ]
    assert listed[0].updated_at == T0 + timedelta(seconds=10)
    assert [t.open_id for t in await store.list_user_tokens("cli_b")] == ["ou_9"]
    with pytest.raises(AppNotFoundError):
        await store.upsert_user_token(token("ou_1", 1, app_id="cli_nope"))


async def test_delete_expired_tokens_in_batches(store: AnyStore) -> None:
    await store.add_app("cli_a", "A")
    cutoff = T0 - timedelta(days=7)
    for i in range(5):
        await store.upsert_user_token(token(f"ou_old{i}", -8 - i))
    await store.upsert_user_token(token("ou_at_cutoff", -7))
    await store.upsert_user_token(token("ou_expired_recently", -1))
    await store.upsert_user_token(token("ou_live", 30))

    assert await store.delete_tokens_expired_before(cutoff, batch_size=2, max_batches=2) == 4
    assert await store.delete_tokens_expired_before(cutoff, batch_size=2) == 1
    assert await store.delete_tokens_expired_before(cutoff, batch_size=2) == 0
    assert [t.open_id for t in await store.list_user_tokens()] == [
        "ou_at_cutoff",
        "ou_expired_recently",
        "ou_live",
    ]


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"batch_size": 0}, "batch_size=0"), ({"max_batches": 0}, "max_batches=0")],
    ids=["batch-size", "max-batches"],
)
async def test_delete_expired_tokens_refuses_bad_sizes(
    store: AnyStore, kw: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await store.delete_tokens_expired_before(T0, **kw)


# -- notices --------------------------------------------------------------------------------

DAY = date(2026, 11, 29)
Slot = tuple[str, str, NoticeLevel, date]


async def test_notice_claim_send_and_dedupe(store: AnyStore) -> None:
    slot: Slot = ("cli_a", "ou_1", "warning", DAY)
    assert await store.claim_notice(*slot) is True
    assert await store.claim_notice(*slot) is False  # held by the first claim
    await store.record_notice_sent(*slot, message_id="om_1")
    assert await store.claim_notice(*slot) is False  # sent today already
    await store.release_notice(*slot)  # a sent slot is never released
    assert await store.claim_notice(*slot) is False
    # Another level, another day: other slots.
    assert await store.claim_notice("cli_a", "ou_1", "critical", DAY) is True
    assert await store.claim_notice("cli_a", "ou_1", "warning", DAY + timedelta(days=1)) is True
    notices = await store.list_notices(day=DAY)
    assert [(n.level, n.status, n.message_id, n.sent_at) for n in notices] == [
        ("critical", "claimed", None, None),
        ("warning", "sent", "om_1", T0),
    ]


async def test_failed_send_is_not_marked_sent_and_is_retried(store: AnyStore) -> None:
    slot: Slot = ("cli_a", "ou_1", "critical", DAY)
    assert await store.claim_notice(*slot) is True
    await store.release_notice(*slot)  # sending failed
    assert await store.list_notices() == []
    assert await store.claim_notice(*slot) is True  # the next run tries again
    await store.record_notice_sent(*slot)
    assert [n.status for n in await store.list_notices()] == ["sent"]


async def test_stale_claim_is_taken_over(backend: Backend, store: AnyStore) -> None:
    slot: Slot = ("cli_a", "ou_1", "expired", DAY)
    assert await store.claim_notice(*slot, stale_after=600) is True
    backend.clock.advance(599)
    assert await store.claim_notice(*slot, stale_after=600) is False
    backend.clock.advance(2)
    assert await store.claim_notice(*slot, stale_after=600) is True
    [notice] = await store.list_notices()
    assert notice.claimed_at == T0 + timedelta(seconds=601)


async def test_record_sent_without_claim_and_twice_keeps_first(
    backend: Backend, store: AnyStore
) -> None:
    slot: Slot = ("cli_a", "ou_1", "warning", DAY)
    await store.record_notice_sent(*slot, message_id="om_1")
    backend.clock.advance(5)
    await store.record_notice_sent(*slot, message_id="om_2")
    [notice] = await store.list_notices(app_id="cli_a")
    assert (notice.message_id, notice.sent_at) == ("om_1", T0)
    assert await store.list_notices(app_id="cli_b") == []
    assert await store.delete_notices_before(DAY + timedelta(days=1)) == 1


async def test_concurrent_claims_have_one_winner(backend: Backend) -> None:
    stores = [await backend.open(), await backend.open()]
    wins: dict[int, list[bool]] = {i: [] for i in range(20)}

    async def claim(s: AnyStore, i: int) -> None:
        wins[i].append(await s.claim_notice("cli_a", f"ou_{i}", "warning", DAY))

    async with anyio.create_task_group() as tg:
        for i in range(20):
            for s in (*stores, *stores):
                tg.start_soon(claim, s, i)
    assert {i: sorted(w) for i, w in wins.items()} == {
        i: [False, False, False, True] for i in range(20)
    }
    assert len(await stores[0].list_notices()) == 20


# -- health ---------------------------------------------------------------------------------


async def test_health_results_latest_per_component(store: AnyStore) -> None:
    def result(minutes: int, component: str, status: str, **kw: object) -> HealthResult:
        return HealthResult(
            checked_at=T0 + timedelta(minutes=minutes),
            component=component,
            status=status,  # type: ignore[arg-type]
            **kw,  # type: ignore[arg-type]
        )

    await store.record_health([])
    await store.record_health(
        [result(0, "database", "ok", latency=0.002), result(0, "rabbitmq", "not_configured")]
    )
    await store.record_health(
        [result(5, "database", "fail", detail="timeout"), result(5, "lark_api", "ok", latency=0.1)]
    )
    assert await store.latest_health() == [
        result(5, "database", "fail", detail="timeout"),
        result(5, "lark_api", "ok", latency=0.1),
        result(0, "rabbitmq", "not_configured"),
    ]
    assert await store.delete_health_before(T0 + timedelta(minutes=1)) == 2
    assert [h.component for h in await store.latest_health()] == ["database", "lark_api"]


# -- failure records ------------------------------------------------------------------------


def failure(n: int, job_id: str = "sync_user_info") -> FailureRecord:
    return FailureRecord(
        id=f"f{n}",
        job_id=job_id,
        run_id=f"r{n}",
        scheduled_at=T0 + timedelta(minutes=n) if n % 2 else None,
        started_at=T0 + timedelta(minutes=n, seconds=1),
        duration=1.25,
        exc_type="RuntimeError",
        message=f"boom {n}",
        traceback="Traceback (most recent call last):\n  ...\nRuntimeError: boom",
        timed_out=n == 3,
    )


async def test_failure_records_behave_like_the_memory_ring(store: AnyStore) -> None:
    memory = MemoryFailureStore()
    retry = RetryAttempt(run_id="r1-retry", started_at=T0 + timedelta(hours=1))
    for target in (memory, store):
        for n in range(1, 5):
            await target.add_failure(failure(n, job_id="cleanup" if n == 2 else "sync_user_info"))
        await target.set_retry("f1", retry)
        await target.set_retry(
            "f1",
            msgspec.structs.replace(retry, outcome="failed", failure_id="f9"),
        )
        await target.set_retry("f1", RetryAttempt(run_id="r1-auto", started_at=T0, manual=False))
        await target.set_retry("f_missing", retry)
    queries: list[dict[str, Any]] = [{}, {"job_id": "cleanup"}, {"limit": 2}, {"job_id": "none"}]
    for query in queries:
        assert await store.list_failures(**query) == await memory.list_failures(**query)
    record = await store.get_failure("f1")
    assert record == await memory.get_failure("f1")
    assert record is not None
    assert [(r.run_id, r.outcome, r.failure_id) for r in record.retries] == [
        ("r1-auto", "running", None),
        ("r1-retry", "failed", "f9"),
    ]
    assert await store.get_failure("f_missing") is None
    assert await store.list_failures(limit=0) == []


async def test_adding_a_failure_again_replaces_it(store: AnyStore) -> None:
    with_retry = msgspec.structs.replace(
        failure(1), retries=(RetryAttempt(run_id="x", started_at=T0),)
    )
    await store.add_failure(with_retry)
    replaced = msgspec.structs.replace(failure(1), message="again")
    await store.add_failure(replaced)
    assert await store.get_failure("f1") == replaced
    assert await store.list_failures() == [replaced]


async def test_failure_records_past_retention_go_oldest_first_in_batches(store: AnyStore) -> None:
    for n in range(1, 8):
        await store.add_failure(failure(n))
    await store.set_retry("f2", RetryAttempt(run_id="r2-retry", started_at=T0))
    # f1..f7 started at T0 + n min + 1 s: strictly before the cutoff are f1..f3 (f4 is at it).
    cutoff = T0 + timedelta(minutes=4, seconds=1)
    assert await store.delete_failures_before(cutoff, batch_size=2) == 3
    assert [r.id for r in await store.list_failures()] == ["f7", "f6", "f5", "f4"]
    assert await store.get_failure("f2") is None  # its retries went with it
    assert await store.delete_failures_before(cutoff, batch_size=2) == 0
    assert await store.delete_failures_before(T0 + timedelta(days=1), batch_size=3) == 4
    assert await store.list_failures() == []
    with pytest.raises(ValueError, match="batch_size=0 must be at least 1"):
        await store.delete_failures_before(cutoff, batch_size=0)


# -- URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind", "where"),
    [
        ("sqlite:///data/lark.db", SqliteStore, "data/lark.db"),
        ("sqlite:////var/lib/lark.db", SqliteStore, "/var/lib/lark.db"),
        ("sqlite:///:memory:", SqliteStore, ":memory:"),
        ("postgresql://u@h/db", PostgresStore, "public"),
        ("postgres://u@h/db", PostgresStore, "public"),
    ],
    ids=["sqlite-relative", "sqlite-absolute", "sqlite-memory", "postgresql", "postgres"],
)
def test_make_store_by_url(url: str, kind: type, where: str) -> None:
    made = make_store(url)
    assert type(made) is kind
    assert (made.path if isinstance(made, SqliteStore) else made.schema) == where  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "message"),
    [("mysql://h/db", "'mysql' is not supported"), ("sqlite:///", "has no path")],
    ids=["unknown-scheme", "sqlite-without-path"],
)
def test_make_store_refuses_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_store(url)


async def test_in_memory_sqlite_store(tmp_path: Path) -> None:
    async with SqliteStore(":memory:") as store:
        await store.add_app("cli_a", "A", secret="s")
        assert await store.get_app_secret("cli_a") == "s"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("schema", "quoted"),
    [("public", '"public"'), ('we"ird', '"we""ird"'), ("x; DROP TABLE y", '"x; DROP TABLE y"')],
    ids=["plain", "quote", "injection"],
)
def test_quote_ident(schema: str, quoted: str) -> None:
    assert quote_ident(schema) == quoted


def test_quote_ident_refuses_unusable_names() -> None:
    for bad in ("", "a\x00b", "x" * 64):
        with pytest.raises(ValueError, match="1-63 bytes"):
            quote_ident(bad)


def test_redact_dsn() -> None:
    assert redact_dsn("postgresql://postgres:pw@h/db") == "postgresql://postgres:***@h/db"
    assert redact_dsn("postgresql://postgres@h/db") == "postgresql://postgres@h/db"


# -- a database that goes away --------------------------------------------------------------


async def _blocked_by(monitor: asyncpg.Connection, pid: int) -> int:
    """The backend that waits on a lock held by ``pid``, once one does (polled)."""
    for _ in range(2000):
        victim: int | None = await monitor.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", pid
        )
        if victim is not None:
            return victim
        await anyio.sleep(0.01)
    raise AssertionError(f"no backend blocked on pid {pid} within 20 s")


@pytest.mark.postgres
@pytest.mark.parametrize("interruption", ["terminate", "cancel"])
async def test_postgres_transaction_interrupted_midway(tmp_path: Path, interruption: str) -> None:
    """The backend is terminated (pg_terminate_backend from a second connection), or the
    calling task is cancelled, while a sync's transaction has written users: nothing of it
    stays, a termination surfaces as StoreUnavailableError, and the store recovers."""
    backend = Backend("postgres", tmp_path)
    killer = locker = None
    try:
        store = await backend.open()
        await store.add_app("cli_a", "A")
        await store.replace_app_users("cli_a", [user("ou_1"), user("ou_2")], T0)
        before = (await store.list_users("cli_a"), await store.get_sync_state("cli_a"))

        # The sync writes its users, then blocks on sync_state, which is locked here.
        settings = {"search_path": quote_ident(backend.schema)}
        locker = await asyncpg.connect(POSTGRES_DSN, server_settings=settings)
        killer = await asyncpg.connect(POSTGRES_DSN)
        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE sync_state IN EXCLUSIVE MODE")
        errors: list[BaseException] = []

        async def sync() -> None:
            try:
                listing = [user("ou_1", name="changed"), user("ou_3")]
                await store.replace_app_users("cli_a", listing, T0 + timedelta(hours=6))
            except StoreUnavailableError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sync)
            victim = await _blocked_by(killer, locker.get_server_pid())
            # Proof that it is mid-way: the blocked transaction holds a write lock on users.
            assert (
                await killer.fetchval(
                    "SELECT count(*) FROM pg_locks AS l JOIN pg_class AS c ON c.oid = l.relation "
                    "WHERE l.pid = $1 AND c.relname = 'users' AND l.mode = 'RowExclusiveLock'",
                    victim,
                )
                == 1
            )
            if interruption == "terminate":
                assert await killer.fetchval("SELECT pg_terminate_backend($1)", victim) is True
            else:
                tg.cancel_scope.cancel()
        await lock.rollback()

        if interruption == "terminate":
            [error] = errors
            assert "unavailable" in str(error)
            assert "rolled back" in str(error)
            assert isinstance(error, ConnectionError)
        else:
            assert errors == []
        assert (await store.list_users("cli_a"), await store.get_sync_state("cli_a")) == before
        # The pool replaced or reset the connection: the store works again.
        assert await store.replace_app_users("cli_a", [user("ou_1")], T0) == SyncSummary(
            deactivated=1
        )
    finally:
        for conn in (killer, locker):
            if conn is not None:
                await conn.close()
        await backend.cleanup()


@pytest.mark.postgres
async def test_postgres_unreachable_is_unavailable() -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", min_size=1)
    with pytest.raises(StoreUnavailableError, match=r"127\.0\.0\.1:1/"):
        await store.open()


async def test_sqlite_locked_database_is_unavailable(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "lark.db", busy_timeout=0.05) as store:
        await store.add_app("cli_a", "A")
        other = sqlite3.connect(tmp_path / "lark.db", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another writer holds the database
            with pytest.raises(StoreUnavailableError, match="locked"):
                await store.update_app("cli_a", name="B")
            other.execute("ROLLBACK")
        finally:
            other.close()
        app = await store.get_app("cli_a")
        assert app is not None
        assert app.name == "A"
        assert (await store.update_app("cli_a", name="B")).name == "B"


@pytest.mark.parametrize("interruption", ["cancel", "error"])
async def test_interrupted_transaction_is_rolled_back(store: AnyStore, interruption: str) -> None:
    await store.add_app("cli_a", "A")
    with anyio.CancelScope() as scope:
        try:
            async with store._transaction() as conn:
                await conn.execute("UPDATE apps SET name = $1 WHERE app_id = $2", "B", "cli_a")
                if interruption == "cancel":
                    scope.cancel()
                    await anyio.sleep(3600)  # cancelled at once
                raise LookupError("the body failed")
        except LookupError:
            assert interruption == "error"
    app = await store.get_app("cli_a")
    assert app is not None
    assert app.name == "A"
    await store.ping()
