"""Configurations a careless operator writes: each is one line naming the key and exit 2,
from ``config check`` and from ``serve`` alike, and ``config check`` builds what ``serve``
builds. The built-in jobs have default timeouts."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from actors.cli import main
from actors.cli._config_cmd import build_as_serve
from actors.cli._errors import CliError
from actors.config import Config, JobConfig, JobsConfig, load_config
from actors.service import LarkService
from kernel import Kernel

BAD_FILES = [
    ("non-utf8", b'[http]\nhost = "\xff\xfe"\n',
     "config file '{path}': is not UTF-8 text (byte 0xff at offset 15); TOML files are UTF-8"),
    ("latin1", '[scheduler]\ntimezone = "Europe/Zürich"\n'.encode("latin-1"),
     "config file '{path}': is not UTF-8 text (byte 0xfc at offset"),
    ("interval-overflow", b"[jobs.health_check]\nweeks = 1e300\n",
     "jobs.health_check.weeks = 1e+300: the interval is longer than 100 years"),
    ("interval-over-100-years", b"[jobs.sync_user_info]\ndays = 40000\n",
     "jobs.sync_user_info.days = 40000.0: the interval is longer than 100 years"),
    ("interval-inf-after-units", b"[jobs.sync_user_info]\nminutes = 1e308\n",
     "jobs.sync_user_info.minutes = 1e+308: the interval is longer than 100 years"),
    ("interval-nanosecond", b"[jobs.health_check]\nseconds = 1e-9\n",
     "jobs.health_check.seconds = 1e-09: the interval is shorter than 1 second"),
    ("interval-half-second", b"[jobs.health_check]\nminutes = 0\nseconds = 0.5\n",
     "jobs.health_check.seconds = 0.5: the interval is shorter than 1 second"),
    ("timeout-nan", b"[jobs.health_check]\ntimeout = nan\n",
     "jobs.health_check.timeout = nan: must be greater than 0 seconds"),
]  # fmt: skip


@pytest.mark.parametrize("command", ["config check", "serve"])
@pytest.mark.parametrize(
    ("content", "message"), [pytest.param(c, m, id=i) for i, c, m in BAD_FILES]
)
def test_bad_configuration_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    content: bytes,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "lark.toml"
    path.write_bytes(content)
    code = main([*command.split(), "--config", str(path)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.startswith("lark-scheduler: error: configuration: " + message.format(path=path)), err
    assert err.count("\n") == 1
    assert not (tmp_path / "data").exists()  # refused before anything was created


def unchecked(**jobs: JobConfig) -> Config:
    """A configuration built directly, past load_config's checks."""
    return Config(jobs=msgspec.structs.replace(JobsConfig(), **jobs))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param(
            unchecked(health_check=JobConfig(seconds=1e-9)),
            "configuration: jobs.health_check: interval is zero",
            id="interval-trigger",
        ),
        pytest.param(
            unchecked(cleanup_expired_tokens=JobConfig(cron="0 3 * * 8")),
            "configuration: jobs.cleanup_expired_tokens: ",
            id="cron-trigger",
        ),
        pytest.param(
            unchecked(sync_user_info=JobConfig(hours=6, timeout=float("nan"))),
            "configuration: jobs.sync_user_info: timeout=nan must be a finite number",
            id="job-option",
        ),
        pytest.param(
            Config(store=Config().store.__class__(url="sqlite:///")),
            "configuration: store: store URL 'sqlite:///' has no path",
            id="store",
        ),
    ],
)
def test_config_check_builds_what_serve_builds(config: Config, message: str) -> None:
    with pytest.raises(CliError) as info:
        build_as_serve(config)
    assert info.value.code == 2
    assert info.value.message.startswith(message), info.value.message


def test_the_default_configuration_builds() -> None:
    build_as_serve(Config())


def test_built_in_jobs_have_default_timeouts(tmp_path: Path) -> None:
    path = tmp_path / "lark.toml"
    path.write_text("[jobs.sync_user_info]\nhours = 3\n\n[jobs.health_check]\nenabled = true\n")
    env = {"LARK_SCHEDULER_JOBS__CHECK_TOKEN_EXPIRY__TIMEOUT": "120"}
    config = load_config(str(path), env)
    kernel = Kernel(timezone="UTC")
    LarkService(config).register_jobs(kernel)
    assert {job.id: job.timeout for job in kernel.get_jobs()} == {
        "sync_user_info": 3600.0,
        "check_token_expiry": 120.0,
        "cleanup_expired_tokens": 1800.0,
        "health_check": 60.0,
    }
    assert config.jobs.sync_user_info.hours == 3
