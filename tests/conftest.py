"""Shared test set-up.

* Every ``async def`` test runs on asyncio through anyio's pytest plugin (``anyio_mode =
  "auto"`` in pyproject.toml), on the loop of :func:`kernel.testing.new_event_loop`, so a
  ``VirtualClock`` knows exactly when every task is blocked.
* Tests marked ``postgres`` / ``rabbitmq`` / ``prometheus`` / ``browser`` need a real
  server or binary (``browser``: Debian's ``chromium`` at ``/usr/bin/chromium``, driven by
  Playwright for Python; never ``playwright install``). Outside CI they skip with a loud
  reason when it is absent; with ``CI=true`` they run and fail instead, never skip.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
from collections.abc import Iterator

import pytest

from kernel.testing import new_event_loop

# The fake Lark server (fixture ``fake_lark``), the Lark client test fixtures, and a page
# of Debian's chromium (fixture ``browser_page``).
pytest_plugins = ("tests.fake_lark", "tests.lark_helpers", "tests.browser")

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

POSTGRES_DSN = os.environ.get("POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
CHROMIUM = "/usr/bin/chromium"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _missing(marker: str) -> str | None:
    if marker == "postgres" and not _port_open("127.0.0.1", 5432):
        return "PostgreSQL is not listening on 127.0.0.1:5432"
    if marker == "rabbitmq" and not _port_open("127.0.0.1", 5672):
        return "RabbitMQ is not listening on 127.0.0.1:5672"
    if marker == "prometheus" and not (shutil.which("prometheus") and shutil.which("promtool")):
        return "prometheus/promtool are not installed (apt-get install prometheus)"
    if marker == "browser":
        if not os.access(CHROMIUM, os.X_OK):
            return f"{CHROMIUM} is not installed (apt-get install chromium)"
        if importlib.util.find_spec("playwright") is None:
            return "Playwright for Python is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    # The loop of kernel.testing: VirtualClock sees exactly when every task is blocked.
    return ("asyncio", {"loop_factory": new_event_loop})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker in ("postgres", "rabbitmq", "prometheus", "browser"):
            if item.get_closest_marker(marker) is None:
                continue
            reason = _missing(marker)
            if reason is None:
                continue
            if IN_CI:
                # Under CI a missing server is a failure, never a skip.
                item.user_properties.append(("missing", reason))
            else:
                item.add_marker(pytest.mark.skip(reason=f"SKIPPED LOUDLY: {reason}"))


@pytest.fixture(autouse=True)
def _fail_when_server_missing(request: pytest.FixtureRequest) -> None:
    for name, reason in request.node.user_properties:
        if name == "missing":
            pytest.fail(f"CI=true and a required server is missing: {reason}")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger's handlers and level back after a test that configures logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
