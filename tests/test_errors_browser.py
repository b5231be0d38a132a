"""What an operator sees of an issue in a browser, on a phone and on a desktop."""

from __future__ import annotations

import json
from typing import Any

import pytest

from errors import services
from errors.ingest import Envelope
from errors.models import ErrorReport
from tests.fixtures_browser import shoot, sign_in
from tests.test_errors_console import shadowing_event

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [390, 1280])
def test_the_issue_page_shows_data_keyed_items_and_fits_the_screen(
    live_server: Any, admin: Any, project: Any, page: Any, width: int
) -> None:
    proj, _ = project
    event = shadowing_event()
    services.enqueue(
        proj.pk, Envelope(headers={}, event=json.dumps(event).encode(), event_id=event["event_id"])
    )
    services.digest()
    issue_id = ErrorReport.objects.get(event_id=event["event_id"]).issue_id
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, live_server, "alice", "alice-password", f"errors/issue/{issue_id}/change/")
    page.wait_for_selector("#latest-event")
    latest = page.locator("#latest-event")
    text = latest.inner_text()
    for shown in ("tag-items-value", "context-items-value", "vars-keys-value", "[1, 2]"):
        assert shown in text, shown
    # The event's tables wrap long values instead of widening the page.
    overflow = latest.evaluate("el => el.scrollWidth - el.clientWidth")
    assert overflow <= 1, f"the latest event is {overflow}px wider than its box"
    shoot(page, "errors-issue-data-keyed", widths=(width,))
