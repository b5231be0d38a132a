"""What an operator sees in a browser: the health page and the history with uptime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from health import services

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# `page` is the shared browser fixture (tests/fixtures_browser.py): one Playwright session
# for the whole run, so these tests can run after other browser tests.


@pytest.mark.django_db(transaction=True)
def test_the_health_page_shows_each_component_and_hides_details(
    live_server: Any, page: Any, only_switch: Any, tmp_path: Path
) -> None:
    only_switch["status"] = "fail"
    only_switch["output"] = "secret-host:5432 refused"
    page.goto(f"{live_server.url}/health/")
    assert page.locator("#overall").inner_text() == "fail"
    row = page.locator('tr[data-component="switch"]')
    assert "fail" in row.inner_text()
    assert "secret-host" not in page.content()
    page.screenshot(path=str(tmp_path / "health.png"))


@pytest.mark.django_db(transaction=True)
def test_staff_see_history_and_uptime_after_signing_in(
    live_server: Any, page: Any, admin: Any, only_switch: Any
) -> None:
    services.perform_health_check()
    page.goto(f"{live_server.url}/admin/health/healthcheck/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-password")
    page.click("input[type=submit]")
    page.wait_for_selector("#health-uptime")
    row = page.locator('#health-uptime tr[data-component="switch"]')
    assert "100.00 %" in row.inner_text()
    page.goto(f"{live_server.url}/health/switch")
    assert "responseTime" in page.content()  # a staff session sees the details
