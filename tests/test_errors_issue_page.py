"""The issue page (events one at a time, frequency, releases, environments, tag facets,
actions) and the issue list's filters and search, against seeded events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from errors.issue_page import frequency, tag_facets
from errors.models import ErrorProject, ErrorReport, Issue
from opsconsole.models import SystemLog

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)


def _issue(project: ErrorProject, title: str = "ValueError: bad invoice", **fields: Any) -> Issue:
    values = {"first_seen": NOW, "last_seen": NOW, "count": 0, "last_message": title}
    values.update(fields)
    fingerprint = uuid.uuid4().hex
    return Issue.objects.create(project=project, fingerprint=fingerprint, title=title, **values)


def _event(issue: Issue, at: datetime, **fields: Any) -> ErrorReport:
    report = ErrorReport.objects.create(
        project=issue.project,
        issue=issue,
        event_id=uuid.uuid4().hex,
        reported_at=at,
        received_at=at,
        message=fields.pop("message", "bad invoice"),
        **fields,
    )
    Issue.objects.filter(pk=issue.pk).update(count=issue.reports.count())
    issue.refresh_from_db()
    return report


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_pages_through_the_events_newest_first(admin: Any, project: Any) -> None:
    proj, _ = project
    issue = _issue(proj)
    for i in range(3):
        _event(issue, NOW - timedelta(minutes=10 - i), message=f"event number {i}",
               user={"id": f"user-{i}"})  # fmt: skip
    client = _client(admin)
    url = f"/admin/errors/issue/{issue.pk}/change/"
    newest = client.get(url).content.decode()
    assert "Event 1 of 3" in newest and "user-2" in newest
    assert 'href="?event=2"' in newest
    oldest = client.get(url, {"event": "3"}).content.decode()
    assert "Event 3 of 3" in oldest and "user-0" in oldest and "user-2" not in oldest
    assert 'href="?event=2"' in oldest
    for bad, message in (("4", b"between 1 and 3"), ("x", b"whole number"), ("0", b"between")):
        refused = client.get(url, {"event": bad})
        assert refused.status_code == 400
        assert message in refused.content


def test_it_counts_events_per_hour_and_per_day(project: Any) -> None:
    proj, _ = project
    issue = _issue(proj)
    for minutes in (5, 10, 65, 60 * 30):
        _event(issue, NOW - timedelta(minutes=minutes))
    hourly = frequency(issue, timedelta(hours=1), 24, NOW)
    assert [b.count for b in hourly["bars"]][-2:] == [1, 2]
    assert hourly["total"] == 3  # the one 30 h ago is outside the 24 hours
    assert hourly["bars"][-1].start == datetime(2026, 11, 30, 12, tzinfo=UTC)
    daily = frequency(issue, timedelta(days=1), 30, NOW)
    assert daily["total"] == 4
    assert [b.count for b in daily["bars"]][-2:] == [1, 3]
    assert not daily["partial"]


def test_buckets_before_the_oldest_kept_event_are_not_drawn_as_zero(project: Any) -> None:
    proj, _ = project
    issue = _issue(proj)
    _event(issue, NOW - timedelta(days=2))
    Issue.objects.filter(pk=issue.pk).update(count=50)  # 49 older events were removed
    issue.refresh_from_db()
    daily = frequency(issue, timedelta(days=1), 30, NOW)
    counts = [b.count for b in daily["bars"]]
    assert counts[-3:] == [1, 0, 0]
    assert counts[:27] == [None] * 27
    assert daily["partial"]


def test_tag_facets_are_the_top_keys_and_values(project: Any) -> None:
    proj, _ = project
    issue = _issue(proj)
    for browser in ("Firefox", "Firefox", "Chrome"):
        _event(issue, NOW, tags={"browser": browser, "os": "Linux"})
    _event(issue, NOW, tags={"browser": "Firefox"})
    facets = tag_facets(issue)
    assert facets["window"] == 4
    browser, os_ = facets["facets"]
    assert browser["key"] == "browser" and browser["events"] == 4
    assert [(v["value"], v["count"]) for v in browser["top"]] == [("Firefox", 3), ("Chrome", 1)]
    assert os_["key"] == "os" and [(v["value"], v["count"]) for v in os_["top"]] == [("Linux", 3)]


def test_tag_facets_are_bounded_to_ten_keys_of_ten_values(project: Any) -> None:
    proj, _ = project
    issue = _issue(proj)
    for i in range(15):
        _event(issue, NOW, tags={f"key{k:02}": f"value{i}" for k in range(12)})
    facets = tag_facets(issue)["facets"]
    assert len(facets) == 10
    assert all(len(f["top"]) == 10 for f in facets)


def test_the_page_shows_releases_environments_and_frequency(admin: Any, project: Any) -> None:
    proj, _ = project
    issue = _issue(proj)
    _event(issue, NOW - timedelta(hours=3), release="app@1.0", environment="staging")
    _event(issue, NOW - timedelta(hours=2), release="app@1.1", environment="production")
    _event(issue, NOW - timedelta(hours=1), release="app@1.2", environment="production")
    with time_machine.travel(NOW, tick=False):
        body = _client(admin).get(f"/admin/errors/issue/{issue.pk}/change/").content.decode()
    assert "First release <strong>app@1.0</strong>, last release <strong>app@1.2</strong>" in body
    assert 'production <span class="ops-muted">2</span>' in body
    assert "Last 24 hours, per hour: 3 events" in body
    assert "Last 30 days, per day: 3 events" in body
    assert 'role="img"' in body


def test_actions_show_only_with_the_permission_and_are_audited(operator: Any, project: Any) -> None:
    proj, _ = project
    issue = _issue(proj)
    _event(issue, NOW)
    client = _client(operator)
    page = client.get(f"/admin/errors/issue/{issue.pk}/change/").content.decode()
    assert "/act/resolve/" not in page
    assert client.post(f"/admin/errors/issue/{issue.pk}/act/resolve/").status_code == 403
    assert SystemLog.objects.filter(action="errors.issue.resolve").count() == 0
    operator.user_permissions.add(Permission.objects.get(codename="resolve_issue"))
    client = _client(operator)
    page = client.get(f"/admin/errors/issue/{issue.pk}/change/").content.decode()
    assert "/act/resolve/" in page and 'name="csrfmiddlewaretoken"' in page
    assert 'label for="ignore-for"' in page
    response = client.post(f"/admin/errors/issue/{issue.pk}/act/ignore/", {"for": "24h"})
    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.status == "ignored"
    assert SystemLog.objects.filter(action="errors.issue.ignore", actor=operator.pk).exists()


def _listed(client: Client, **params: str) -> set[str]:
    response = client.get("/admin/errors/issue/", params)
    assert response.status_code == 200, response.content[:300]
    return {issue.title for issue in response.context["cl"].result_list}


def test_the_list_filters_by_release_environment_and_tag(admin: Any, project: Any) -> None:
    proj, _ = project
    web = _issue(proj, "KeyError: web")
    worker = _issue(proj, "TimeoutError: worker")
    _event(web, NOW, release="app@2.0", environment="production", tags={"browser": "Firefox"})
    _event(worker, NOW, release="app@1.9", environment="staging", tags={"queue": "mail"})
    client = _client(admin)
    assert _listed(client, release="app@2.0") == {"KeyError: web"}
    assert _listed(client, environment="staging") == {"TimeoutError: worker"}
    assert _listed(client, tag="browser:Firefox") == {"KeyError: web"}
    assert _listed(client, tag="queue: mail") == {"TimeoutError: worker"}
    assert _listed(client, tag="browser:Chrome") == set()
    assert _listed(client, release="app@2.0", environment="staging") == set()


def test_the_list_searches_titles_and_messages(admin: Any, project: Any) -> None:
    proj, _ = project
    _issue(proj, "KeyError: web", last_message="session cookie missing")
    _issue(proj, "TimeoutError: worker", last_message="smtp server slow")
    client = _client(admin)
    assert _listed(client, q="cookie") == {"KeyError: web"}
    assert _listed(client, q="TimeoutError") == {"TimeoutError: worker"}


def test_bad_filter_values_get_a_clear_message(admin: Any, project: Any) -> None:
    client = _client(admin)
    for params, message in (
        ({"tag": "no-colon"}, b"tag must be key:value"),
        ({"tag": ":value"}, b"tag must be key:value"),
        ({"release": "r" * 201}, b"release must be at most 200 characters"),
    ):
        response = client.get("/admin/errors/issue/", params)
        assert response.status_code == 400, params
        assert message in response.content
    # The form sends empty fields: they are dropped, not refused.
    empty = client.get("/admin/errors/issue/", {"release": "", "tag": "", "q": "x"})
    assert empty.status_code == 302 and empty["Location"].endswith("?q=x")


def test_the_tag_filter_uses_the_gin_index_on_postgresql(project: Any) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("GIN indexes are PostgreSQL's")
    from errors.issue_filters import events_with_tag

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = events_with_tag("browser", "Firefox").only("id").query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "errors_report_tags_gin" in plan


def test_the_lists_week_report_is_recomputed_at_most_once_a_minute(
    admin: Any, project: Any, settings: Any
) -> None:
    from django.core.cache import cache

    from errors.admin import REPORT_CACHE_KEY

    # A private cache: the suite's default is Redis or a table that may not exist here.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    proj, _ = project
    issue = _issue(proj)
    _event(issue, timezone.now())
    client = _client(admin)
    assert "1 event in 1 issue" in client.get("/admin/errors/issue/").content.decode()
    _event(issue, timezone.now())
    assert "1 event in 1 issue" in client.get("/admin/errors/issue/").content.decode()
    cache.delete(REPORT_CACHE_KEY)
    assert "2 events in 1 issue" in client.get("/admin/errors/issue/").content.decode()
