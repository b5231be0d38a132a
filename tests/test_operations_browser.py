"""Operations in a browser, as each role: a viewer sees the pages and no buttons (and a forged
POST is refused), an operator backs up (a real worker runs it) and runs a health check, and a
restore asks for the backup's id before anything happens. Screenshots at 1280 and 390 px."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from backups import services as backups
from backups.models import Backup
from health.models import HealthCheck
from maintenance import state
from opsconsole.models import SystemLog
from tests.fixtures_browser import shoot, sign_in
from tests.roles_support import PASSWORDS, member_of

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FORGE = """async (url) => {
  const token = document.querySelector('input[name=csrfmiddlewaretoken]').value;
  const response = await fetch(url, {
    method: 'POST',
    headers: {'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRFToken': token},
    body: 'csrfmiddlewaretoken=' + encodeURIComponent(token) + '&kind=db&retry_after=60',
  });
  return response.status;
}"""


def as_role(page: Any, live_server: Any, role: str, next_path: str = "") -> Any:
    user = member_of(role)
    sign_in(page, live_server, user.get_username(), PASSWORDS[role], next_path)
    return user


@pytest.fixture
def worker_storage(tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Backup storage in tmp_path, for this process and a worker started after it."""
    store = tmp_path / "store"
    store.mkdir()
    settings.BACKUP_STORAGE_URL = f"file://{store}"
    settings.OPS_BACKUP_TMP_DIR = str(tmp_path)
    monkeypatch.setenv("BACKUP_STORAGE_URL", f"file://{store}")
    monkeypatch.setenv("OPS_BACKUP_TMP_DIR", str(tmp_path))
    return store


def test_a_viewer_sees_the_pages_but_no_operation(page: Any, live_server: Any) -> None:
    vera = as_role(page, live_server, "viewer", "health/healthcheck/")
    assert page.get_by_role("button", name="Run a health check now").count() == 0
    for path, button in [
        ("backups/backup/", "Back up now"),
        ("maintenance/maintenancestate/", "Take the site down"),
    ]:
        page.goto(f"{live_server.url}/admin/{path}")
        assert page.locator("#content").count() == 1, path
        assert page.get_by_role("button", name=button).count() == 0, path
    # A POST forged with the viewer's own CSRF token (from the logout form) is refused.
    for url in ("/admin/backups/backup/backup-now/", "/admin/maintenance/maintenancestate/down/"):
        assert page.evaluate(FORGE, f"{live_server.url}{url}") == 403
    assert not Backup.objects.exists() and not state.current(fresh=True).is_down
    assert SystemLog.objects.filter(actor=vera, result="denied").count() == 2
    shoot(page, "ops-viewer-maintenance")


def test_an_operator_runs_a_health_check_and_sees_the_result(page: Any, live_server: Any) -> None:
    as_role(page, live_server, "operator", "health/healthcheck/")
    shoot(page, "ops-health-run-button")
    page.get_by_role("button", name="Run a health check now").click()
    page.wait_for_load_state()
    run = HealthCheck.objects.get()
    assert page.url.endswith(f"/admin/health/healthcheck/{run.pk}/change/")
    assert f"Health check run {run.pk}: {run.status}" in page.locator(".messagelist").inner_text()
    shoot(page, "ops-health-run-result")


def test_an_operator_backs_up_now_and_a_real_worker_runs_it(
    page: Any, live_server: Any, worker_storage: Path, live_worker: Any
) -> None:
    as_role(page, live_server, "operator", "backups/backup/")
    page.get_by_label("What to back up").select_option("db")
    shoot(page, "ops-backups")
    page.get_by_role("button", name="Back up now").click()
    page.wait_for_load_state()
    assert "Backup (database only) queued" in page.locator(".messagelist").inner_text()
    deadline = time.monotonic() + 90
    backup = None
    while time.monotonic() < deadline:
        backup = Backup.objects.filter(status__in=Backup.RESTORABLE).first()
        if backup is not None:
            break
        time.sleep(0.5)
    assert backup is not None, live_worker["log"].read_text()[-3000:]
    assert backup.actor == "oscar" and backup.kind == "db"
    page.reload()
    assert page.locator(f"#result_list a[href$='/{backup.pk}/change/']").count() == 1
    shoot(page, "ops-backups-done")


def test_a_restore_asks_for_the_backup_id_before_anything_happens(
    page: Any, live_server: Any, backup_dirs: dict[str, Path]
) -> None:
    backup = backups.create_backup("db", actor="test")
    as_role(page, live_server, "administrator", f"backups/backup/{backup.pk}/change/")
    page.get_by_role("link", name="Restore this backup…").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="What this restore replaces").count() == 1
    shoot(page, "ops-restore-confirm")
    page.emulate_media(color_scheme="dark")
    shoot(page, "ops-restore-confirm-dark")
    page.emulate_media(color_scheme="light")
    page.get_by_label("Type the backup id").fill(str(backup.pk + 1000))
    page.get_by_role("button", name=f"Restore backup {backup.pk}").click()
    page.wait_for_load_state()
    assert "nothing was restored" in page.get_by_role("alert").inner_text()
    assert not SystemLog.objects.filter(action="backup.restore.requested").exists()
    assert not state.current(fresh=True).is_down
    shoot(page, "ops-restore-wrong-id")


def test_an_operator_takes_the_site_down_sees_the_secret_once_and_brings_it_up(
    page: Any, live_server: Any
) -> None:
    as_role(page, live_server, "operator", "maintenance/maintenancestate/")
    shoot(page, "ops-maintenance-up")
    page.get_by_role("button", name="Take the site down").click()
    page.wait_for_load_state()
    url = page.locator("#ops-bypass-url").inner_text()
    assert state.current(fresh=True).is_down
    shoot(page, "ops-maintenance-secret")
    page.emulate_media(color_scheme="dark")
    shoot(page, "ops-maintenance-secret-dark")
    page.goto(f"{live_server.url}/admin/maintenance/maintenancestate/")
    assert url not in page.content()
    page.get_by_role("button", name="Bring the site up").click()
    page.wait_for_load_state()
    assert not state.current(fresh=True).is_down


def test_an_operator_silences_an_alert(page: Any, live_server: Any) -> None:
    from django.utils import timezone

    from alerts.models import Alert, Silence

    now = timezone.now()
    alert = Alert.objects.create(
        key="health:queue", summary="queue failing", first_fired_at=now, last_fired_at=now
    )
    as_role(page, live_server, "operator", f"alerts/alert/{alert.pk}/change/")
    shoot(page, "ops-alert-silence")
    page.emulate_media(color_scheme="dark")
    shoot(page, "ops-alert-silence-dark", widths=(390,))
    page.get_by_role("button", name="Silence this alert for 4 hours").click()
    page.wait_for_load_state()
    assert "is silenced until" in page.locator(".messagelist").inner_text()
    assert Silence.objects.get().matches("health:queue")
