"""The ``browser_page`` fixture: a page of Debian's chromium (``/usr/bin/chromium``), headless,
in a fresh profile, driven by Playwright for Python (never ``playwright install``). Tests
using it carry the ``browser`` marker (see conftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHROMIUM

__all__ = ("CHROMIUM_ARGS", "browser_page")

# As the brief for CI asks: Debian's chromium, headless, no network of its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser_page(tmp_path: Path) -> AsyncIterator[Any]:
    """A page of a fresh chromium profile."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            yield await context.new_page()
        finally:
            await context.close()
