"""Which croniter versions we support, and that CI runs the cron tests on the oldest too.

Our behaviour must not depend on the installed croniter (kernel/schedule/_cron_parse.py
reads every expression itself). tox runs the whole suite on the newest croniter pip finds
and, in the ``croniter-oldest`` env, every ``tests/test_cron*.py`` on the lower bound of
pyproject.toml.
"""

from __future__ import annotations

import configparser
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lower_bound() -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (requirement,) = [r for r in pyproject["project"]["dependencies"] if r.startswith("croniter")]
    match = re.fullmatch(r"croniter>=([\d.]+)", requirement)
    assert match is not None, f"croniter needs a plain lower bound, got {requirement!r}"
    return match.group(1)


def _oldest_env() -> configparser.SectionProxy:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini", encoding="utf-8")
    assert "croniter-oldest" in tox["tox"]["envlist"].replace(" ", "").split(",")
    return tox["testenv:croniter-oldest"]


def test_the_oldest_env_pins_pyprojects_lower_bound() -> None:
    env = _oldest_env()
    bound = _lower_bound()
    padded = bound if bound.count(".") == 2 else f"{bound}.0"
    assert env["deps"].strip() == f"croniter=={padded}"
    # ... and checks that pip really installed it before running the tests.
    assert f"assert v == '{padded}', v" in env["commands"]


def test_the_oldest_env_runs_every_cron_test_file() -> None:
    listed = set(re.findall(r"tests/(test_cron\w*\.py)", _oldest_env()["commands"]))
    present = {path.name for path in (ROOT / "tests").glob("test_cron*.py")}
    assert listed == present
