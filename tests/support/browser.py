"""Debian's Chromium driven by Playwright, and logging in through the hub's real form.

Playwright's own browser download cannot work here (and a TRE would not want it): the
browser is the distribution's ``chromium``, installed by ``scripts/install-system.sh``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root in CI; the browser only visits loopback pages
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# `make screenshots` sets this to docs/screenshots to refresh the guides' pictures; otherwise
# test runs leave the working tree alone.
SCREENSHOTS_ENV = "TRENV_SCREENSHOTS"


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("chromium is missing: run `scripts/install-system.sh chromium`")
    return path


# Per module, not per session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, so a session-wide browser made every later `asyncio.run` in the
# run fail ("cannot be called from a running event loop"). Chromium starts in about a second.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


_last_code: dict[str, str] = {}


def fresh_code(secret: str) -> str:
    """A one-time code not used before: the hub refuses a replayed code (by design)."""
    totp = pyotp.TOTP(secret)
    code = totp.now()
    while _last_code.get(secret) == code:
        time.sleep(1)
        code = totp.now()
    _last_code[secret] = code
    return code


def hub_login(page: Page, hub_url: str, username: str, password: str, secret: str) -> None:
    """Log in on the hub's login page as a person would: name, passphrase, one-time code."""
    page.goto(f"{hub_url}/hub/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.fill("input[name=otp]", fresh_code(secret))
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "/hub/login" not in page.url, f"login of {username} failed: {page.url}"


def screenshot(page: Page, name: str) -> None:
    """Keep a screenshot for the guides in docs/ when asked to (``make screenshots``)."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
