-- Users' OAuth authorizations: the tokens themselves (encrypted like app secrets), who the
-- user is, whether Lark refused the refresh token, and a version for optimistic updates.
-- Plus the daily summary slots of each app's administrator and the used OAuth states.

-- Fernet tokens (AES-128-CBC + HMAC-SHA256) of the user's access and refresh tokens;
-- NULL for rows that only record expiry times.
ALTER TABLE user_tokens ADD COLUMN access_token_ciphertext TEXT;
ALTER TABLE user_tokens ADD COLUMN refresh_token_ciphertext TEXT;
ALTER TABLE user_tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE user_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE user_tokens ADD COLUMN authorized_at TEXT;
-- Set when Lark refused the refresh token (20026 invalid, 20037 expired, 20064 revoked);
-- cleared by the next authorization.
ALTER TABLE user_tokens ADD COLUMN invalid_reason TEXT
    CHECK (invalid_reason IN ('invalid', 'expired', 'revoked'));
ALTER TABLE user_tokens ADD COLUMN invalid_at TEXT;
-- Bumped by every write of new token values: a refresh stores its result only over the
-- version it started from.
ALTER TABLE user_tokens ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- One row per app and local day: at most one summary a day to the app's administrator.
CREATE TABLE notice_summaries (
    app_id     TEXT NOT NULL,
    day        TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('claimed', 'sent')),
    claimed_at TEXT NOT NULL,
    sent_at    TEXT,
    message_id TEXT,
    PRIMARY KEY (app_id, day)
);

-- OAuth states already used at the callback (single use), kept until they expire.
CREATE TABLE oauth_states (
    nonce      TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);
