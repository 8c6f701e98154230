"""One Chromium per test process, shared by the browser tests (``browser.chromium()``).

Each test gets a browser context of its own, as fresh as an empty profile (cookies,
storage and cache of its own). Launching Chromium and starting Playwright's driver
for every test cost about a second of a core each time, more than the context the test
works in. Playwright's objects belong to the event loop that started them, so the
browser is kept per loop: the tests share one loop per process (``pyproject.toml``),
and the browser is closed when its tests are done (``shared_chromium_closed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = ["SHARED_CHROMIUM", "shared_chromium_closed"]


class SharedChromium:
    """A running Chromium and its Playwright driver, per event loop."""

    def __init__(self) -> None:
        self.by_loop: dict[asyncio.AbstractEventLoop, tuple[Any, Any]] = {}

    async def browser(self, executable: str, args: Sequence[str]) -> Any:
        """The running loop's browser, launched on first use (again if it died)."""
        from playwright.async_api import async_playwright

        loop = asyncio.get_running_loop()
        held = self.by_loop.get(loop)
        if held is not None and held[1].is_connected():
            return held[1]
        if held is not None:  # it died under a test: a new one for the next
            await self._close(loop)
        if not Path(executable).exists():
            raise RuntimeError(f"{executable} is missing: run scripts/install-system-packages.sh")
        playwright = await async_playwright().start()
        try:
            browser = await playwright.chromium.launch(
                executable_path=executable, headless=True, args=list(args),
                # Chromium on Linux takes its own locale (date fields: dd.mm.yyyy) from the
                # environment, not from --lang; chromium-l10n holds the Russian one.
                env={**os.environ, "LANGUAGE": "ru", "LANG": "ru_RU.UTF-8"})
        except BaseException:
            await playwright.stop()
            raise
        self.by_loop[loop] = (playwright, browser)
        return browser

    async def _close(self, loop: asyncio.AbstractEventLoop) -> None:
        playwright, browser = self.by_loop.pop(loop)
        with contextlib.suppress(Exception):  # already gone with its process
            await browser.close()
        await playwright.stop()

    async def close(self) -> None:
        """Close the running loop's browser and driver, if it has them."""
        loop = asyncio.get_running_loop()
        if loop in self.by_loop:
            await self._close(loop)


SHARED_CHROMIUM = SharedChromium()


@pytest.fixture(scope="session", autouse=True)
async def shared_chromium_closed() -> AsyncIterator[None]:
    """Closes the session loop's Chromium and its driver when the tests are done."""
    yield
    await SHARED_CHROMIUM.close()
