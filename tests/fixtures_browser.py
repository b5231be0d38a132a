"""Browser fixtures: Debian's Chromium driven by Playwright's Python API (never a downloaded
browser), signing in to the console, and screenshots a person can look at.

- `browser`: one headless Chromium per test module (closed with it, so the async-safety switch
  it needs is off again for later modules and the processes they start).
- `page`: a fresh 1280 px page on that browser (a new context: no cookies shared between tests).
- `sign_in(page, live_server, username, password)`: the admin login form, as a person fills it.
- `shoot(page, name)`: screenshots at 1280 px and 390 px under var/screenshots/ (or
  OPS_TEST_SCREENSHOTS), kept after the run and never committed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parent.parent
WIDTHS = (1280, 390)


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("OPS_TEST_SCREENSHOTS") or ROOT / "var" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium package: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the tests' own ORM calls stay
    # synchronous and safe.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        # Left set, it would reach `check --deploy` in a later test's subprocess (async.E001).
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900})
    yield context.new_page()
    context.close()


def sign_in(page: Any, live_server: Any, username: str, password: str, next_path: str = "") -> None:
    """Signs in through the admin login form and waits for the page behind it."""
    page.goto(f"{live_server.url}/admin/login/?next=/admin/{next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_load_state()
    if "/admin/login/" in page.url:
        raise AssertionError(f"could not sign in as {username}: still on {page.url}")


def shoot(page: Any, name: str, widths: tuple[int, ...] = WIDTHS) -> list[Path]:
    """Full-page screenshots of the current page at each width; the viewport is restored."""
    folder = screenshot_dir()
    before = page.viewport_size
    paths = []
    for width in widths:
        page.set_viewport_size({"width": width, "height": 900})
        path = folder / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    if before:
        page.set_viewport_size(before)
    return paths
