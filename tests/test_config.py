"""The service configuration: defaults, TOML, environment overrides, secrets, one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest
from cryptography.fernet import Fernet

from actors.config import (
    Config,
    ConfigError,
    JobConfig,
    Secret,
    load_config,
)

KEY = Fernet.generate_key().decode()


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "lark-scheduler.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_follow_the_seed() -> None:
    config = load_config(None, {})
    assert config.store.url == "sqlite:///./data/lark-scheduler.db"
    assert config.lark.base_url == "https://open.feishu.cn"
    assert config.rabbitmq.url is None
    assert (config.http.host, config.http.port, config.http.admin_token) == (
        "127.0.0.1",
        8080,
        None,
    )
    assert config.scheduler == type(config.scheduler)(
        timezone="Asia/Shanghai", coalesce=True, max_instances=1, misfire_grace_time=60.0
    )
    jobs = config.jobs
    assert (jobs.sync_user_info.kind, jobs.sync_user_info.interval_kwargs()) == (
        "interval",
        {"hours": 6},
    )
    assert jobs.check_token_expiry.cron == "0 9,18 * * *"
    assert jobs.cleanup_expired_tokens.cron == "0 3 * * *"
    assert jobs.health_check.interval_kwargs() == {"minutes": 5}
    assert all(getattr(jobs, name).enabled for name in jobs.__struct_fields__)
    assert (config.expiry.warning_days, config.expiry.critical_days) == (7, 3)
    assert (config.cleanup.retention_days, config.cleanup.batch_size) == (7, 500)
    assert config.failures == type(config.failures)(
        retention_days=30, outbox_size=10_000, flush_timeout=10.0
    )
    assert (config.logging.level, config.logging.format) == ("INFO", "text")
    assert config.metrics.per_job_histograms == 1000


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.http = config.http  # type: ignore[misc]


def test_data_dir_moves_the_default_database(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[store]\ndata_dir = "/var/lib/lark"\n'), {})
    assert config.store.url == "sqlite:////var/lib/lark/lark-scheduler.db"


def test_toml_file_sets_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [http]
        port = 9001
        [jobs.sync_user_info]
        hours = 2
        [jobs.health_check]
        enabled = false
        [logging]
        level = "debug"
        """.replace("        ", ""),
    )
    config = load_config(path, {})
    assert config.http.port == 9001
    assert config.jobs.sync_user_info.interval_kwargs() == {"hours": 2}
    # Disabling a job keeps its built-in schedule.
    assert config.jobs.health_check == JobConfig(enabled=False, minutes=5, timeout=60.0)
    assert config.logging.level == "DEBUG"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[http]\nport = 9001\n[store]\nurl = "sqlite:///a.db"\n')
    env = {
        "LARK_SCHEDULER_HTTP__PORT": "9000",
        "LARK_SCHEDULER_JOBS__SYNC_USER_INFO__CRON": "0 */2 * * *",
        "LARK_SCHEDULER_SCHEDULER__COALESCE": "false",
        "LARK_SCHEDULER_RABBITMQ__URL": "amqp://guest:guest@127.0.0.1:5672/",
        "LARK_SCHEDULER_CONFIG": "ignored: it names the file, it is not a key",
        "UNRELATED": "x",
    }
    config = load_config(path, env)
    assert config.http.port == 9000
    assert config.jobs.sync_user_info == JobConfig(cron="0 */2 * * *", timeout=3600.0)
    assert config.scheduler.coalesce is False
    assert config.rabbitmq.url == "amqp://guest:guest@127.0.0.1:5672/"
    assert config.store.url == "sqlite:///a.db"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({"DATABASE_URL": "postgresql://db/x"}, "postgresql://db/x", id="database-url"),
        pytest.param(
            {"DATABASE_URL": "postgresql://db/x", "LARK_SCHEDULER_STORE__URL": "sqlite:///b.db"},
            "sqlite:///b.db",
            id="explicit-beats-shortcut",
        ),
        pytest.param({}, "sqlite:///a.db", id="file"),
        pytest.param(
            {"LARK_SCHEDULER_STORE__URL": ""},
            "sqlite:///./data/lark-scheduler.db",
            id="empty-unsets",
        ),
    ],
)
def test_store_url_precedence(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    path = write(tmp_path, '[store]\nurl = "sqlite:///a.db"\n')
    assert load_config(path, env).store.url == expected


PG_STORE = '[store]\nurl = "postgresql://lark:pw@db/lark"\n'
ON = "LARK_SCHEDULER_CLUSTER__ENABLED"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, None, id="disabled-left-unset"),
        pytest.param({ON: "true"}, "postgresql://lark:pw@db/lark", id="store-url"),
        pytest.param({ON: "true", "LARK_SCHEDULER_CLUSTER__DATABASE_URL": "postgres://c/jobs"},
                     "postgres://c/jobs", id="own-database"),
    ],
)
def test_cluster_database_defaults_to_the_store(
    tmp_path: Path, env: dict[str, str], expected: str | None
) -> None:
    config = load_config(write(tmp_path, PG_STORE), env)
    assert config.cluster.database_url == expected


def test_cluster_keys_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, PG_STORE + '[cluster]\nenabled = true\nschema = "jobs"\n'
                 'lease_seconds = 5\nreplica_id = "r1"\n')
    env = {"LARK_SCHEDULER_CLUSTER__LEASE_SECONDS": "8",
           "LARK_SCHEDULER_RABBITMQ__URL": "amqp://mq/",
           "LARK_SCHEDULER_CLUSTER__EXECUTOR": "rabbitmq"}
    cluster = load_config(path, env).cluster
    assert (cluster.enabled, cluster.schema, cluster.lease_seconds, cluster.replica_id,
            cluster.executor, cluster.queue) == (True, "jobs", 8.0, "r1", "rabbitmq",
                                                 "lark_scheduler.runs")
    assert "pw" not in repr(cluster)


def test_replica_id_defaults_to_host_and_pid() -> None:
    import os
    import socket

    assert load_config(None, {}).cluster.resolved_replica_id == \
        f"{socket.gethostname()}-{os.getpid()}"


def test_secrets_from_env_and_files_are_redacted(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cr3t-token\n", encoding="utf-8")
    key_file = tmp_path / "key"
    key_file.write_text(KEY, encoding="utf-8")
    path = write(
        tmp_path,
        f'[http]\nadmin_token_file = "{token_file}"\n'
        f'[store]\nurl = "postgresql://lark:hunter2@db:5432/lark"\nsecret_key_file = "{key_file}"\n'
        '[rabbitmq]\nurl = "amqp://guest:rabbitpw@mq:5672/"\n',
    )
    config = load_config(path, {})
    assert config.http.admin_token == Secret("s3cr3t-token")
    assert config.http.admin_token is not None
    assert config.http.admin_token.reveal() == "s3cr3t-token"
    assert config.store.secret_key_file == str(key_file)
    text = repr(config) + str(config)
    for secret in ("s3cr3t-token", "hunter2", "rabbitpw"):
        assert secret not in text
    assert "postgresql://lark:***@db:5432/lark" in text
    assert "amqp://guest:***@mq:5672/" in text

    env = {"LARK_SCHEDULER_ADMIN_TOKEN": "from-env", "LARK_SCHEDULER_SECRET_KEY": KEY}
    config = load_config(path, env)
    assert config.http.admin_token == Secret("from-env")  # a direct value wins over its file
    assert config.store.secret_key == Secret(KEY)
    assert KEY not in repr(config)


def test_env_shortcut_loses_to_the_explicit_form() -> None:
    env = {"LARK_SCHEDULER_ADMIN_TOKEN": "short", "LARK_SCHEDULER_HTTP__ADMIN_TOKEN": "long"}
    token = load_config(None, env).http.admin_token
    assert token is not None
    assert token.reveal() == "long"


CRON_ENV = "LARK_SCHEDULER_JOBS__CHECK_TOKEN_EXPIRY__CRON"

CLUSTER_BAD_VALUES = [
    (
        "",
        {ON: "true"},
        f"cluster.enabled = true (from {ON}): replicas share their store, and store.url is "
        "unset (embedded SQLite), which each replica would keep to itself; set store.url "
        "(or DATABASE_URL) to a postgresql:// URL",
    ),
    (
        '[store]\nurl = "sqlite:///data/x.db"\n[cluster]\nenabled = true\n'
        'database_url = "postgresql://db/x"',
        {},
        "cluster.enabled = true: replicas share their store, and store.url is "
        "'sqlite:///data/x.db', which each replica would keep to itself; set store.url "
        "(or DATABASE_URL) to a postgresql:// URL",
    ),
    ("", {ON: "yes"}, f"cluster.enabled = 'yes' (from {ON}): must be true or false"),
    (
        '[cluster]\ndatabase_url = "mysql://u:pw@h/db"',
        {},
        "cluster.database_url = 'mysql://u:***@h/db': must start with postgresql:// or "
        "postgres://",
    ),
    (
        '[cluster]\nschema = "Lark-Jobs"',
        {},
        "cluster.schema = 'Lark-Jobs': must be 1-41 lowercase letters, digits or _, not "
        "starting with a digit",
    ),
    (
        PG_STORE + '[cluster]\nenabled = true\nschema = "public"',
        {},
        "cluster.schema = 'public': is also store.schema; the scheduler's tables need a "
        "schema of their own (default lark_scheduler)",
    ),
    ("[cluster]\nlease_seconds = 0", {}, "cluster.lease_seconds = 0.0: must be between 1 and 3600"),
    (
        '[cluster]\nreplica_id = ""',
        {},
        "cluster.replica_id = '': must not be empty",
    ),
    (
        '[cluster]\nexecutor = "celery"',
        {},
        "cluster.executor = 'celery': must be one of local, rabbitmq",
    ),
    (
        PG_STORE + '[cluster]\nenabled = true\nexecutor = "rabbitmq"',
        {},
        "cluster.executor = 'rabbitmq': needs rabbitmq.url (amqp://...) for the workers' queue",
    ),
    (
        "[cluster]\nworker_prefetch = 0",
        {},
        "cluster.worker_prefetch = 0: must be between 1 and 1000",
    ),
    (
        "[cluster]\nleader = true",
        {},
        "cluster.leader: unknown key; allowed keys: enabled, database_url, schema, "
        "lease_seconds, replica_id, executor, queue, worker_prefetch",
    ),
]

BAD_VALUES = [
    ("[http]\nport = 99999", {}, "http.port = 99999: must be between 1 and 65535"),
    (
        "",
        {"LARK_SCHEDULER_HTTP__PORT": "0"},
        "http.port = 0 (from LARK_SCHEDULER_HTTP__PORT): must be between 1 and 65535",
    ),
    (
        "",
        {"LARK_SCHEDULER_HTTP__PORT": "eighty"},
        "http.port = 'eighty' (from LARK_SCHEDULER_HTTP__PORT): must be an integer",
    ),
    (
        "[http]\nprot = 1",
        {},
        "http.prot: unknown key; allowed keys: host, port, admin_token, admin_token_file",
    ),
    (
        "[htp]\nport = 1",
        {},
        "htp: unknown key; allowed keys: store, lark, rabbitmq, http, metrics, scheduler, jobs, "
        "expiry, cleanup, failures, health, oauth, logging, cluster",
    ),
    ("http = 5", {}, "http = 5: must be a table"),
    (
        "[metrics]\nper_job_histograms = -1",
        {},
        "metrics.per_job_histograms = -1: must be at least 0",
    ),
    (
        "[metrics]\nper_job_histograms = true",
        {},
        "metrics.per_job_histograms = true: must be an integer",
    ),
    (
        "",
        {"LARK_SCHEDULER_METRICS__PER_JOB_HISTOGRAMS": "all"},
        "metrics.per_job_histograms = 'all' (from LARK_SCHEDULER_METRICS__PER_JOB_HISTOGRAMS): "
        "must be an integer",
    ),
    ('[scheduler]\ncoalesce = "maybe"', {}, "scheduler.coalesce = 'maybe': must be true or false"),
    (
        '[scheduler]\ntimezone = "Mars/Olympus"',
        {},
        "scheduler.timezone = 'Mars/Olympus': not a known IANA zone; "
        "use a name like 'Asia/Shanghai' or 'UTC'",
    ),
    (
        "[scheduler]\nmax_instances = 0",
        {},
        "scheduler.max_instances = 0: must be between 1 and 1000",
    ),
    (
        "[scheduler]\nmisfire_grace_time = -1",
        {},
        "scheduler.misfire_grace_time = -1.0: must be at least 0",
    ),
    (
        "",
        {CRON_ENV: "0 25 * * *"},
        f"jobs.check_token_expiry.cron = '0 25 * * *' (from {CRON_ENV}): "
        "hour 25 is out of range 0-23",
    ),
    (
        '[jobs.cleanup_expired_tokens]\ncron = "0 3 * *"',
        {},
        "jobs.cleanup_expired_tokens.cron = '0 3 * *': expected 5 fields "
        "(minute hour day month day_of_week), got 4",
    ),
    (
        '[jobs.sync_user_info]\ncron = "0 * * * *"\nhours = 1',
        {},
        "jobs.sync_user_info.hours = 1.0: jobs.sync_user_info has a cron expression; "
        "give either cron or an interval, not both",
    ),
    (
        "[jobs.health_check]\nminutes = 0",
        {},
        'jobs.health_check: no schedule; set cron = "..." or an interval such as hours = 6',
    ),
    (
        "[jobs.health_check]\nminutes = -5",
        {},
        "jobs.health_check.minutes = -5.0: must be a number >= 0",
    ),
    (
        "[jobs.health_check]\ntimeout = 0",
        {},
        "jobs.health_check.timeout = 0.0: must be greater than 0 seconds",
    ),
    (
        "[jobs.nightly]\nenabled = true",
        {},
        "jobs.nightly: unknown key; allowed keys: sync_user_info, check_token_expiry, "
        "cleanup_expired_tokens, health_check",
    ),
    (
        "[expiry]\ncritical_days = 7",
        {},
        "expiry.critical_days = 7: must be less than expiry.warning_days (7)",
    ),
    ("[expiry]\nwarning_days = 0", {}, "expiry.warning_days = 0: must be between 1 and 365"),
    (
        '[expiry]\nnotice_format = "html"',
        {},
        "expiry.notice_format = 'html': must be one of text, card",
    ),
    ("[cleanup]\nbatch_size = 0", {}, "cleanup.batch_size = 0: must be between 1 and 100000"),
    (
        "[cleanup]\nretention_days = -1",
        {},
        "cleanup.retention_days = -1: must be between 0 and 3650",
    ),
    (
        "[failures]\nretention_days = 0",
        {},
        "failures.retention_days = 0: must be between 1 and 3650",
    ),
    (
        "",
        {"LARK_SCHEDULER_FAILURES__RETENTION_DAYS": "99999"},
        "failures.retention_days = 99999 (from LARK_SCHEDULER_FAILURES__RETENTION_DAYS): "
        "must be between 1 and 3650",
    ),
    ("[failures]\noutbox_size = 0", {}, "failures.outbox_size = 0: must be between 1 and 1000000"),
    (
        "[failures]\nflush_timeout = -1",
        {},
        "failures.flush_timeout = -1.0: must be between 0 and 3600",
    ),
    (
        '[lark]\nbase_url = "open.feishu.cn"',
        {},
        "lark.base_url = 'open.feishu.cn': must start with http:// or https://",
    ),
    ("[lark]\ntimeout = 0", {}, "lark.timeout = 0.0: must be greater than 0"),
    (
        '[rabbitmq]\nurl = "redis://u:pw@h/"',
        {},
        "rabbitmq.url = 'redis://u:***@h/': must start with amqp:// or amqps://",
    ),
    (
        '[store]\nurl = "mysql://u:pw@h/db"',
        {},
        "store.url = 'mysql://u:***@h/db': must start with sqlite:// or postgresql:// or postgres://",
    ),
    (
        "",
        {"LARK_SCHEDULER_SECRET_KEY": "not-a-key"},
        "store.secret_key = <redacted> (from LARK_SCHEDULER_SECRET_KEY): must be a Fernet key "
        "(44 url-safe base64 characters); make one with python -c 'from cryptography.fernet "
        "import Fernet; print(Fernet.generate_key())'",
    ),
    (
        '[oauth]\nredirect_base_url = "http://lark.example.com"',
        {},
        "oauth.redirect_base_url = 'http://lark.example.com': must use https:// (the "
        "authorization code travels in the redirect URL); http:// only for localhost or "
        "127.0.0.1",
    ),
    (
        "",
        {"LARK_SCHEDULER_OAUTH__REDIRECT_BASE_URL": "lark.example.com"},
        "oauth.redirect_base_url = 'lark.example.com' (from "
        "LARK_SCHEDULER_OAUTH__REDIRECT_BASE_URL): must be a URL such as "
        "https://lark-scheduler.example.com",
    ),
    (
        '[oauth]\nredirect_base_url = "https://lark.example.com/?next=x"',
        {},
        "oauth.redirect_base_url = 'https://lark.example.com/?next=x': must have no ?query or "
        "#fragment (the callback is <redirect_base_url>/oauth/callback)",
    ),
    (
        '[http]\nadmin_token_file = "/nonexistent/token"',
        {},
        "http.admin_token_file = '/nonexistent/token': file not found",
    ),
    (
        '[logging]\nlevel = "loud"',
        {},
        "logging.level = 'LOUD': must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    ),
    ('[logging]\nformat = "xml"', {}, "logging.format = 'xml': must be one of text, json"),
    ("[http\nport = 1", {}, None),
    *CLUSTER_BAD_VALUES,
]


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [pytest.param(*row, id=(row[2] or "invalid-toml").split(" ")[0]) for row in BAD_VALUES],
)
def test_bad_values_name_key_value_and_fix(
    tmp_path: Path, toml: str, env: dict[str, str], message: str | None
) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        load_config(path, env)
    text = str(info.value)
    assert "\n" not in text
    if message is None:
        assert text.startswith(f"config file {path!r}: invalid TOML (")
    else:
        assert text == message


def test_missing_config_file(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match=r"^config file '.*absent\.toml': not found$"):
        load_config(path, {})


def test_empty_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n", encoding="utf-8")
    path = write(tmp_path, f'[http]\nadmin_token_file = "{tmp_path / "token"}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert str(info.value) == f"http.admin_token_file = '{tmp_path / 'token'}': file is empty"


def test_bad_secret_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("garbage", encoding="utf-8")
    path = write(tmp_path, f'[store]\nsecret_key_file = "{key_file}"\n')
    with pytest.raises(
        ConfigError, match=r"^store.secret_key_file = '.*key': must be a Fernet key"
    ):
        load_config(path, {})


def test_absent_secret_key_file_is_left_to_the_store(tmp_path: Path) -> None:
    # The store creates it (mode 0600) on first open.
    key_file = tmp_path / "new.key"
    config = load_config(None, {"LARK_SCHEDULER_STORE__SECRET_KEY_FILE": str(key_file)})
    assert config.store.secret_key_file == str(key_file)
    assert not key_file.exists()


def test_process_environment_is_only_read_when_passed() -> None:
    os.environ["LARK_SCHEDULER_HTTP__PORT"] = "1234"
    try:
        assert load_config(None, {}).http.port == 8080
        assert load_config(None, os.environ).http.port == 1234
    finally:
        del os.environ["LARK_SCHEDULER_HTTP__PORT"]


def test_config_does_not_encode_secrets() -> None:
    config = load_config(None, {"LARK_SCHEDULER_ADMIN_TOKEN": "tok"})
    with pytest.raises(TypeError, match="Secret is unsupported"):
        msgspec.json.encode(config)


def test_the_example_file_is_the_defaults() -> None:
    example = Path(__file__).parent.parent / "examples" / "lark-scheduler.toml"
    assert load_config(str(example), {}) == load_config(None, {})


@pytest.mark.parametrize(
    ("base", "redirect_uri", "authorize"),
    [
        pytest.param(None, None, None, id="not-configured"),
        pytest.param(
            "https://lark.example.com",
            "https://lark.example.com/oauth/callback",
            "https://lark.example.com/oauth/cli_a%2Fb/authorize",
            id="https",
        ),
        pytest.param(
            "https://example.com/lark/",
            "https://example.com/lark/oauth/callback",
            "https://example.com/lark/oauth/cli_a%2Fb/authorize",
            id="behind-a-proxy-path",
        ),
        pytest.param(
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/oauth/callback",
            "http://127.0.0.1:8080/oauth/cli_a%2Fb/authorize",
            id="loopback-http",
        ),
    ],
)
def test_oauth_links_come_from_the_configuration(
    base: str | None, redirect_uri: str | None, authorize: str | None
) -> None:
    env = {} if base is None else {"LARK_SCHEDULER_OAUTH__REDIRECT_BASE_URL": base}
    oauth = load_config(None, env).oauth
    assert (oauth.redirect_uri, oauth.authorize_url("cli_a/b")) == (redirect_uri, authorize)
