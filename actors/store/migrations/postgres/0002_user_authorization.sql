-- Users' OAuth authorizations: the tokens themselves (encrypted like app secrets), who the
-- user is, whether Lark refused the refresh token, and a version for optimistic updates.
-- Plus the daily summary slots of each app's administrator and the used OAuth states.

ALTER TABLE user_tokens
    -- Fernet tokens (AES-128-CBC + HMAC-SHA256) of the user's access and refresh tokens;
    -- NULL for rows that only record expiry times.
    ADD COLUMN access_token_ciphertext text,
    ADD COLUMN refresh_token_ciphertext text,
    ADD COLUMN name text NOT NULL DEFAULT '',
    ADD COLUMN scope text NOT NULL DEFAULT '',
    ADD COLUMN authorized_at timestamptz,
    -- Set when Lark refused the refresh token (20026 invalid, 20037 expired, 20064
    -- revoked); cleared by the next authorization.
    ADD COLUMN invalid_reason text CHECK (invalid_reason IN ('invalid', 'expired', 'revoked')),
    ADD COLUMN invalid_at timestamptz,
    -- Bumped by every write of new token values: a refresh stores its result only over
    -- the version it started from.
    ADD COLUMN version integer NOT NULL DEFAULT 0;

-- One row per app and local day: at most one summary a day to the app's administrator.
CREATE TABLE notice_summaries (
    app_id     text NOT NULL,
    day        date NOT NULL,
    status     text NOT NULL CHECK (status IN ('claimed', 'sent')),
    claimed_at timestamptz NOT NULL,
    sent_at    timestamptz,
    message_id text,
    PRIMARY KEY (app_id, day)
);

-- OAuth states already used at the callback (single use), kept until they expire.
CREATE TABLE oauth_states (
    nonce      text PRIMARY KEY,
    app_id     text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);
