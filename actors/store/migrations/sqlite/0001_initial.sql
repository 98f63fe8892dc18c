-- The Lark service's tables on SQLite. Times are UTC ISO 8601 text with microseconds and
-- "+00:00" (the store always writes that exact form, so text order is time order); days are
-- "YYYY-MM-DD"; booleans are 0/1; lists are JSON arrays.

CREATE TABLE apps (
    app_id            TEXT PRIMARY KEY CHECK (length(app_id) > 0),
    name              TEXT NOT NULL,
    active            INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    admin_open_id     TEXT,
    -- Fernet token (AES-128-CBC + HMAC-SHA256) of the app secret; never the secret itself.
    secret_ciphertext TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE TABLE users (
    app_id         TEXT NOT NULL REFERENCES apps (app_id),
    open_id        TEXT NOT NULL CHECK (length(open_id) > 0),
    union_id       TEXT,
    user_id        TEXT,
    name           TEXT NOT NULL,
    en_name        TEXT,
    email          TEXT,
    mobile         TEXT,
    department_ids TEXT NOT NULL DEFAULT '[]',
    is_frozen      INTEGER NOT NULL DEFAULT 0,
    is_resigned    INTEGER NOT NULL DEFAULT 0,
    is_activated   INTEGER NOT NULL DEFAULT 1,
    is_exited      INTEGER NOT NULL DEFAULT 0,
    active         INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (app_id, open_id)
);

CREATE TABLE sync_state (
    app_id          TEXT PRIMARY KEY REFERENCES apps (app_id),
    last_sync_at    TEXT NOT NULL,
    last_user_count INTEGER NOT NULL CHECK (last_user_count >= 0)
);

CREATE TABLE user_tokens (
    app_id             TEXT NOT NULL REFERENCES apps (app_id),
    open_id            TEXT NOT NULL CHECK (length(open_id) > 0),
    access_expires_at  TEXT,
    refresh_expires_at TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    PRIMARY KEY (app_id, open_id)
);
CREATE INDEX user_tokens_refresh_expires_at ON user_tokens (refresh_expires_at);

-- One row per notice slot (token, level, local day): the primary key is what makes
-- "at most one notice per token, level and day" hold across runs, retries and replicas.
CREATE TABLE notices (
    app_id     TEXT NOT NULL,
    open_id    TEXT NOT NULL,
    level      TEXT NOT NULL CHECK (level IN ('warning', 'critical', 'expired')),
    day        TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('claimed', 'sent')),
    claimed_at TEXT NOT NULL,
    sent_at    TEXT,
    message_id TEXT,
    PRIMARY KEY (app_id, open_id, level, day)
);

CREATE TABLE health_results (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    checked_at TEXT NOT NULL,
    component  TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('ok', 'fail', 'not_configured')),
    latency    REAL,
    detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX health_results_component ON health_results (component, checked_at);
CREATE INDEX health_results_checked_at ON health_results (checked_at);

CREATE TABLE failures (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    job_id       TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    scheduled_at TEXT,
    started_at   TEXT NOT NULL,
    duration     REAL NOT NULL,
    exc_type     TEXT NOT NULL,
    message      TEXT NOT NULL,
    traceback    TEXT NOT NULL,
    timed_out    INTEGER NOT NULL DEFAULT 0,
    attempt      INTEGER NOT NULL DEFAULT 1,
    retry_of     TEXT
);
CREATE INDEX failures_job_id ON failures (job_id, seq);

CREATE TABLE failure_retries (
    failure_id       TEXT NOT NULL REFERENCES failures (id) ON DELETE CASCADE,
    run_id           TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    outcome          TEXT NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed', 'skipped')),
    manual           INTEGER NOT NULL DEFAULT 1,
    retry_failure_id TEXT,
    PRIMARY KEY (failure_id, run_id)
);
