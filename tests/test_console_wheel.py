"""The console's style sheet, script and icon ship in the wheel: built from a copy of the
source, installed into a directory of its own, and served from there (no source tree on the
path), so a ``pip install`` of the package has a working console."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
_IGNORED = shutil.ignore_patterns(
    ".git", ".venv", ".tox", "build", "dist", "*.egg-info", "__pycache__", "data", "docs",
    ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache", "bench",
)

SERVE_FROM_THE_WHEEL = """
import asyncio, sys, urllib.request
from pathlib import Path
import kernel
from kernel import Kernel
from kernel.http import AdminServer

assert Path(kernel.__file__).is_relative_to(sys.argv[1]), kernel.__file__

def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.headers["Content-Type"], len(answer.read())

async def main():
    async with Kernel(timezone="UTC") as k, AdminServer(k, port=0) as admin:
        for path in ("/ui", "/ui/static/console.css", "/ui/static/console.js",
                     "/ui/static/favicon.svg", "/openapi.json"):
            status, kind, size = await asyncio.to_thread(fetch, admin.url + path)
            print(path, status, kind.split(";")[0], size > 100)

asyncio.run(main())
"""


def test_an_installed_wheel_serves_the_console(tmp_path: Path) -> None:
    source, wheels, site = tmp_path / "src", tmp_path / "wheels", tmp_path / "site"
    shutil.copytree(ROOT, source, ignore=_IGNORED)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("lark_scheduler-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", SERVE_FROM_THE_WHEEL, str(site)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "/ui 200 text/html True",
        "/ui/static/console.css 200 text/css True",
        "/ui/static/console.js 200 text/javascript True",
        "/ui/static/favicon.svg 200 image/svg+xml True",
        "/openapi.json 200 application/json True",
    ]
