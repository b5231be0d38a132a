"""The console: report, issue page and actions (permission-checked, audited), the
createerrorproject command, retention cleanup and the Prometheus collector."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.utils import timezone

from errors import services
from errors.ingest import Envelope
from errors.models import ErrorProject, ErrorReport, Issue
from opsconsole.models import SystemLog
from tests.fixtures_errors import make_event

pytestmark = pytest.mark.django_db


def ingest(project: ErrorProject, **fields: Any) -> ErrorReport:
    event = make_event(**fields)
    services.enqueue(
        project.pk,
        Envelope(headers={}, event=json.dumps(event).encode(), event_id=event["event_id"]),
    )
    services.digest()
    return ErrorReport.objects.get(event_id=event["event_id"])


def test_the_report_has_totals_severities_and_top_issues(project):
    proj, _ = project
    for _ in range(3):
        ingest(proj)
    ingest(proj, level="fatal", exception=None, message="disk full")
    report = services.get_error_report(days=7)
    assert report["total"] == 4
    assert report["by_severity"] == {"critical": 1, "error": 3, "warning": 0, "info": 0}
    top = report["top_issues"][0]
    assert top["count"] == 3
    assert top["latest_message"] == "invoice 1234 is not payable"
    assert top["first_seen"] <= top["last_seen"]
    assert len(report["top_issues"]) == 2


def test_the_issue_list_shows_the_report_and_the_issue_page_the_event(client, admin, project):
    proj, _ = project
    report = ingest(proj, breadcrumbs=[{"category": "sql", "message": "SELECT 1"}])
    client.force_login(admin)
    listing = client.get("/admin/errors/issue/")
    assert listing.status_code == 200
    assert b"error-report" in listing.content
    page = client.get(f"/admin/errors/issue/{report.issue_id}/change/")
    body = page.content.decode()
    assert page.status_code == 200
    for expected in ("raise ValueError(msg)", "team", "payments", "SELECT 1", "Resolve", "Ignore"):
        assert expected in body


def test_issue_actions_are_audited(client, admin, project):
    proj, _ = project
    issue = ingest(proj).issue
    client.force_login(admin)
    base = f"/admin/errors/issue/{issue.pk}/act"
    assert client.post(f"{base}/resolve/").status_code == 302
    issue.refresh_from_db()
    assert issue.status == "resolved"
    client.post(f"{base}/ignore/", {"for": "24h"})
    issue.refresh_from_db()
    assert issue.status == "ignored" and issue.ignored_until is not None
    client.post(f"{base}/reopen/")
    issue.refresh_from_db()
    assert issue.status == "unresolved"
    actions = list(
        SystemLog.objects.filter(action__startswith="errors.issue")
        .order_by("id")
        .values_list("action", "actor")
    )
    assert actions == [
        ("errors.issue.resolve", admin.pk),
        ("errors.issue.ignore", admin.pk),
        ("errors.issue.reopen", admin.pk),
    ]
    assert client.post(f"{base}/explode/").status_code == 400
    assert client.post(f"{base}/ignore/", {"for": "never"}).status_code == 400


def test_issue_actions_need_the_permission(client, operator, project):
    proj, _ = project
    issue = ingest(proj).issue
    client.force_login(operator)
    assert client.get(f"/admin/errors/issue/{issue.pk}/change/").status_code == 200
    assert client.post(f"/admin/errors/issue/{issue.pk}/act/resolve/").status_code == 403
    issue.refresh_from_db()
    assert issue.status == "unresolved"
    operator.user_permissions.add(Permission.objects.get(codename="resolve_issue"))
    operator = type(operator).objects.get(pk=operator.pk)
    client.force_login(operator)
    assert client.post(f"/admin/errors/issue/{issue.pk}/act/resolve/").status_code == 302


def test_issue_actions_refuse_get(client, admin, project):
    proj, _ = project
    issue = ingest(proj).issue
    client.force_login(admin)
    assert client.get(f"/admin/errors/issue/{issue.pk}/act/resolve/").status_code == 405


def project_form(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "shop",
        "rate_limit_per_minute": 100,
        "bytes_per_minute": 10_000_000,
        "bytes_per_day": 1_000_000_000,
        "new_issues_per_hour": 100,
        "retention_days": 30,
        "max_events_per_issue": 100,
        "alert_on_critical": "on",
        "frequency_threshold": 10,
        "frequency_window_minutes": 60,
        "business_hours_start": 9,
        "business_hours_end": 17,
        "business_days": "0,1,2,3,4",
        "business_timezone": "UTC",
        "keys-TOTAL_FORMS": 0,
        "keys-INITIAL_FORMS": 0,
        **overrides,
    }


def test_adding_a_project_in_the_admin_gives_it_a_key(client, admin):
    client.force_login(admin)
    response = client.post("/admin/errors/errorproject/add/", project_form())
    assert response.status_code == 302, response.content[:2000]
    assert ErrorProject.objects.get(name="shop").keys.count() == 1


def test_the_admin_refuses_impossible_business_hours(client, admin):
    client.force_login(admin)
    form = project_form(
        business_hours_start=18,
        business_hours_end=9,
        business_days="1,9",
        business_timezone="Mars/Base",
    )
    response = client.post("/admin/errors/errorproject/add/", form)
    assert response.status_code == 200
    body = response.content.decode()
    for message in ("Use 0 &lt;= start &lt; end &lt;= 24.", "Unknown time zone", "weekdays"):
        assert message in body
    assert not ErrorProject.objects.filter(name="shop").exists()


def test_createerrorproject_prints_the_dsn(db, settings):
    settings.OPS_PUBLIC_URL = "https://ops.example.com"
    out = io.StringIO()
    call_command("createerrorproject", "billing-api", stdout=out)
    project = ErrorProject.objects.get(name="billing-api")
    key = project.keys.get()
    assert out.getvalue().strip() == f"https://{key.public_key}@ops.example.com/{project.pk}"
    assert SystemLog.objects.filter(action="errors.project.create").exists()
    out = io.StringIO()
    call_command("createerrorproject", "other", "--json", stdout=out)
    assert json.loads(out.getvalue())["name"] == "other"


def test_createerrorproject_refuses_a_duplicate_name(db):
    call_command("createerrorproject", "dup", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exists: pick another name"):
        call_command("createerrorproject", "dup", stdout=io.StringIO())
    with pytest.raises(CommandError, match="needs a name"):
        call_command("createerrorproject", "  ", stdout=io.StringIO())


def test_cleanup_removes_events_past_retention_and_caps_each_issue(project):
    proj, _ = project
    proj.retention_days = 30
    proj.max_events_per_issue = 3
    proj.save()
    with time_machine.travel(timezone.now() - timedelta(days=40)):
        old = ingest(proj, exception=None, message="an old one")
    for _ in range(5):
        ingest(proj)
    deleted = services.cleanup()
    assert deleted == {"ErrorReport": 3, "Issue": 1}
    assert not ErrorReport.objects.filter(pk=old.pk).exists()
    assert not Issue.objects.filter(pk=old.issue_id).exists()
    assert ErrorReport.objects.count() == 3
    assert services.cleanup() == {"ErrorReport": 0, "Issue": 0}


def test_prometheus_counts_events_per_project_and_level(project):
    from errors.prometheus import collect

    proj, _ = project
    ingest(proj)
    ingest(proj, level="warning")
    families = {f.name: f for f in collect()}
    samples = {
        (s.labels["project"], s.labels["level"]): s.value
        for s in families["ops_error_events"].samples
    }
    assert samples == {("billing", "error"): 1, ("billing", "warning"): 1}
    assert families["ops_error_inbox_backlog"].samples[0].value == 0


def shadowing_event() -> dict[str, Any]:
    """An event whose data has keys named like dict methods (`items`, `keys`, `values`, `get`):
    a local variable called `items` is common, and Django templates resolve `d.items` as the
    key before the method."""
    event = make_event(
        tags={"items": "tag-items-value", "team": "payments"},
        contexts={
            "items": {"items": "context-items-value", "count": 2},
            "runtime": {"name": "CPython", "version": "3.12.1"},
        },
        extra={"items": [1, 2]},
        user={"id": "user-42", "items": "user-items-value"},
    )
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][0]
    frame["vars"] = {"items": [1, 2], "keys": "vars-keys-value", "values": None, "get": "g"}
    event["request"] = {
        "method": "POST",
        "url": "https://shop.example.com/cart",
        "items": "request-items-value",
        "headers": {"items": "header-items-value", "User-Agent": "spec-client/1.0"},
    }
    return event


def test_the_issue_page_shows_event_data_with_keys_named_like_dict_methods(client, admin, project):
    proj, _ = project
    event = shadowing_event()
    services.enqueue(
        proj.pk, Envelope(headers={}, event=json.dumps(event).encode(), event_id=event["event_id"])
    )
    services.digest()
    report = ErrorReport.objects.get(event_id=event["event_id"])
    client.force_login(admin)
    page = client.get(f"/admin/errors/issue/{report.issue_id}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    for shown in (
        "tag-items-value",
        "payments",
        "vars-keys-value",
        "[1, 2]",
        "request-items-value",
        "header-items-value",
        "context-items-value",
        "CPython",
        "user-items-value",
    ):
        assert shown in body, shown
    event_page = client.get(f"/admin/errors/errorreport/{report.pk}/change/")
    assert event_page.status_code == 200
    assert "context-items-value" in event_page.content.decode()


def test_no_errors_template_looks_up_items_keys_or_values_on_event_data():
    """The class of bug: `{{ d.items }}` is d["items"] when the key exists. Mappings from events
    go through the `entries` filter instead."""
    import re
    from pathlib import Path

    import errors

    templates = Path(errors.__file__).parent / "templates"
    lookups = re.compile(r"\.(items|keys|values)\b")
    for template in templates.rglob("*.html"):
        for number, line in enumerate(template.read_text().splitlines(), 1):
            assert not lookups.search(line), f"{template.name}:{number}: {line.strip()}"
