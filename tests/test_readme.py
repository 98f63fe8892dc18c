"""The README: its first two commands, the embedding example (run), the configuration
reference (every key documented)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import msgspec

from actors.config import Config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

SERVE = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/lark-scheduler serve"
TEST = "python3 -m venv .venv && .venv/bin/pip install -q tox && .venv/bin/tox"


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.DOTALL | re.M)
    assert match is not None, f"README has no section {title!r}"
    return match.group(1)


def test_readme_starts_with_the_two_commands() -> None:
    title, blank, fence, first, second, end = README.splitlines()[:6]
    assert (title, blank, fence, end) == ("# lark-scheduler", "", "```sh", "```")
    assert (first, second) == (SERVE, TEST)


def test_the_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").rstrip().splitlines()
    assert ci[-1] == TEST


def test_the_embedding_example_runs(tmp_path: Path) -> None:
    (example,) = blocks(section("Embedding the kernel in an asyncio application"), "python")
    script = tmp_path / "embed.py"
    script.write_text(example, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"metrics at http://127\.0\.0\.1:\d+/metrics", lines[0])
    assert lines[1:] == ["tick 1", "tick 2", "tick 3", "stopped"]


def _keys(struct: msgspec.Struct, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name in type(struct).__struct_fields__:
        value = getattr(struct, name)
        if isinstance(value, msgspec.Struct):
            keys += _keys(value, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_configuration_key_is_documented() -> None:
    reference = section("Configuration reference")
    documented = set(re.findall(r"^\| `([a-z_<>.]+)`", reference, re.M))
    interval = "weeks days hours minutes seconds".split()
    documented |= {f"jobs.<job>.{unit}" for unit in interval}
    generic = {re.sub(r"^jobs\.[a-z_]+\.", "jobs.<job>.", key) for key in _keys(Config())}
    assert generic - documented == set()
    jobs = set(re.findall(r"^\| `([a-z_]+)` \| `", reference, re.M))
    assert jobs == set(Config().jobs.__struct_fields__)


def test_the_job_schedules_in_the_readme_are_the_defaults() -> None:
    reference = section("Configuration reference")
    for name in Config().jobs.__struct_fields__:
        job = getattr(Config().jobs, name)
        (row,) = re.findall(rf"^\| `{name}` \| `([^`]+)` \|", reference, re.M)
        expected = f'cron = "{job.cron}"' if job.cron else " ".join(
            f"{unit} = {value:g}" for unit, value in job.interval_kwargs().items()
        )
        assert row == expected
