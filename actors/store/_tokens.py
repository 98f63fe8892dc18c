"""Users' OAuth tokens: expiry rows, the encrypted tokens themselves, and used OAuth states.

Concurrency contract: every write of new token values bumps ``version``. A refresh reads the
row, asks Lark, and stores the answer only over the version it read
(:meth:`TokensMixin.rotate_user_tokens`), so two processes refreshing one user at once never
overwrite a newer authorization with an older one, and a refusal is recorded only against
the tokens that were refused (:meth:`TokensMixin.invalidate_user_token`).
"""

from __future__ import annotations

from datetime import datetime

from actors.store._apps import AppsMixin
from actors.store._sql import Row, utc, where_equal
from actors.store.base import (
    TokenGrant,
    TokenInvalidReason,
    UserCredentials,
    UserToken,
)

__all__ = ()

# Not "ciphertext IS NOT NULL": SQLite 3.40 answers 1 for that in a RETURNING clause when
# the column (added by ALTER TABLE) was left out of the INSERT.
_TOKEN_COLUMNS = (
    "app_id, open_id, access_expires_at, refresh_expires_at, updated_at, name, scope, "
    "authorized_at, invalid_reason, invalid_at, "
    "(coalesce(length(access_token_ciphertext), 0) > 0) AS has_credentials"
)
_EXPIRY_COLUMNS = "app_id, open_id, access_expires_at, refresh_expires_at, updated_at"


class TokensMixin(AppsMixin):
    """The user-token methods and ``consume_oauth_state``."""

    def _token(self, row: Row) -> UserToken:
        def when(column: str) -> datetime | None:
            value = row[column]
            return None if value is None else self.codec.from_dt(value)

        refresh = when("refresh_expires_at")
        assert refresh is not None  # NOT NULL column
        return UserToken(
            app_id=row["app_id"],
            open_id=row["open_id"],
            access_expires_at=when("access_expires_at"),
            refresh_expires_at=refresh,
            updated_at=when("updated_at"),
            name=row["name"],
            scope=row["scope"],
            authorized_at=when("authorized_at"),
            invalid_reason=row["invalid_reason"],
            invalid_at=when("invalid_at"),
            has_credentials=bool(row["has_credentials"]),
        )

    def _encrypt(self, grant: TokenGrant) -> tuple[str, str]:
        box = self._secret_box()
        return box.encrypt(grant.access_token), box.encrypt(grant.refresh_token)

    def _grant_times(self, grant: TokenGrant) -> tuple[object, object]:
        return (
            self.codec.dt(utc(grant.access_expires_at, "access_expires_at")),
            self.codec.dt(utc(grant.refresh_expires_at, "refresh_expires_at")),
        )

    async def upsert_user_token(self, token: UserToken) -> UserToken:
        access = token.access_expires_at
        async with self._transaction() as conn:
            await self._require_app(conn, token.app_id)
            row = await conn.fetchrow(
                f"INSERT INTO user_tokens ({_EXPIRY_COLUMNS}) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (app_id, open_id) DO UPDATE SET "
                "access_expires_at = excluded.access_expires_at, "
                "refresh_expires_at = excluded.refresh_expires_at, "
                f"updated_at = excluded.updated_at RETURNING {_TOKEN_COLUMNS}",
                token.app_id,
                token.open_id,
                None if access is None else self.codec.dt(utc(access, "access_expires_at")),
                self.codec.dt(utc(token.refresh_expires_at, "refresh_expires_at")),
                self.codec.dt(self.now()),
            )
        assert row is not None  # an upsert always answers its row
        return self._token(row)

    async def list_user_tokens(self, app_id: str | None = None) -> list[UserToken]:
        async with self._read() as conn:
            clause, args = where_equal(app_id=app_id)
            rows = await conn.fetch(
                f"SELECT {_TOKEN_COLUMNS} FROM user_tokens {clause} ORDER BY app_id, open_id",
                *args,
            )
        return [self._token(row) for row in rows]

    async def delete_tokens_expired_before(
        self, cutoff: datetime, *, batch_size: int = 500, max_batches: int | None = None
    ) -> int:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        if max_batches is not None and max_batches < 1:
            raise ValueError(f"max_batches={max_batches} must be at least 1, or None")
        limit = self.codec.dt(utc(cutoff, "cutoff"))
        total = batches = 0
        while max_batches is None or batches < max_batches:
            # One transaction per batch keeps locks short while a big backlog drains.
            async with self._transaction() as conn:
                deleted = await conn.execute(
                    "DELETE FROM user_tokens WHERE (app_id, open_id) IN ("
                    "SELECT app_id, open_id FROM user_tokens "
                    "WHERE refresh_expires_at < $1 OR invalid_at < $1 "
                    "ORDER BY refresh_expires_at LIMIT $2)",
                    limit,
                    batch_size,
                )
            total += deleted
            batches += 1
            if deleted < batch_size:
                break
        return total

    # -- the tokens themselves ----------------------------------------------------------

    async def save_user_authorization(
        self, app_id: str, open_id: str, grant: TokenGrant, *, name: str = ""
    ) -> UserToken:
        if not open_id:
            raise ValueError("open_id is empty; pass the user's open_id (ou_...)")
        access_ct, refresh_ct = self._encrypt(grant)
        access_at, refresh_at = self._grant_times(grant)
        now = self.codec.dt(self.now())
        async with self._transaction() as conn:
            await self._require_app(conn, app_id)
            row = await conn.fetchrow(
                "INSERT INTO user_tokens (app_id, open_id, access_expires_at, "
                "refresh_expires_at, updated_at, name, scope, authorized_at, invalid_reason, "
                "invalid_at, access_token_ciphertext, refresh_token_ciphertext, version) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $5, NULL, NULL, $8, $9, 1) "
                "ON CONFLICT (app_id, open_id) DO UPDATE SET "
                "access_expires_at = excluded.access_expires_at, "
                "refresh_expires_at = excluded.refresh_expires_at, "
                "updated_at = excluded.updated_at, name = excluded.name, "
                "scope = excluded.scope, authorized_at = excluded.authorized_at, "
                "invalid_reason = NULL, invalid_at = NULL, "
                "access_token_ciphertext = excluded.access_token_ciphertext, "
                "refresh_token_ciphertext = excluded.refresh_token_ciphertext, "
                f"version = user_tokens.version + 1 RETURNING {_TOKEN_COLUMNS}",
                app_id,
                open_id,
                access_at,
                refresh_at,
                now,
                name,
                grant.scope,
                access_ct,
                refresh_ct,
            )
        assert row is not None  # an upsert always answers its row
        return self._token(row)

    async def get_user_credentials(self, app_id: str, open_id: str) -> UserCredentials | None:
        async with self._read() as conn:
            row = await conn.fetchrow(
                f"SELECT {_TOKEN_COLUMNS}, access_token_ciphertext, refresh_token_ciphertext, "
                "version FROM user_tokens WHERE app_id = $1 AND open_id = $2",
                app_id,
                open_id,
            )
        if row is None or row["access_token_ciphertext"] is None:
            return None
        box = self._secret_box()
        what = f"tokens of user {open_id}"
        return UserCredentials(
            token=self._token(row),
            access_token=box.decrypt(row["access_token_ciphertext"], app_id=app_id, what=what),
            refresh_token=box.decrypt(row["refresh_token_ciphertext"], app_id=app_id, what=what),
            version=int(row["version"]),
        )

    async def rotate_user_tokens(
        self, app_id: str, open_id: str, version: int, grant: TokenGrant
    ) -> UserToken | None:
        access_ct, refresh_ct = self._encrypt(grant)
        access_at, refresh_at = self._grant_times(grant)
        async with self._transaction() as conn:
            # One statement: the new refresh token is never stored without its access token.
            row = await conn.fetchrow(
                "UPDATE user_tokens SET access_expires_at = $4, refresh_expires_at = $5, "
                "access_token_ciphertext = $6, refresh_token_ciphertext = $7, scope = $8, "
                "updated_at = $9, invalid_reason = NULL, invalid_at = NULL, "
                "version = version + 1 "
                "WHERE app_id = $1 AND open_id = $2 AND version = $3 "
                f"RETURNING {_TOKEN_COLUMNS}",
                app_id,
                open_id,
                version,
                access_at,
                refresh_at,
                access_ct,
                refresh_ct,
                grant.scope,
                self.codec.dt(self.now()),
            )
        return None if row is None else self._token(row)

    async def invalidate_user_token(
        self, app_id: str, open_id: str, version: int, reason: TokenInvalidReason
    ) -> bool:
        if reason not in ("invalid", "expired", "revoked"):
            raise ValueError(f"reason={reason!r} must be 'invalid', 'expired' or 'revoked'")
        now = self.codec.dt(self.now())
        async with self._transaction() as conn:
            changed = await conn.execute(
                "UPDATE user_tokens SET invalid_reason = $4, invalid_at = $5, updated_at = $5 "
                "WHERE app_id = $1 AND open_id = $2 AND version = $3 "
                "AND invalid_reason IS NULL",
                app_id,
                open_id,
                version,
                reason,
                now,
            )
        return changed > 0

    async def delete_user_token(self, app_id: str, open_id: str) -> bool:
        async with self._transaction() as conn:
            deleted = await conn.execute(
                "DELETE FROM user_tokens WHERE app_id = $1 AND open_id = $2", app_id, open_id
            )
        return deleted > 0

    async def consume_oauth_state(self, nonce: str, app_id: str, expires_at: datetime) -> bool:
        if not nonce:
            raise ValueError("nonce is empty; pass the state's nonce")
        until = self.codec.dt(utc(expires_at, "expires_at"))
        async with self._transaction() as conn:
            await conn.execute(
                "DELETE FROM oauth_states WHERE expires_at < $1", self.codec.dt(self.now())
            )
            row = await conn.fetchrow(
                "INSERT INTO oauth_states (nonce, app_id, expires_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
                nonce,
                app_id,
                until,
            )
        return row is not None
