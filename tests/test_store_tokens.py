"""The store's user-token contract (OAuth tokens encrypted at rest, optimistic rotation, used
states, summary slots, derived keys), on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from cryptography.fernet import Fernet

from actors.lark import UserTokenGrant
from actors.store import AppNotFoundError, SecretKeyError, UserToken
from tests._store_support import T0, AnyStore, Backend

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
    opened = await backend.open()
    await opened.add_app("cli_a", "A")
    return opened


def grant(n: int, *, refresh_days: float = 30, at: datetime = T0) -> UserTokenGrant:
    return UserTokenGrant(
        access_token=f"u-access-{n:04d}-abcdefghijklmnop",
        access_expires_at=at + timedelta(hours=2),
        refresh_token=f"ur-refresh-{n:04d}-abcdefghijklmnop",
        refresh_expires_at=at + timedelta(days=refresh_days),
        scope="auth:user.id:read",
    )


async def test_an_authorization_is_stored_encrypted_and_read_back(
    backend: Backend, store: AnyStore
) -> None:
    saved = await store.save_user_authorization("cli_a", "ou_1", grant(1), name="Ann")
    assert saved == UserToken(
        app_id="cli_a",
        open_id="ou_1",
        access_expires_at=T0 + timedelta(hours=2),
        refresh_expires_at=T0 + timedelta(days=30),
        updated_at=T0,
        name="Ann",
        scope="auth:user.id:read",
        authorized_at=T0,
        has_credentials=True,
    )
    assert await store.list_user_tokens("cli_a") == [saved]
    credentials = await store.get_user_credentials("cli_a", "ou_1")
    assert credentials is not None
    assert (credentials.access_token, credentials.refresh_token, credentials.version) == (
        "u-access-0001-abcdefghijklmnop",
        "ur-refresh-0001-abcdefghijklmnop",
        1,
    )
    assert credentials.token == saved
    assert "u-access" not in repr(credentials)
    assert "ur-refresh" not in repr(credentials)
    # At rest: Fernet ciphertexts only.
    ((access, refresh),) = await backend.raw(
        "SELECT access_token_ciphertext, refresh_token_ciphertext FROM user_tokens"
    )
    assert access.startswith("gAAAA")
    assert refresh.startswith("gAAAA")
    dump = " ".join(str(cell) for row in await backend.raw("SELECT * FROM user_tokens")
                    for cell in row)
    assert "u-access" not in dump
    assert "ur-refresh" not in dump


async def test_rows_with_expiry_times_only_have_no_credentials(store: AnyStore) -> None:
    await store.upsert_user_token(
        UserToken(app_id="cli_a", open_id="ou_1", refresh_expires_at=T0 + timedelta(days=3))
    )
    assert await store.get_user_credentials("cli_a", "ou_1") is None
    assert await store.get_user_credentials("cli_a", "ou_nobody") is None
    (row,) = await store.list_user_tokens()
    assert (row.has_credentials, row.name, row.authorized_at) == (False, "", None)


async def test_rotation_is_stored_only_over_the_version_it_started_from(
    backend: Backend, store: AnyStore
) -> None:
    await store.save_user_authorization("cli_a", "ou_1", grant(1), name="Ann")
    backend.clock.advance(3600)
    later = T0 + timedelta(hours=1)
    rotated = await store.rotate_user_tokens("cli_a", "ou_1", 1, grant(2, at=later))
    assert rotated is not None
    assert (rotated.refresh_expires_at, rotated.updated_at, rotated.authorized_at) == (
        later + timedelta(days=30),
        later,
        T0,  # a refresh is not a new authorization
    )
    credentials = await store.get_user_credentials("cli_a", "ou_1")
    assert credentials is not None
    assert (credentials.refresh_token, credentials.version) == (
        "ur-refresh-0002-abcdefghijklmnop",
        2,
    )
    # A second refresh that started from version 1 lost the race: nothing is written.
    assert await store.rotate_user_tokens("cli_a", "ou_1", 1, grant(3)) is None
    credentials = await store.get_user_credentials("cli_a", "ou_1")
    assert credentials is not None
    assert credentials.refresh_token == "ur-refresh-0002-abcdefghijklmnop"


async def test_invalidation_is_recorded_against_the_refused_version(
    backend: Backend, store: AnyStore
) -> None:
    await store.save_user_authorization("cli_a", "ou_1", grant(1))
    assert await store.invalidate_user_token("cli_a", "ou_1", 0, "revoked") is False  # stale
    backend.clock.advance(60)
    assert await store.invalidate_user_token("cli_a", "ou_1", 1, "revoked") is True
    assert await store.invalidate_user_token("cli_a", "ou_1", 1, "invalid") is False  # once
    (row,) = await store.list_user_tokens()
    assert (row.invalid_reason, row.invalid_at) == ("revoked", T0 + timedelta(seconds=60))
    # A refresh that won with the same version (another process) clears it ...
    assert await store.rotate_user_tokens("cli_a", "ou_1", 1, grant(2)) is not None
    (row,) = await store.list_user_tokens()
    assert (row.invalid_reason, row.invalid_at) == (None, None)
    # ... and so does a new authorization.
    assert await store.invalidate_user_token("cli_a", "ou_1", 2, "expired") is True
    await store.save_user_authorization("cli_a", "ou_1", grant(3))
    credentials = await store.get_user_credentials("cli_a", "ou_1")
    assert credentials is not None
    assert (credentials.token.invalid_reason, credentials.version) == (None, 3)
    with pytest.raises(ValueError, match="reason='gone' must be"):
        await store.invalidate_user_token("cli_a", "ou_1", 3, "gone")  # type: ignore[arg-type]


async def test_delete_user_token(store: AnyStore) -> None:
    await store.save_user_authorization("cli_a", "ou_1", grant(1))
    assert await store.delete_user_token("cli_a", "ou_1") is True
    assert await store.delete_user_token("cli_a", "ou_1") is False
    assert await store.list_user_tokens() == []


async def test_bad_input_is_refused_and_writes_nothing(store: AnyStore) -> None:
    with pytest.raises(AppNotFoundError):
        await store.save_user_authorization("cli_nope", "ou_1", grant(1))
    with pytest.raises(ValueError, match="open_id is empty"):
        await store.save_user_authorization("cli_a", "", grant(1))
    naive = UserTokenGrant(
        access_token="u-x", access_expires_at=datetime(2026, 1, 1),
        refresh_token="ur-x", refresh_expires_at=datetime(2026, 1, 2),
    )
    with pytest.raises(ValueError, match="naive datetime"):
        await store.save_user_authorization("cli_a", "ou_1", naive)
    assert await store.list_user_tokens() == []


async def test_tokens_do_not_decrypt_with_another_key(backend: Backend) -> None:
    if backend.kind == "sqlite":
        first = await backend.open()
        other = await backend.open(key_file=backend.tmp_path / "other.key")
    else:
        first = await backend.open()
        other = await backend.open(secret_key=Fernet.generate_key())
    await first.add_app("cli_a", "A")
    await first.save_user_authorization("cli_a", "ou_1", grant(1))
    with pytest.raises(SecretKeyError, match=r"tokens of user ou_1 of app 'cli_a'.*authorise"):
        await other.get_user_credentials("cli_a", "ou_1")


async def test_an_oauth_state_is_used_once(backend: Backend, store: AnyStore) -> None:
    until = T0 + timedelta(minutes=10)
    assert await store.consume_oauth_state("n1", "cli_a", until) is True
    assert await store.consume_oauth_state("n1", "cli_a", until) is False  # a replay

    async def consume(results: list[bool]) -> None:
        results.append(await store.consume_oauth_state("n2", "cli_a", until))

    raced: list[bool] = []
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(consume, raced)
    assert sorted(raced) == [False, False, False, True]
    # Expired states are forgotten: the table holds only what could still be replayed.
    backend.clock.advance(11 * 60)
    assert await store.consume_oauth_state("n3", "cli_a", T0 + timedelta(minutes=21)) is True
    assert await backend.raw("SELECT nonce FROM oauth_states") == [("n3",)]
    with pytest.raises(ValueError, match="nonce is empty"):
        await store.consume_oauth_state("", "cli_a", until)


DAY = date(2026, 11, 29)


async def test_summary_slots_once_a_day_per_app(store: AnyStore) -> None:
    assert await store.claim_summary("cli_a", DAY) is True
    assert await store.claim_summary("cli_a", DAY) is False
    await store.release_summary("cli_a", DAY)  # sending failed
    assert await store.claim_summary("cli_a", DAY) is True
    await store.record_summary_sent("cli_a", DAY, message_id="om_1")
    await store.release_summary("cli_a", DAY)  # a sent slot stays
    assert await store.claim_summary("cli_a", DAY) is False
    assert await store.claim_summary("cli_b", DAY) is True
    assert await store.claim_summary("cli_a", DAY + timedelta(days=1)) is True
    summaries = await store.list_summaries(day=DAY)
    assert [(s.app_id, s.status, s.message_id, s.sent_at) for s in summaries] == [
        ("cli_a", "sent", "om_1", T0),
        ("cli_b", "claimed", None, None),
    ]
    assert [s.day for s in await store.list_summaries(app_id="cli_a")] == [
        DAY,
        DAY + timedelta(days=1),
    ]
    await store.claim_notice("cli_a", "ou_1", "warning", DAY)
    assert await store.delete_notices_before(DAY + timedelta(days=1)) == 3
    assert [s.day for s in await store.list_summaries()] == [DAY + timedelta(days=1)]


async def test_derived_keys(backend: Backend, store: AnyStore) -> None:
    state_key = store.derive_key("oauth-state")
    assert len(state_key) == 32
    assert store.derive_key("oauth-state") == state_key
    assert store.derive_key("something-else") != state_key
    same_key = await backend.open()  # same database, same key: same derived key
    assert same_key.derive_key("oauth-state") == state_key
    if backend.kind == "postgres":
        other = await backend.open(secret_key=Fernet.generate_key())
    else:
        other = await backend.open(key_file=backend.tmp_path / "other.key")
    assert other.derive_key("oauth-state") != state_key
    with pytest.raises(ValueError, match="purpose is empty"):
        store.derive_key("")


async def test_tokens_refused_longer_ago_than_the_cutoff_are_cleaned_up(
    backend: Backend, store: AnyStore
) -> None:
    await store.save_user_authorization("cli_a", "ou_refused", grant(1, refresh_days=25))
    await store.save_user_authorization("cli_a", "ou_fine", grant(2, refresh_days=25))
    assert await store.invalidate_user_token("cli_a", "ou_refused", 1, "revoked")
    backend.clock.advance(8 * 86400)
    cutoff = backend.clock.now - timedelta(days=7)
    assert await store.delete_tokens_expired_before(cutoff) == 1
    assert [t.open_id for t in await store.list_user_tokens()] == ["ou_fine"]
