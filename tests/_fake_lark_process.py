"""The fake Lark server in its own process (``python -m tests.fake_lark``), for tests whose
code under test runs its own event loops or processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def fake_lark_process(users: int) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Serve the fake with ``users`` users; yields its base URL and the process (which a
    test may pause with SIGSTOP; it is resumed before it is stopped)."""
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_lark", "--port", "0", "--users", str(users)],
        cwd=ROOT, text=True, stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert fake.stdout is not None
    try:
        url = fake.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield url, fake
    finally:
        os.kill(fake.pid, signal.SIGCONT)
        fake.terminate()
        fake.wait(10)
        fake.stdout.close()
