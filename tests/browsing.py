"""What every browser test shares: Debian's Chromium, logging in, screenshots.

A browser test module calls ``require_chromium()`` at import: without Debian's
chromium the module is skipped with a clear message, except where
REQUIRE_BROWSER is set (CI), where that is an error.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Without the background-networking flags Chromium tries to reach Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.getenv("REQUIRE_BROWSER"):
            raise RuntimeError("REQUIRE_BROWSER is set but Debian's chromium is not installed (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); browser tests skipped", allow_module_level=True)
    # Playwright's sync API runs an event loop in the test thread; the ORM calls stay synchronous.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def log_in(context, live_server, username: str, password: str | None = None):
    """A new page in ``context``, logged in as ``username`` (whose password is 'pw-' + username unless given)."""
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password or "pw-" + username)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return page


@contextmanager
def logged_in_page(live_server, username: str, width: int = 1280, height: int = 800):
    """A Chromium page logged in as ``username``, the browser closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield log_in(browser.new_context(viewport={"width": width, "height": height}), live_server, username)
        finally:
            browser.close()


def screenshot(page, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)
