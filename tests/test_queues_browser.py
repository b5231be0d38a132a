"""An operator retries, from the console in a real browser, a task that failed in a real
Celery worker; the retry then succeeds in that worker. A viewer is offered no retry."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from opsconsole.models import SystemLog
from queues.models import TaskFailure, TaskHour, TaskMinute
from tests.fixtures_browser import shoot, sign_in
from tests.queues_support import TASK_NAME

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "tok-5e3c0a77b1d2"


@pytest.fixture
def queues_worker(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Any:
    """`live_worker`, importing the test-only task module."""
    monkeypatch.setenv("OPS_TEST_CELERY_IMPORTS", "tests.queues_support")
    return request.getfixturevalue("live_worker")


def _wait_for(condition: Callable[[], Any], what: str, log: Path, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


def test_an_operator_retries_a_failed_task_from_the_page_and_it_succeeds_in_the_worker(
    queues_worker: dict[str, Any], live_server: Any, page: Any, tmp_path: Path
) -> None:
    from opsconsole.celery import app

    user = User.objects.create_user("olga", "olga@example.com", "olga-password", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__startswith="view_")
        | Permission.objects.filter(codename="retry_task", content_type__app_label="queues")
    )
    marker = tmp_path / "ready"
    app.send_task(TASK_NAME, args=[str(marker)], kwargs={"api_token": TOKEN})
    log = queues_worker["log"]
    failure = _wait_for(
        lambda: TaskFailure.objects.filter(task_name=TASK_NAME).first(), "the failure", log
    )
    assert failure.queue == queues_worker["queue"]
    assert failure.hostname == queues_worker["hostname"]
    assert failure.kwargs == {"api_token": "[Filtered]"}
    assert "marker ready is missing" in failure.exception_message

    sign_in(page, live_server, "olga", "olga-password", "queues/taskfailure/overview/")
    assert page.locator("#queues-live").get_attribute("data-live-url")
    page.wait_for_selector(f"text={queues_worker['hostname']}")
    body = page.content()
    assert TASK_NAME in body and "[Filtered]" in body and TOKEN not in body
    shoot(page, "queues-overview")

    # Retrying the selected asks first; going back changes nothing.
    page.goto(f"{live_server.url}/admin/queues/taskfailure/")
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "retry_selected")
    page.click("button[name=index]")
    page.wait_for_load_state()
    assert "1 of 1 selected task will be sent again" in page.content()
    shoot(page, "queues-confirm-retry")
    page.get_by_role("link", name="No, go back").click()
    page.wait_for_load_state()
    failure.refresh_from_db()
    assert failure.state == TaskFailure.State.FAILED

    marker.write_text("")  # from now on the task succeeds
    page.goto(f"{live_server.url}/admin/queues/taskfailure/overview/")
    page.get_by_role("button", name=f"Retry {TASK_NAME}").click()
    page.wait_for_load_state()
    assert "/queues/taskfailure/overview/" in page.url  # back where the operator was
    assert "was sent again as" in page.content()
    shoot(page, "queues-overview-after-retry")

    done = Path(f"{marker}.done")
    _wait_for(done.exists, "the retried task to succeed", log)
    assert done.read_text() == TOKEN  # the original arguments, not their scrubbed copy
    failure.refresh_from_db()
    assert failure.state == TaskFailure.State.RETRIED and failure.retried_as
    assert failure.raw_arguments == ""
    assert TaskFailure.objects.filter(task_name=TASK_NAME).count() == 1  # no new failure
    audit = SystemLog.objects.get(action="queues.retry_task")
    assert audit.result == "success" and audit.actor == user

    page.goto(f"{live_server.url}/admin/queues/taskfailure/")
    shoot(page, "queues-failures")
    page.goto(f"{live_server.url}/admin/queues/taskfailure/{failure.pk}/change/")
    assert "Traceback" in page.content()
    shoot(page, "queues-failure-detail")

    # Stopping the worker writes the runs it still buffered: one failed, one succeeded.
    process = queues_worker["process"]
    process.terminate()
    process.wait(timeout=30)
    minutes = TaskMinute.objects.filter(task_name=TASK_NAME)
    assert sum(m.count for m in minutes) == 2, log.read_text()[-3000:]
    assert sum(m.failures for m in minutes) == 1
    assert sum(sum(m.histogram) for m in minutes) == 2
    assert sum(h.count for h in TaskHour.objects.filter(task_name=TASK_NAME)) == 2


def test_a_viewer_sees_the_page_without_any_operation(
    live_server: Any, page: Any, operator: User
) -> None:
    TaskFailure.objects.create(
        task_id="t-1", task_name="app.tasks.sync", failed_at="2026-01-05T10:00:00Z",
        raw_arguments='{"args": [], "kwargs": {}}', exception_type="KeyError",
    )  # fmt: skip
    sign_in(page, live_server, "bob", "bob-password", "queues/taskfailure/overview/")
    assert "app.tasks.sync" in page.content()
    assert page.get_by_role("button", name="Retry app.tasks.sync").count() == 0
    shoot(page, "queues-overview-viewer")
    page.emulate_media(color_scheme="dark")
    shoot(page, "queues-overview-viewer-dark")
    page.goto(f"{live_server.url}/admin/queues/taskfailure/overview/?period=9y")
    assert "unknown period" in page.content()
