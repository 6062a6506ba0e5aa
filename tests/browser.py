"""Headless Chromium for the console's browser tests: Debian's chromium driven by Playwright.

The browser is never downloaded: Playwright launches ``/usr/bin/chromium`` (``apt-get install
chromium``; ``.ci/run`` installs it where missing). Without it, or without the ``playwright``
package, the tests skip with the reason, and fail instead when
``GRIDWHISTLE_REQUIRE_BROWSER=1`` (as CI sets).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = os.environ.get("GRIDWHISTLE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


def need_browser() -> None:
    """Skip (or fail, when CI requires the browser) if the browser cannot run."""
    why = missing()
    if why is None:
        return
    if os.environ.get("GRIDWHISTLE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here, but {why}")
    pytest.skip(why)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()
