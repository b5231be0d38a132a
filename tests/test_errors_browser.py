"""What an operator sees of an issue in a browser, on a phone and on a desktop."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from errors import services
from errors.ingest import Envelope
from errors.models import ErrorReport
from tests.test_errors_console import shadowing_event
from tests.test_health_browser import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [390, 1280])
def test_the_issue_page_shows_data_keyed_items_and_fits_the_screen(
    live_server: Any, admin: Any, project: Any, tmp_path: Path, width: int, monkeypatch: Any
) -> None:
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    proj, _ = project
    event = shadowing_event()
    services.enqueue(
        proj.pk, Envelope(headers={}, event=json.dumps(event).encode(), event_id=event["event_id"])
    )
    services.digest()
    issue_id = ErrorReport.objects.get(event_id=event["event_id"]).issue_id
    # OPS_TEST_SCREENSHOTS keeps the screenshots for a person to look at.
    shots = Path(os.environ.get("OPS_TEST_SCREENSHOTS") or tmp_path)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(f"{live_server.url}/admin/errors/issue/{issue_id}/change/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "alice-password")
        page.click("input[type=submit]")
        page.wait_for_selector("#latest-event")
        latest = page.locator("#latest-event")
        text = latest.inner_text()
        for shown in ("tag-items-value", "context-items-value", "vars-keys-value", "[1, 2]"):
            assert shown in text, shown
        # The event's tables wrap long values instead of widening the page.
        overflow = latest.evaluate("el => el.scrollWidth - el.clientWidth")
        assert overflow <= 1, f"the latest event is {overflow}px wider than its box"
        page.screenshot(path=str(shots / f"issue-{width}.png"), full_page=True)
        latest.screenshot(path=str(shots / f"issue-{width}-latest-event.png"))
        browser.close()
