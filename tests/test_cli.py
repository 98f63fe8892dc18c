"""The command line: --help everywhere, cron explain, config check, and the admin API commands
against a real kernel serving the admin API."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from actors.cli import build_parser, main
from kernel import Kernel, RunFailed, RunSucceeded
from kernel.http import AdminServer

TOKEN = "cli-test-token-0123456789abcdef"

COMMANDS = [
    [],
    ["serve"],
    ["worker"],
    ["jobs"],
    ["jobs", "list"],
    ["jobs", "show"],
    ["jobs", "run"],
    ["jobs", "pause"],
    ["jobs", "resume"],
    ["jobs", "remove"],
    ["failures"],
    ["failures", "list"],
    ["failures", "show"],
    ["failures", "retry"],
    ["cron"],
    ["cron", "explain"],
    ["config"],
    ["config", "check"],
    ["migrate"],
    ["apps"],
    ["apps", "add"],
    ["apps", "list"],
    ["apps", "update"],
    ["apps", "disable"],
    ["tokens"],
    ["tokens", "list"],
    ["tokens", "revoke"],
    ["run-task"],
    ["bench"],
]


def _subcommands(parser: object, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found = {prefix}
    for action in getattr(parser, "_actions", ()):
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict):
            for name, sub in choices.items():
                found |= _subcommands(sub, (*prefix, name))
    return found


def test_the_help_table_lists_every_command() -> None:
    assert _subcommands(build_parser()) == {tuple(c) for c in COMMANDS}


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a) or "top")
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lark-scheduler {' '.join(argv)}".rstrip())
    assert len(out.splitlines()) > 3


# -- cron explain ------------------------------------------------------------------------------


def test_cron_explain_lists_fires_and_describes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cron", "explain", "0 9,18 * * *", "--tz", "Asia/Shanghai", "-n", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "'0 9,18 * * *' in Asia/Shanghai: at 09:00 and 18:00 every day"
    assert lines[1] == "next fires:"
    fires = lines[2:]
    assert len(fires) == 3
    for line in fires:
        assert re.fullmatch(r"  \d{4}-\d\d-\d\dT(09|18):00:00\+08:00  \(\w{3} CST\)", line), line


def test_cron_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cron", "explain", "*/15 * * * *", "--tz", "UTC", "-n", "2", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["expression"] == "*/15 * * * *"
    assert answer["timezone"] == "UTC"
    assert len(answer["next_fires"]) == 2
    assert answer["warnings"] == []


def test_cron_explain_warns_about_dst(capsys: pytest.CaptureFixture[str]) -> None:
    # 02:30 every day in New York: within a year one day has no 02:30 (spring forward).
    assert main(["cron", "explain", "30 2 * * *", "--tz", "America/New_York", "-n", "366"]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warn")]
    assert len(warnings) == 1
    assert "does not exist in America/New_York" in warnings[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["0 25 * * *"], "cron expression '0 25 * * *': hour 25 is out of range 0-23"),
        (["0 9 * *"], "cron expression '0 9 * *'"),
        (["0 9 * * *", "--tz", "Mars/Olympus"], "timezone 'Mars/Olympus' is not a known IANA"),
        (["0 9 * * *", "-n", "-1"], "-n -1: give a whole number of fires >= 0"),
    ],
    ids=["hour-out-of-range", "four-fields", "unknown-zone", "negative-n"],
)
def test_cron_explain_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cron", "explain", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"lark-scheduler: error: {message}")


# -- config check -----------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("LARK_SCHEDULER_") or name in ("DATABASE_URL", "LARK_APP_SECRET"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("clean_env")
def test_config_check_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "configuration OK (no file: defaults + environment)"
    assert "  store: sqlite:///./data/lark-scheduler.db" in out
    assert "  rabbitmq: not configured" in out
    assert (
        "  jobs: sync_user_info=every 6h (timeout 3600 s), check_token_expiry=cron '0 9,18 * * *' "
        "(timeout 600 s), "
        "cleanup_expired_tokens=cron '0 3 * * *' (timeout 1800 s), health_check=every 5min "
        "(timeout 60 s)"
    ) in out
    assert "  cluster: disabled (one process)" in out


@pytest.mark.usefixtures("clean_env")
def test_config_check_shows_the_cluster(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "DATABASE_URL": "postgresql://lark:pw@db/lark",
        "LARK_SCHEDULER_RABBITMQ__URL": "amqp://guest:pw@mq/",
        "LARK_SCHEDULER_CLUSTER__ENABLED": "true",
        "LARK_SCHEDULER_CLUSTER__REPLICA_ID": "web-1",
        "LARK_SCHEDULER_CLUSTER__EXECUTOR": "rabbitmq",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["config", "check"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "  cluster: replica web-1 on postgresql://lark:***@db/lark schema lark_scheduler, "
        "lease 15 s, built-in jobs on executor rabbitmq (queue lark_scheduler.runs)"
    )


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({}, "worker: rabbitmq.url is not configured; set rabbitmq.url (or "
                     "LARK_SCHEDULER_RABBITMQ__URL) to the broker the replicas publish runs to",
                     id="no-rabbitmq"),
        pytest.param({"LARK_SCHEDULER_RABBITMQ__URL": "amqp://mq/"},
                     "worker: cluster.enabled is false; workers take each run's claim in the "
                     "replicas' database: set cluster.enabled = true (and the same [cluster] "
                     "and [store] settings as the replicas)", id="no-cluster"),
    ],
)
def test_worker_without_its_servers_is_one_line_and_exit_2(
    env: dict[str, str], message: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["worker"]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"lark-scheduler: error: {message}\n")


@dataclass(frozen=True)
class BadConfig:
    toml: str | None
    env: dict[str, str]
    message: str
    # The commands that use the value; the others must not refuse it.
    commands: tuple[str, ...] = ("check", "serve", "worker")


BAD_CONFIGS = {
    "port-out-of-range": BadConfig(
        "[http]\nport = 99999\n", {}, "http.port = 99999"
    ),
    "port-from-env": BadConfig(
        None, {"LARK_SCHEDULER_HTTP__PORT": "0"}, "(from LARK_SCHEDULER_HTTP__PORT)"
    ),
    "unknown-timezone": BadConfig(
        '[scheduler]\ntimezone = "Mars/Olympus"\n', {}, "scheduler.timezone = 'Mars/Olympus'"
    ),
    "bad-cron": BadConfig(
        '[jobs.check_token_expiry]\ncron = "0 25 * * *"\n', {}, "jobs.check_token_expiry.cron"
    ),
    "unknown-key": BadConfig("[http]\nprot = 1\n", {}, "http.prot"),
    "unknown-section": BadConfig("[schedular]\ntimezone = 'UTC'\n", {}, "schedular"),
    "log-format": BadConfig('[logging]\nformat = "xml"\n', {}, "logging.format = 'xml'"),
    "negative-grace": BadConfig(
        "[scheduler]\nshutdown_grace = -1\n", {}, "scheduler.shutdown_grace = -1"
    ),
    "store-scheme": BadConfig('[store]\nurl = "mysql://x/y"\n', {}, "store.url"),
    "invalid-toml": BadConfig("[http\nport = 1\n", {}, "invalid TOML"),
    "missing-file": BadConfig(None, {"LARK_SCHEDULER_CONFIG": "nowhere.toml"}, "not found"),
    "short-admin-token": BadConfig(
        None, {"LARK_SCHEDULER_ADMIN_TOKEN": "short"},
        "http.admin_token = Secret('**********'): must be at least 16 characters",
        commands=("check", "serve"),  # the worker serves no admin API
    ),
    "thresholds": BadConfig(
        "[expiry]\nwarning_days = 3\ncritical_days = 7\n", {}, "expiry.critical_days = 7"
    ),
    "cluster-on-sqlite": BadConfig(
        "[cluster]\nenabled = true\n", {},
        "cluster.enabled = true: replicas share their store, and store.url is unset",
    ),
    "cluster-executor": BadConfig(
        None, {"LARK_SCHEDULER_CLUSTER__EXECUTOR": "celery"},
        "cluster.executor = 'celery' (from LARK_SCHEDULER_CLUSTER__EXECUTOR): must be one of "
        "local, rabbitmq",
    ),
    "cluster-rabbitmq-without-url": BadConfig(
        '[store]\nurl = "postgresql://db/lark"\n[cluster]\nenabled = true\n'
        'executor = "rabbitmq"\n', {},
        "cluster.executor = 'rabbitmq': needs rabbitmq.url",
    ),
    "cluster-lease": BadConfig(
        None, {"LARK_SCHEDULER_CLUSTER__LEASE_SECONDS": "-1"},
        "cluster.lease_seconds = -1.0 (from LARK_SCHEDULER_CLUSTER__LEASE_SECONDS)",
    ),
}


COMMAND_ARGV = {"check": ["config", "check"], "serve": ["serve"], "worker": ["worker"]}


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("command", "case"),
    [
        pytest.param(COMMAND_ARGV[command], case, id=f"{name}-{command}")
        for name, case in BAD_CONFIGS.items()
        for command in case.commands
    ],
)
def test_bad_config_values_are_one_clear_line_and_exit_2(
    case: BadConfig,
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = list(command)
    if case.toml is not None:
        path = f"{tmp_path}/lark.toml"
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(case.toml)
        argv += ["--config", path]
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("lark-scheduler: error: configuration: ")
    assert case.message in err
    assert "short'" not in err  # a secret is never shown, not even a bad one


# -- jobs and failures against a real kernel --------------------------------------------------


def fine() -> None:
    """A job that succeeds."""


def broken() -> None:
    raise RuntimeError("boom: the database said no")


@dataclass
class Served:
    kernel: Kernel
    url: str


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    kernel = Kernel(timezone="UTC")
    kernel.add_cron_job(fine, "0 9,18 * * *", job_id="check_token_expiry")
    kernel.add_interval_job(broken, hours=6, job_id="sync_user_info")
    async with kernel, AdminServer(kernel, port=0, token=TOKEN) as admin:
        yield Served(kernel, admin.url)




async def cli(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    # The CLI is synchronous (urllib): run it off the loop that serves the API.
    code = await anyio.to_thread.run_sync(main, argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def api_env(monkeypatch: pytest.MonkeyPatch, served: Served) -> Served:
    monkeypatch.setenv("LARK_SCHEDULER_URL", served.url)
    monkeypatch.setenv("LARK_SCHEDULER_ADMIN_TOKEN", TOKEN)
    return served


async def test_jobs_list_table(api_env: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = await cli(["jobs", "list"], capsys)
    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "NEXT", "RUN", "(UTC)", "TRIGGER", "STATE", "FUNCTION"]
    assert [row.split()[0] for row in rows] == ["check_token_expiry", "sync_user_info"]
    for row in rows:  # the next run as a plain UTC time, in the column under its header
        when = row[header.index("NEXT RUN") :].split("  ")[0]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", when), row
    expected = api_env.kernel.get_job("check_token_expiry").next_run_time
    assert expected is not None
    assert rows[0][header.index("NEXT RUN") :].startswith(f"{expected:%Y-%m-%d %H:%M:%S}")
    assert "cron[0 9,18 * * *" in rows[0] or "0 9,18 * * *" in rows[0]
    assert rows[1].rstrip().endswith("tests.test_cli:broken")


async def test_jobs_list_json(api_env: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await cli(["jobs", "list", "--json"], capsys)
    assert code == 0
    assert [j["id"] for j in json.loads(out)["jobs"]] == ["check_token_expiry", "sync_user_info"]


async def test_jobs_show_pause_resume_remove(
    api_env: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await cli(["jobs", "show", "sync_user_info"], capsys)
    assert code == 0
    assert "id                  sync_user_info" in out.splitlines()
    code, out, _ = await cli(["jobs", "pause", "sync_user_info"], capsys)
    assert (code, out) == (0, "job sync_user_info paused (next run: -)\n")
    assert api_env.kernel.get_job("sync_user_info").paused
    code, out, _ = await cli(["jobs", "resume", "sync_user_info"], capsys)
    assert code == 0
    assert out.startswith("job sync_user_info resumed (next run: 20")
    code, out, _ = await cli(["jobs", "remove", "sync_user_info"], capsys)
    assert (code, out) == (0, "job sync_user_info removed\n")
    assert [j.id for j in api_env.kernel.get_jobs()] == ["check_token_expiry"]


async def test_run_a_failing_job_then_list_show_and_retry_its_failure(
    api_env: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    events = api_env.kernel.subscribe()
    code, out, _ = await cli(["jobs", "run", "sync_user_info"], capsys)
    assert code == 0
    run_id = out.split()[2]
    assert out == f"started run {run_id} of job sync_user_info\n"
    async for event in events:
        if isinstance(event, RunFailed):
            break
    code, out, _ = await cli(["failures", "list"], capsys)
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["ID", "JOB", "STARTED", "(UTC)", "SECONDS", "RETRIES", "ERROR"]
    failure_id = row.split()[0]
    assert row.split()[1] == "sync_user_info"
    assert row.endswith("RuntimeError: boom: the database said no")
    code, out, _ = await cli(["failures", "list", "--job", "check_token_expiry"], capsys)
    assert (code, out) == (0, "no failures recorded for job check_token_expiry\n")
    code, out, _ = await cli(["failures", "show", failure_id], capsys)
    assert code == 0
    assert "error         RuntimeError: boom: the database said no" in out.splitlines()
    assert "Traceback (most recent call last):" in out
    code, out, _ = await cli(["failures", "retry", failure_id], capsys)
    assert code == 0
    assert re.fullmatch(
        rf"started retry run \S+ of job sync_user_info \(failure {failure_id}\)\n", out
    )
    async for event in events:
        if isinstance(event, RunFailed | RunSucceeded):
            break
    events.close()


@pytest.mark.parametrize(
    ("argv", "token", "message"),
    [
        (["jobs", "show", "nope"], TOKEN,
         "GET /jobs/nope: HTTP 404: no job with id 'nope'; GET /jobs lists the jobs (unknown_job)"),
        (["jobs", "run", "nope"], TOKEN, "POST /jobs/nope/run: HTTP 404: no job with id 'nope'"),
        (["jobs", "run", "sync_user_info"], None, "POST /jobs/sync_user_info/run: HTTP 401: "),
        (["jobs", "run", "sync_user_info"], "wrong-token-0123456789", "(invalid_token); pass "),
        (["failures", "retry", "f-404"], TOKEN, "HTTP 404: no failure record with id 'f-404'"),
        (["failures", "list", "--limit", "0"], TOKEN, "HTTP 400: limit must be a whole number"),
    ],
    ids=["unknown-job", "run-unknown", "no-token", "wrong-token", "unknown-failure", "bad-limit"],
)
async def test_api_errors_are_one_line_and_exit_1(
    argv: list[str],
    token: str | None,
    message: str,
    api_env: Served,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)  # no config file around
    if token is None:
        monkeypatch.delenv("LARK_SCHEDULER_ADMIN_TOKEN")
    else:
        monkeypatch.setenv("LARK_SCHEDULER_ADMIN_TOKEN", token)
    code, out, err = await cli(argv, capsys)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1, err
    assert err.startswith("lark-scheduler: error: ")
    assert message in err
    assert TOKEN not in err


async def test_flags_win_over_the_environment(
    api_env: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LARK_SCHEDULER_URL", "http://127.0.0.1:9")
    code, _, _ = await cli(["jobs", "list", "--url", api_env.url], capsys)
    assert code == 0


def test_unreachable_service_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LARK_SCHEDULER_URL", "http://127.0.0.1:9")
    assert main(["jobs", "list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("lark-scheduler: error: cannot reach the admin API at http://127.0.0.1:9")


def test_a_url_that_is_not_http_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "list", "--url", "ftp://x"]) == 2
    assert "is not an http(s) URL" in capsys.readouterr().err


def test_bench_without_the_package_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "bench", None)  # import bench -> ImportError
    monkeypatch.chdir(tmp_path)  # not a checkout
    assert main(["bench"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install -e '.[bench]'" in err


def test_bench_hands_its_arguments_over(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys
    import types

    seen: list[list[str]] = []
    fake = types.ModuleType("bench")

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 0

    fake.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench", fake)
    assert main(["bench", "--", "--quick", "-s", "steady"]) == 0
    assert seen == [["--quick", "-s", "steady"]]


async def test_url_and_token_come_from_the_config_file(
    served: Served,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("LARK_SCHEDULER_URL", "LARK_SCHEDULER_ADMIN_TOKEN", "LARK_SCHEDULER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    port = served.url.rsplit(":", 1)[1]
    (tmp_path / "token").write_text(TOKEN + "\n", encoding="utf-8")
    config = tmp_path / "lark.toml"
    config.write_text(
        f'[http]\nhost = "0.0.0.0"\nport = {port}\nadmin_token_file = "{tmp_path}/token"\n',
        encoding="utf-8",
    )
    code, out, err = await cli(["jobs", "pause", "sync_user_info", "--config", str(config)], capsys)
    assert (code, err) == (0, "")
    assert out == "job sync_user_info paused (next run: -)\n"
    monkeypatch.setenv("LARK_SCHEDULER_CONFIG", str(config))
    code, out, _ = await cli(["jobs", "resume", "sync_user_info"], capsys)
    assert code == 0
    assert out.startswith("job sync_user_info resumed")
