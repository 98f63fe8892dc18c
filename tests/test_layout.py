"""The kernel's layout: each concept in a package of its own, the public import paths kept.

Users, the README and the service import ``kernel.triggers``, ``kernel.metrics``,
``kernel.http`` and so on; the code lives in ``kernel.schedule``, ``kernel.observe`` and
``kernel.admin``. Each public path must offer exactly its home module's public names, as
the very same objects.
"""

from __future__ import annotations

import importlib
import pathlib

import pytest

import kernel

PUBLIC_PATHS = {
    "kernel.triggers": "kernel.schedule.triggers",
    "kernel.cron_explain": "kernel.schedule.cron_explain",
    "kernel.events": "kernel.observe.events",
    "kernel.metrics": "kernel.observe.metrics",
    "kernel.logs": "kernel.observe.logs",
    "kernel.redaction": "kernel.observe.redaction",
    "kernel.failures": "kernel.observe.failures",
    "kernel.http": "kernel.admin.http",
    "kernel.api_models": "kernel.admin.api_models",
    "kernel.openapi": "kernel.admin.openapi",
    "kernel.console": "kernel.admin.console",
    "kernel.console.html": "kernel.admin.console.html",
    "kernel.console.history": "kernel.admin.console.history",
}


@pytest.mark.parametrize(("public", "home"), PUBLIC_PATHS.items(), ids=list(PUBLIC_PATHS))
def test_a_public_path_offers_its_home_modules_names(public: str, home: str) -> None:
    there, here = importlib.import_module(public), importlib.import_module(home)
    assert there.__all__ == here.__all__
    assert here.__all__, f"{home} exports nothing"
    for name in here.__all__:
        assert getattr(there, name) is getattr(here, name), name


def test_every_kernel_module_is_a_package_a_public_path_or_a_contract() -> None:
    # A newcomer finds each concept by its file name: the top level holds the packages,
    # the public re-export paths above and the small contracts everything shares.
    top = pathlib.Path(kernel.__file__).parent
    modules = {p.stem for p in top.glob("*.py")} - {"__init__"}
    packages = {p.name for p in top.iterdir() if (p / "__init__.py").exists()}
    contracts = {"clock", "coordination", "errors", "job", "port", "retry", "testing"}
    public = {p.split(".")[1] for p in PUBLIC_PATHS}
    # kernel/console/ holds only the public paths of kernel.admin.console.
    assert packages == {"admin", "console", "distributed", "engine", "observe", "schedule",
                        "state"}
    assert modules == contracts | (public - {"console"})
