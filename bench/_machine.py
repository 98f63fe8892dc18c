"""Where a run happened: the machine, the interpreter and the versions measured."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ("machine_info",)

_PACKAGES = (
    "apscheduler",
    "aiocron",
    "uvloop",
    "croniter",
    "cronsim",
    "matplotlib",
    "msgspec",
    "anyio",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_commit(tree: Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
            cwd=tree or Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _baseline() -> str | None:
    """The kernel-baseline engine's tree and its commit, when one is set."""
    tree = os.environ.get("BENCH_BASELINE_TREE")
    if not tree:
        return None
    return f"{tree} (commit {_git_commit(Path(tree)) or '?'})"


def machine_info() -> dict[str, Any]:
    """CPU, core count, OS, Python and package versions, commit and date of this run."""
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "packages": {p: _version(p) for p in _PACKAGES},
        "commit": _git_commit(),
        "baseline": _baseline(),
    }
