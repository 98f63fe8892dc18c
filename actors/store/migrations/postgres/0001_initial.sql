-- The Lark service's tables on PostgreSQL. Unqualified names: the store sets search_path
-- to its schema on every connection.

CREATE TABLE apps (
    app_id            text PRIMARY KEY CHECK (app_id <> ''),
    name              text NOT NULL,
    active            boolean NOT NULL DEFAULT true,
    admin_open_id     text,
    -- Fernet token (AES-128-CBC + HMAC-SHA256) of the app secret; never the secret itself.
    secret_ciphertext text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE TABLE users (
    app_id         text NOT NULL REFERENCES apps (app_id),
    open_id        text NOT NULL CHECK (open_id <> ''),
    union_id       text,
    user_id        text,
    name           text NOT NULL,
    en_name        text,
    email          text,
    mobile         text,
    department_ids text[] NOT NULL DEFAULT '{}',
    is_frozen      boolean NOT NULL DEFAULT false,
    is_resigned    boolean NOT NULL DEFAULT false,
    is_activated   boolean NOT NULL DEFAULT true,
    is_exited      boolean NOT NULL DEFAULT false,
    active         boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (app_id, open_id)
);

CREATE TABLE sync_state (
    app_id          text PRIMARY KEY REFERENCES apps (app_id),
    last_sync_at    timestamptz NOT NULL,
    last_user_count integer NOT NULL CHECK (last_user_count >= 0)
);

CREATE TABLE user_tokens (
    app_id             text NOT NULL REFERENCES apps (app_id),
    open_id            text NOT NULL CHECK (open_id <> ''),
    access_expires_at  timestamptz,
    refresh_expires_at timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (app_id, open_id)
);
CREATE INDEX user_tokens_refresh_expires_at ON user_tokens (refresh_expires_at);

-- One row per notice slot (token, level, local day): the primary key is what makes
-- "at most one notice per token, level and day" hold across runs, retries and replicas.
CREATE TABLE notices (
    app_id     text NOT NULL,
    open_id    text NOT NULL,
    level      text NOT NULL CHECK (level IN ('warning', 'critical', 'expired')),
    day        date NOT NULL,
    status     text NOT NULL CHECK (status IN ('claimed', 'sent')),
    claimed_at timestamptz NOT NULL,
    sent_at    timestamptz,
    message_id text,
    PRIMARY KEY (app_id, open_id, level, day)
);

CREATE TABLE health_results (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checked_at timestamptz NOT NULL,
    component  text NOT NULL,
    status     text NOT NULL CHECK (status IN ('ok', 'fail', 'not_configured')),
    latency    double precision,
    detail     text NOT NULL DEFAULT ''
);
CREATE INDEX health_results_component ON health_results (component, checked_at);
CREATE INDEX health_results_checked_at ON health_results (checked_at);

CREATE TABLE failures (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text NOT NULL UNIQUE,
    job_id       text NOT NULL,
    run_id       text NOT NULL,
    scheduled_at timestamptz,
    started_at   timestamptz NOT NULL,
    duration     double precision NOT NULL,
    exc_type     text NOT NULL,
    message      text NOT NULL,
    traceback    text NOT NULL,
    timed_out    boolean NOT NULL DEFAULT false,
    attempt      integer NOT NULL DEFAULT 1,
    retry_of     text
);
CREATE INDEX failures_job_id ON failures (job_id, seq);

CREATE TABLE failure_retries (
    failure_id       text NOT NULL REFERENCES failures (id) ON DELETE CASCADE,
    run_id           text NOT NULL,
    started_at       timestamptz NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed', 'skipped')),
    manual           boolean NOT NULL DEFAULT true,
    retry_failure_id text,
    PRIMARY KEY (failure_id, run_id)
);
