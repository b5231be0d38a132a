"""One-click operations from the console: each is a POST with CSRF, checks a permission, is
written to the audit trail (refusals too) and says what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from alerts.models import Alert, Silence
from backups import services as backups
from backups.models import Backup
from health.models import HealthCheck
from maintenance import bypass, state
from opsconsole.models import SystemLog
from tests.roles_support import member_of

pytestmark = pytest.mark.django_db

RUN_CHECK = "/admin/health/healthcheck/run/"
BACKUP_NOW = "/admin/backups/backup/backup-now/"
VERIFY_LATEST = "/admin/backups/backup/verify-latest/"
DOWN = "/admin/maintenance/maintenancestate/down/"
UP = "/admin/maintenance/maintenancestate/up/"


@pytest.fixture
def vera() -> User:
    return member_of("viewer")


@pytest.fixture
def oscar() -> User:
    return member_of("operator")


@pytest.fixture
def ada() -> User:
    return member_of("administrator")


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def said(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def firing_alert(key: str = "health:queue") -> Alert:
    now = timezone.now()
    return Alert.objects.create(
        key=key, summary="queue failing", first_fired_at=now, last_fired_at=now
    )


def restore_url(backup: Backup) -> str:
    return f"/admin/backups/backup/{backup.pk}/restore/"


# --- every operation: GET is 405, a viewer's forged POST is refused and recorded ----------------
OPERATIONS = [
    (RUN_CHECK, "health.run_check"),
    (BACKUP_NOW, "backup.create.requested"),
    (VERIFY_LATEST, "backup.verify.requested"),
    (DOWN, "maintenance.down"),
    (UP, "maintenance.up"),
]


@pytest.mark.parametrize(("url", "action"), OPERATIONS)
def test_it_answers_a_get_on_an_operation_with_405(oscar: User, url: str, action: str) -> None:
    assert signed_in(oscar).get(url).status_code == 405
    assert not SystemLog.objects.filter(action=action).exists()


@pytest.mark.parametrize(("url", "action"), OPERATIONS)
def test_it_refuses_a_viewers_post_with_403_and_records_it(
    vera: User, url: str, action: str
) -> None:
    response = signed_in(vera).post(url, {"retry_after": "60"})
    assert response.status_code == 403
    entry = SystemLog.objects.get(action=action)
    assert (entry.actor, entry.result) == (vera, "denied")
    assert HealthCheck.objects.count() == 0
    assert not state.current(fresh=True).is_down


def test_it_needs_the_csrf_token(oscar: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(oscar)
    assert client.post(RUN_CHECK).status_code == 403
    assert HealthCheck.objects.count() == 0


def test_a_viewer_sees_the_pages_without_operation_buttons(vera: User) -> None:
    client = signed_in(vera)
    for url, button in [
        ("/admin/health/healthcheck/", b"Run a health check now"),
        ("/admin/backups/backup/", b"Back up now"),
        ("/admin/maintenance/maintenancestate/", b"Take the site down"),
    ]:
        page = client.get(url)
        assert page.status_code == 200, url
        assert button not in page.content, url
    alert = firing_alert()
    page = client.get(f"/admin/alerts/alert/{alert.pk}/change/")
    assert page.status_code == 200
    assert f"/admin/alerts/alert/{alert.pk}/silence/".encode() not in page.content


# --- health --------------------------------------------------------------------------------
def test_an_operator_runs_a_health_check_and_sees_the_run(oscar: User) -> None:
    client = signed_in(oscar)
    assert b"Run a health check now" in client.get("/admin/health/healthcheck/").content
    response = client.post(RUN_CHECK)
    run = HealthCheck.objects.get()
    assert run.trigger == "console"
    assert response.status_code == 302
    assert response["Location"] == f"/admin/health/healthcheck/{run.pk}/change/"
    assert said(response) and said(response)[0].startswith(f"Health check run {run.pk}: ")
    entry = SystemLog.objects.get(action="health.run_check")
    assert (entry.actor, entry.result, entry.details["status"]) == (oscar, "success", run.status)


# --- backups -------------------------------------------------------------------------------
def test_an_operator_queues_a_backup(oscar: User, django_capture_on_commit_callbacks: Any) -> None:
    client = signed_in(oscar)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(BACKUP_NOW, {"kind": "db"})
    assert response.status_code == 302
    assert len(queued) == 1 and queued[0].args == ("db", "oscar")
    assert said(response)[0].startswith("Backup (database only) queued")
    entry = SystemLog.objects.get(action="backup.create.requested")
    assert (entry.actor, entry.result, entry.details) == (oscar, "success", {"kind": "db"})


def test_it_refuses_a_backup_while_one_runs(
    oscar: User, django_capture_on_commit_callbacks: Any
) -> None:
    running = Backup.objects.create(kind="full", started_at=timezone.now())
    with django_capture_on_commit_callbacks() as queued:
        response = signed_in(oscar).post(BACKUP_NOW, {"kind": "full"})
    assert queued == []
    assert said(response) == [
        f"Not queued: backup {running.pk} is still running. Wait for it to finish."
    ]
    assert SystemLog.objects.get(action="backup.create.requested").result == "failure"


def test_it_refuses_an_unknown_backup_kind(oscar: User) -> None:
    response = signed_in(oscar).post(BACKUP_NOW, {"kind": "everything"})
    assert response.status_code == 302
    assert "Unknown backup kind" in said(response)[0]


def test_an_operator_queues_the_verification_of_the_latest_backup(
    oscar: User, django_capture_on_commit_callbacks: Any
) -> None:
    now = timezone.now()
    Backup.objects.create(kind="db", status="completed", started_at=now, name="old")
    latest = Backup.objects.create(kind="db", status="completed", started_at=now, name="new")
    with django_capture_on_commit_callbacks() as queued:
        response = signed_in(oscar).post(VERIFY_LATEST)
    assert [c.args for c in queued] == [(latest.pk,)]
    assert said(response)[0].startswith(f"Verification of backup {latest.pk} queued")
    assert SystemLog.objects.get(action="backup.verify.requested").target == f"backup {latest.pk}"


def test_verifying_without_a_backup_says_so(oscar: User) -> None:
    response = signed_in(oscar).post(VERIFY_LATEST)
    assert said(response) == ["There is no completed backup to verify: back up first."]
    assert SystemLog.objects.get(action="backup.verify.requested").result == "failure"


@pytest.fixture
def completed_backup(backup_dirs: dict[str, Path]) -> Backup:
    """A real database backup of the test database, in a private storage directory."""
    return backups.create_backup("db", actor="test")


def test_an_operator_may_not_restore(oscar: User, completed_backup: Backup) -> None:
    client = signed_in(oscar)
    assert (
        b"Restore this backup"
        not in client.get(f"/admin/backups/backup/{completed_backup.pk}/change/").content
    )
    response = client.post(restore_url(completed_backup), {"confirm_id": completed_backup.pk})
    assert response.status_code == 403
    entry = SystemLog.objects.get(action="backup.restore.requested")
    assert (entry.result, entry.target) == ("denied", f"backup {completed_backup.pk}")


def test_a_restore_shows_what_it_replaces_and_asks_for_the_id(
    ada: User, completed_backup: Backup
) -> None:
    client = signed_in(ada)
    change = client.get(f"/admin/backups/backup/{completed_backup.pk}/change/")
    assert restore_url(completed_backup).encode() in change.content
    page = client.get(restore_url(completed_backup))
    assert page.status_code == 200
    text = page.content.decode()
    from django.db import connection

    assert connection.settings_dict["NAME"] in text
    assert "Type the backup id" in text and 'name="confirm_id"' in text
    assert "opsconsole_systemlog" in text  # the manifest's row counts, per table


def test_a_wrong_id_restores_nothing(
    ada: User, completed_backup: Backup, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as queued:
        response = signed_in(ada).post(restore_url(completed_backup), {"confirm_id": "12345"})
    assert response.status_code == 400
    assert queued == []
    assert "nothing was restored" in response.content.decode()
    assert not SystemLog.objects.filter(action="backup.restore.requested").exists()


def test_the_right_id_queues_the_restore(
    ada: User, completed_backup: Backup, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as queued:
        response = signed_in(ada).post(
            restore_url(completed_backup), {"confirm_id": f" {completed_backup.pk} "}
        )
    assert response.status_code == 302
    assert [c.args for c in queued] == [(completed_backup.pk, "ada", False)]
    entry = SystemLog.objects.get(action="backup.restore.requested")
    assert (entry.actor, entry.result) == (ada, "success")
    assert said(response)[0].startswith(f"Restore of backup {completed_backup.pk} queued")


def test_a_restore_of_a_missing_backup_is_a_404(ada: User) -> None:
    assert signed_in(ada).get("/admin/backups/backup/999999/restore/").status_code == 404


def test_a_failed_backup_cannot_be_restored(ada: User) -> None:
    failed = Backup.objects.create(kind="db", status="failed", started_at=timezone.now())
    response = signed_in(ada).post(restore_url(failed), {"confirm_id": str(failed.pk)})
    assert response.status_code == 400
    assert "cannot be restored" in response.content.decode()


# --- maintenance ---------------------------------------------------------------------------
def test_down_shows_a_generated_bypass_secret_once(oscar: User, caplog: Any) -> None:
    client = signed_in(oscar)
    response = client.post(
        DOWN, {"message": "upgrade", "retry_after": "60", "generate_secret": "on"}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    secret = html.split('id="ops-bypass-url">', 1)[1].split("<", 1)[0].rsplit("/", 1)[1]
    assert bypass.is_secret_path(f"/{secret}", state.current(fresh=True))
    entry = SystemLog.objects.get(action="maintenance.down")
    assert entry.actor == oscar and entry.details["bypass_secret"] is True
    assert secret not in str(entry.details) and secret not in entry.target
    assert secret not in caplog.text
    later = client.get("/admin/maintenance/maintenancestate/").content.decode()
    assert secret not in later and "shown this once" not in later
    assert secret not in "".join(said(response))


def test_down_without_a_secret_goes_back_to_the_toggle(oscar: User) -> None:
    response = signed_in(oscar).post(DOWN, {"retry_after": "60"})
    assert response.status_code == 302
    snapshot = state.current(fresh=True)
    assert snapshot.is_down and not snapshot.secret_hash


def test_up_brings_the_site_back(oscar: User) -> None:
    client = signed_in(oscar)
    client.post(DOWN, {"retry_after": "60"})
    response = client.post(UP)
    assert response.status_code == 302 and said(response)[-1] == "Maintenance mode is off."
    assert not state.current(fresh=True).is_down
    assert SystemLog.objects.get(action="maintenance.up").actor == oscar


def test_down_with_bad_input_is_a_400(oscar: User) -> None:
    response = signed_in(oscar).post(DOWN, {"retry_after": "0", "secret": "short"})
    assert response.status_code == 400
    assert not state.current(fresh=True).is_down


# --- alerts --------------------------------------------------------------------------------
def test_an_operator_silences_an_alert_from_its_page(oscar: User) -> None:
    alert = firing_alert("threshold:cpu:web-1[a]")
    client = signed_in(oscar)
    page = client.get(f"/admin/alerts/alert/{alert.pk}/change/")
    assert b"Silence this alert for 4 hours" in page.content
    response = client.post(f"/admin/alerts/alert/{alert.pk}/silence/", {"hours": "4"})
    assert response.status_code == 302
    silence = Silence.objects.get()
    assert silence.matches(alert.key) and not silence.matches("threshold:cpu:web-1a")
    hours = (silence.ends_at - silence.starts_at).total_seconds() / 3600
    assert hours == 4 and silence.created_by == oscar
    entry = SystemLog.objects.get(action="alerts.silence")
    assert entry.details == {"alert": alert.pk, "hours": 4, "silence": silence.pk}


def test_it_offers_only_the_listed_durations(oscar: User) -> None:
    alert = firing_alert()
    response = signed_in(oscar).post(f"/admin/alerts/alert/{alert.pk}/silence/", {"hours": "99"})
    assert response.status_code == 302
    assert Silence.objects.count() == 0
    assert said(response) == ["Silence for 1, 4, 24 hours only."]


def test_a_viewer_cannot_silence(vera: User) -> None:
    alert = firing_alert()
    client = signed_in(vera)
    assert client.post(f"/admin/alerts/alert/{alert.pk}/silence/", {"hours": "1"}).status_code == (
        403
    )
    response = client.post(
        "/admin/alerts/alert/",
        {"action": "silence_1h", "index": "0", "_selected_action": [alert.pk]},
    )
    assert response.status_code == 403
    assert Silence.objects.count() == 0
    assert SystemLog.objects.get(action="alerts.silence").result == "denied"
    assert SystemLog.objects.get(action="admin.action").result == "denied"


def test_an_operator_silences_the_selected_alerts_from_the_list(oscar: User) -> None:
    first, second = firing_alert("health:queue"), firing_alert("health:disk")
    response = signed_in(oscar).post(
        "/admin/alerts/alert/",
        {"action": "silence_24h", "index": "0", "_selected_action": [first.pk, second.pk]},
    )
    assert response.status_code == 302
    assert sorted(s.pattern for s in Silence.objects.all()) == ["health:disk", "health:queue"]
    assert SystemLog.objects.filter(action="alerts.silence", result="success").count() == 2


def test_a_restore_refused_by_the_worker_shows_on_the_restore_page(
    ada: User, backup_dirs: dict[str, Path]
) -> None:
    from backups.tasks import restore_backup

    # Completed on record, but its manifest is not in storage: the restore is refused.
    gone = Backup.objects.create(
        kind="db", status="completed", started_at=timezone.now(), name="gone"
    )
    result = restore_backup(gone.pk, "ada")
    assert "manifest" in result["failed"]
    entry = SystemLog.objects.get(action="backup.restore")
    assert (entry.actor_name, entry.result) == ("ada", "failure")
    page = signed_in(ada).get(restore_url(gone)).content.decode()
    assert "backup.restore: failure (by ada)" in page
